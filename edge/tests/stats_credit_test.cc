#include "edge/stats_credit.h"

#include <gtest/gtest.h>

namespace mf::edge {
namespace {

constexpr uint64_t kRate = StatsCredit::max_bytes_per_second;
using Value = std::optional<uint64_t>;

ReportedStats report(Value p2p, Value cdn = {}, Value uploaded = {}, Value connected = {}) {
  ReportedStats r;
  r.p2p_bytes = p2p;
  r.cdn_bytes = cdn;
  r.uploaded_bytes = uploaded;
  r.connected_proposals = connected;
  return r;
}

TEST(StatsCredit, CreditsIncreasesOfCumulativeCounters) {
  StatsCredit c;
  c.start(1000);
  bool clamped = false;
  StreamStats d = c.credit(report(100, 50), 2000, 0, clamped);
  EXPECT_EQ(d.p2p_bytes, 100u);
  EXPECT_EQ(d.cdn_bytes, 50u);
  d = c.credit(report(250, 50), 3000, 0, clamped);
  EXPECT_EQ(d.p2p_bytes, 150u);
  EXPECT_EQ(d.cdn_bytes, 0u);
  // A restarted counter (value below the last): the whole value is new.
  d = c.credit(report(10), 4000, 0, clamped);
  EXPECT_EQ(d.p2p_bytes, 10u);
  EXPECT_FALSE(clamped);
}

// One peer claiming 2^64 - 1 bytes a second after joining gets 2 s worth at
// 1 Gbit/s, and nothing more until time passes.
TEST(StatsCredit, BytesAreBoundedByTheTimeJoined) {
  StatsCredit c;
  c.start(0);
  bool clamped = false;
  StreamStats d = c.credit(report(UINT64_MAX), 1000, 0, clamped);
  EXPECT_TRUE(clamped);
  EXPECT_EQ(d.p2p_bytes, 2 * kRate);
  clamped = false;
  d = c.credit(report(UINT64_MAX), 1000, 0, clamped);  // same value: no increase
  EXPECT_EQ(d.p2p_bytes, 0u);
  EXPECT_FALSE(clamped);
  // Restart tricks (down, then up again) earn nothing beyond the bound.
  d = c.credit(report(0), 1000, 0, clamped);
  d = c.credit(report(UINT64_MAX), 1000, 0, clamped);
  EXPECT_EQ(d.p2p_bytes, 0u);
  EXPECT_TRUE(clamped);
  // Ten seconds later: ten more seconds' worth.
  clamped = false;
  d = c.credit(report(5), 11000, 0, clamped);
  d = c.credit(report(UINT64_MAX), 11000, 0, clamped);
  EXPECT_EQ(c.credited().p2p_bytes, 12 * kRate);
  EXPECT_TRUE(clamped);
}

TEST(StatsCredit, ConnectedProposalsAreBoundedByTheCandidatesSent) {
  StatsCredit c;
  c.start(0);
  bool clamped = false;
  StreamStats d = c.credit(report({}, {}, {}, 5), 10, 3, clamped);
  EXPECT_EQ(d.connected_proposals, 3u);
  EXPECT_TRUE(clamped);
  clamped = false;
  d = c.credit(report({}, {}, {}, 6), 20, 8, clamped);
  EXPECT_EQ(d.connected_proposals, 1u);
  EXPECT_EQ(c.credited().connected_proposals, 4u);
  EXPECT_FALSE(clamped);
}

TEST(StatsCredit, AJoinStartsAgain) {
  StatsCredit c;
  c.start(0);
  bool clamped = false;
  c.credit(report({}, {}, 100), 10, 0, clamped);
  c.start(50);
  StreamStats d = c.credit(report({}, {}, 100), 60, 0, clamped);
  EXPECT_EQ(d.uploaded_bytes, 100u);
}

TEST(StreamStatsTotals, SaturateInsteadOfWrapping) {
  StreamStats total;
  total.add(StreamStats{UINT64_MAX - 5, 1, 0, 0});
  total.add(StreamStats{10, UINT64_MAX, 0, 7});
  EXPECT_EQ(total.p2p_bytes, UINT64_MAX);
  EXPECT_EQ(total.cdn_bytes, UINT64_MAX);
  EXPECT_EQ(total.connected_proposals, 7u);
}

}  // namespace
}  // namespace mf::edge
