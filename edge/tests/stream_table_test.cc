#include "edge/stream_table.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace mf::edge {
namespace {

Member member(std::string_view id, uint32_t slot, std::string_view region = {}, bool accepting = true) {
  Member m;
  m.peer_id.assign(id);
  m.location = MemberLocation{0, 0, slot, 1};
  if (!region.empty()) m.topology.region.assign(region);
  m.accepting_peers = accepting;
  return m;
}

struct Picked {
  std::vector<std::string> ids;
};

Picked pick(StreamTable& t, std::string_view stream, std::string_view rendition, std::string_view requester,
            uint32_t count) {
  PickRequest request;
  request.requester = requester;
  request.count = count;
  PickedPeer out[64];
  std::vector<char> scratch(64 * max_topology_json_bytes);
  size_t n = t.pick(stream, rendition, request, out, scratch);
  Picked p;
  for (size_t i = 0; i < n; ++i) p.ids.emplace_back(out[i].peer_id);
  return p;
}

TEST(StreamTable, ProposesOnlySameStreamAndRenditionNeverSelf) {
  StreamTable t(1);
  EXPECT_EQ(t.enter("s1", "720p", member("a", 1), 0), EnterOutcome::entered);
  EXPECT_EQ(t.enter("s1", "720p", member("b", 2), 0), EnterOutcome::entered);
  EXPECT_EQ(t.enter("s1", "480p", member("c", 3), 0), EnterOutcome::entered);
  EXPECT_EQ(t.enter("s2", "720p", member("d", 4), 0), EnterOutcome::entered);
  auto p = pick(t, "s1", "720p", "a", 8);
  EXPECT_EQ(p.ids, std::vector<std::string>{"b"});
  EXPECT_EQ(t.viewers("s1"), 3u);
  EXPECT_EQ(t.viewers("s2"), 1u);
}

TEST(StreamTable, ViewerCapCountsTheWholeStream) {
  StreamTable t(1);
  EXPECT_EQ(t.enter("s", "a", member("p1", 1), 2), EnterOutcome::entered);
  EXPECT_EQ(t.enter("s", "b", member("p2", 2), 2), EnterOutcome::entered);
  EXPECT_EQ(t.enter("s", "a", member("p3", 3), 2), EnterOutcome::full);
  // A peer already counted may move (takeover, switch of rendition).
  EXPECT_EQ(t.enter("s", "b", member("p1", 9), 2), EnterOutcome::moved);
  EXPECT_EQ(t.viewers("s"), 2u);
  auto p = pick(t, "s", "b", "x", 8);
  EXPECT_EQ(std::set<std::string>(p.ids.begin(), p.ids.end()), (std::set<std::string>{"p1", "p2"}));
}

// The relay compares stream keys instead of streamIds: one key per stream
// while it has members, another after it emptied, and none shared between
// the tables of two shards.
TEST(StreamTable, KeysNameAStreamWhileItHasMembers) {
  StreamTable t(1, 0), other(1, 1);
  EXPECT_EQ(t.key("s1"), 0u);
  ASSERT_EQ(t.enter("s1", "720p", member("a", 1), 0), EnterOutcome::entered);
  ASSERT_EQ(t.enter("s1", "480p", member("b", 2), 0), EnterOutcome::entered);
  ASSERT_EQ(t.enter("s2", "720p", member("c", 3), 0), EnterOutcome::entered);
  ASSERT_EQ(other.enter("s3", "720p", member("d", 4), 0), EnterOutcome::entered);
  const uint64_t s1 = t.key("s1");
  EXPECT_NE(s1, 0u);
  EXPECT_NE(t.key("s2"), s1);
  EXPECT_NE(other.key("s3"), s1);
  EXPECT_NE(other.key("s3"), t.key("s2"));
  // A switch of rendition keeps the stream's key.
  ASSERT_EQ(t.enter("s1", "480p", member("a", 1), 0), EnterOutcome::moved);
  EXPECT_EQ(t.key("s1"), s1);
  // Emptied, then joined again: a new key.
  ASSERT_TRUE(t.leave("s1", "a", member("a", 1).location));
  EXPECT_EQ(t.key("s1"), s1);
  ASSERT_TRUE(t.leave("s1", "b", member("b", 2).location));
  EXPECT_EQ(t.key("s1"), 0u);
  ASSERT_EQ(t.enter("s1", "720p", member("a", 1), 0), EnterOutcome::entered);
  EXPECT_NE(t.key("s1"), 0u);
  EXPECT_NE(t.key("s1"), s1);
}

// A join abandoned while its enter was in flight is undone by its late
// reply; the same connection may have entered again meanwhile (a new join):
// the undo names the old join's sequence and must miss.
TEST(StreamTable, LeaveOfAnOlderJoinOfTheSameConnectionMisses) {
  StreamTable t(1);
  Member first = member("p1", 1);
  first.location.join_sequence = 3;
  Member second = member("p1", 1);
  second.location.join_sequence = 5;
  t.enter("s", "r", first, 0);
  EXPECT_EQ(t.enter("s", "r", second, 0), EnterOutcome::moved);
  EXPECT_FALSE(t.leave("s", "p1", first.location));
  EXPECT_EQ(t.viewers("s"), 1u);
  EXPECT_TRUE(t.leave("s", "p1", second.location));
  EXPECT_EQ(t.stream_count(), 0u);
}

TEST(StreamTable, LeaveOnlyFromTheRegisteredLocation) {
  StreamTable t(1);
  t.enter("s", "r", member("p1", 1), 0);
  // Takeover: the same peer from another connection replaces the entry.
  t.enter("s", "r", member("p1", 5), 0);
  EXPECT_FALSE(t.leave("s", "p1", MemberLocation{0, 0, 1, 1}));
  EXPECT_EQ(t.viewers("s"), 1u);
  EXPECT_TRUE(t.leave("s", "p1", MemberLocation{0, 0, 5, 1}));
  EXPECT_EQ(t.viewers("s"), 0u);
  EXPECT_EQ(t.stream_count(), 0u);
}

TEST(StreamTable, UpdateAcceptingPeersHidesAPeer) {
  StreamTable t(1);
  t.enter("s", "r", member("a", 1), 0);
  t.enter("s", "r", member("b", 2), 0);
  EXPECT_TRUE(t.update("s", "b", MemberLocation{0, 0, 2, 1}, Topology{}, false));
  EXPECT_TRUE(pick(t, "s", "r", "a", 8).ids.empty());
  EXPECT_FALSE(t.update("s", "b", MemberLocation{0, 0, 3, 1}, Topology{}, true));
}

TEST(StreamTable, StatsAccumulatePerStream) {
  StreamTable t(1);
  t.enter("s", "r", member("a", 1), 0);
  t.add_stats("s", StreamStats{10, 20, 5, 1});
  t.add_stats("s", StreamStats{1, 2, 0, 2});
  t.add_stats("unknown", StreamStats{100, 100, 100, 100});
  std::vector<StreamSummary> summaries;
  t.summarize(summaries);
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].stream_id, "s");
  EXPECT_EQ(summaries[0].viewers, 1u);
  EXPECT_EQ(summaries[0].stats.p2p_bytes, 11u);
  EXPECT_EQ(summaries[0].stats.cdn_bytes, 22u);
  EXPECT_EQ(summaries[0].stats.uploaded_bytes, 5u);
  EXPECT_EQ(summaries[0].stats.connected_proposals, 3u);
}

TEST(StreamTable, SummaryCountsJoinsProposalsAndPeersPerRendition) {
  StreamTable t(1);
  t.enter("s", "720p", member("a", 1), 0);
  t.enter("s", "720p", member("b", 2), 0);
  t.enter("s", "1080p", member("c", 3), 0);
  t.enter("s", "1080p", member("a", 1), 0);  // a switches rendition: still one viewer, one more join
  t.enter("other", "720p", member("d", 4), 0);
  EXPECT_EQ(pick(t, "s", "1080p", "a", 8).ids.size(), 1u);
  EXPECT_EQ(pick(t, "s", "720p", "x", 8).ids.size(), 1u);
  EXPECT_EQ(pick(t, "s", "480p", "x", 8).ids.size(), 0u);
  std::vector<StreamSummary> summaries;
  t.summarize(summaries);
  ASSERT_EQ(summaries.size(), 2u);
  const StreamSummary& s = summaries[0].stream_id == "s" ? summaries[0] : summaries[1];
  EXPECT_EQ(s.viewers, 3u);
  EXPECT_EQ(s.joins, 4u);
  EXPECT_EQ(s.proposals, 2u);
  ASSERT_EQ(s.renditions.size(), 2u);
  EXPECT_EQ(s.renditions[0].rendition, "1080p");
  EXPECT_EQ(s.renditions[0].peers, 2u);
  EXPECT_EQ(s.renditions[1].rendition, "720p");
  EXPECT_EQ(s.renditions[1].peers, 1u);
  // The counters go with the stream when its last peer leaves.
  t.leave("s", "a", member("a", 1).location);
  t.leave("s", "b", member("b", 2).location);
  t.leave("s", "c", member("c", 3).location);
  t.enter("s", "720p", member("e", 5), 0);
  summaries.clear();
  t.summarize(summaries);
  const StreamSummary& again = summaries[0].stream_id == "s" ? summaries[0] : summaries[1];
  EXPECT_EQ(again.joins, 1u);
  EXPECT_EQ(again.proposals, 0u);
}

TEST(StreamTable, TopologyIsRenderedForCandidates) {
  StreamTable t(1);
  t.enter("s", "r", member("a", 1, "eu"), 0);
  t.enter("s", "r", member("b", 2), 0);
  PickRequest request;
  request.requester = "b";
  request.count = 4;
  PickedPeer out[4];
  std::vector<char> scratch(4 * max_topology_json_bytes);
  ASSERT_EQ(t.pick("s", "r", request, out, scratch), 1u);
  EXPECT_EQ(out[0].peer_id, "a");
  EXPECT_EQ(out[0].rendition, "r");
  EXPECT_EQ(out[0].topology_json, R"({"region":"eu"})");
}

}  // namespace
}  // namespace mf::edge
