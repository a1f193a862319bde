#include "edge/stream_signal_counts.h"

#include <gtest/gtest.h>

namespace mf::edge {
namespace {

uint64_t signals_of(const StreamSignalCounts& counts, std::string_view stream) {
  std::vector<StreamSignals> out;
  counts.append_to(out);
  for (const auto& s : out)
    if (s.stream_id == stream) return s.signals;
  return UINT64_MAX;  // no entry
}

TEST(StreamSignalCounts, CountsWhileAMemberIsHereAndRestartsWhenTheLastLeaves) {
  StreamSignalCounts counts;
  counts.delivered(0);  // no member here: not counted, no entry made
  counts.delivered(StreamSignalCounts::no_entry);
  EXPECT_EQ(counts.size(), 0u);
  const uint32_t s1 = counts.joined("s");
  const uint32_t s2 = counts.joined("s");
  const uint32_t t = counts.joined("t");
  EXPECT_EQ(s1, s2);  // one entry per stream
  EXPECT_NE(s1, t);
  counts.delivered(s1);
  counts.delivered(s2);
  counts.delivered(t);
  EXPECT_EQ(signals_of(counts, "s"), 2u);
  EXPECT_EQ(signals_of(counts, "t"), 1u);
  counts.left(s1);
  EXPECT_EQ(signals_of(counts, "s"), 2u);  // one member left: still counting
  counts.left(s2);
  EXPECT_EQ(signals_of(counts, "s"), UINT64_MAX);
  EXPECT_EQ(counts.size(), 1u);
  counts.left(s2);  // harmless: the entry is free
  counts.left(StreamSignalCounts::no_entry);
  counts.delivered(s1);  // a freed entry counts nothing
  EXPECT_EQ(signals_of(counts, "t"), 1u);
  const uint32_t again = counts.joined("s");
  EXPECT_EQ(again, s1);  // the freed entry is reused, its count restarted
  EXPECT_EQ(signals_of(counts, "s"), 0u);
}

TEST(StreamSignalCounts, AReusedEntryBelongsToItsNewStreamOnly) {
  StreamSignalCounts counts;
  const uint32_t s = counts.joined("s");
  counts.delivered(s);
  counts.left(s);
  const uint32_t u = counts.joined("u");
  EXPECT_EQ(u, s);
  counts.delivered(u);
  EXPECT_EQ(signals_of(counts, "u"), 1u);
  EXPECT_EQ(signals_of(counts, "s"), UINT64_MAX);
  EXPECT_EQ(counts.size(), 1u);
}

}  // namespace
}  // namespace mf::edge
