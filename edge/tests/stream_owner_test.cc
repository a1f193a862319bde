// The stream-owner role (edge/stream_owner.h) in-process: joins, leaves,
// need-peers, updates and stats arrive as the edge's typed shard messages
// (encoded and dispatched through EdgeMessages, as a mailbox would hand them
// over), and the replies it sends back to the connections' shards are checked
// field by field.
#include "edge/stream_owner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace mf::edge {
namespace {

// The stream shard's side: what EdgeShard does with these messages, minus
// the mailbox: each reply is kept for the test instead of being sent.
struct StreamShard {
  StreamOwner owner{7};
  uint64_t now_ms = 1000;
  std::vector<std::unique_ptr<EnterResult>> entered;
  std::vector<std::unique_ptr<PeersResult>> picked;
  uint32_t other_messages = 0;

  void on(std::unique_ptr<EnterSwarm> m) { entered.push_back(owner.enter(*m, now_ms)); }
  void on(std::unique_ptr<PickPeers> m) { picked.push_back(owner.pick(std::move(m), now_ms)); }
  void on(std::unique_ptr<LeaveSwarm> m) { owner.leave(*m); }
  void on(std::unique_ptr<UpdateMember> m) { owner.update(*m); }
  void on(std::unique_ptr<StatsDelta> m) { owner.add_stats(*m); }
  // Messages of the other roles never reach a stream shard's owner.
  template <class T>
  void on(T&&) {
    other_messages++;
  }

  // Through the message layer, as a mailbox delivers it.
  template <class T>
  void deliver(std::unique_ptr<T> payload) {
    ShardMessage message = EdgeMessages::encode<T>(std::move(payload));
    ASSERT_TRUE(EdgeMessages::dispatch(message, *this));
  }
};

PeerLocation connection(uint32_t slot) { return PeerLocation{1, slot, 3}; }

std::unique_ptr<EnterSwarm> enter(std::string_view peer, uint32_t slot, uint32_t max_viewers = 0,
                                  uint32_t initial_peers = 8, std::string_view rendition = "720p") {
  auto m = std::make_unique<EnterSwarm>();
  m->stream_id = "live";
  m->rendition.assign(rendition);
  m->member.peer_id.assign(peer);
  m->member.location = MemberLocation{0, 1, slot, 3, 5};
  m->max_viewers = max_viewers;
  m->initial_peers = initial_peers;
  m->who = connection(slot);
  m->join_sequence = 5;
  return m;
}

std::vector<std::string> ids(const CandidateList& list) {
  std::vector<std::string> out;
  list.for_each([&](std::string_view peer_id, std::string_view, std::string_view) { out.emplace_back(peer_id); });
  return out;
}

TEST(StreamOwner, AJoinGetsASeatAndTheFirstCandidatesAndItsReplyNamesItsConnection) {
  StreamShard shard;
  shard.deliver(enter("a", 1));
  shard.deliver(enter("b", 2));
  ASSERT_EQ(shard.entered.size(), 2u);
  const EnterResult& first = *shard.entered[0];
  EXPECT_FALSE(first.full);
  EXPECT_EQ(first.candidates.count, 0u);  // alone in the swarm
  const EnterResult& second = *shard.entered[1];
  EXPECT_FALSE(second.full);
  EXPECT_EQ(ids(second.candidates), std::vector<std::string>{"a"});
  EXPECT_EQ(second.wanted, 8u);
  EXPECT_EQ(second.who, connection(2));
  EXPECT_EQ(second.join_sequence, 5u);
  EXPECT_EQ(second.stream_id, "live");
  EXPECT_EQ(second.peer_id, "b");
  // Both seats name the stream by the same key, what the relay compares.
  EXPECT_NE(first.stream_key, 0u);
  EXPECT_EQ(second.stream_key, first.stream_key);
  EXPECT_EQ(shard.owner.viewers("live"), 2u);
  EXPECT_EQ(shard.other_messages, 0u);
}

TEST(StreamOwner, MaxViewersRefusesTheSeatAndAMeshOffJoinGetsNoCandidates) {
  StreamShard shard;
  shard.deliver(enter("a", 1, 2));
  auto no_mesh = enter("b", 2, 2);
  no_mesh->mesh_enabled = false;
  shard.deliver(std::move(no_mesh));
  shard.deliver(enter("c", 3, 2));
  ASSERT_EQ(shard.entered.size(), 3u);
  EXPECT_FALSE(shard.entered[1]->full);
  EXPECT_EQ(shard.entered[1]->candidates.count, 0u);
  EXPECT_EQ(shard.entered[1]->wanted, 0u);
  EXPECT_TRUE(shard.entered[2]->full);
  EXPECT_EQ(shard.entered[2]->stream_key, 0u);  // no seat, no key
  EXPECT_EQ(shard.owner.viewers("live"), 2u);
}

TEST(StreamOwner, ALeaveFromAnOlderLocationLeavesTheSuccessorAlone) {
  StreamShard shard;
  shard.deliver(enter("a", 1));
  auto stale = std::make_unique<LeaveSwarm>();
  stale->stream_id = "live";
  stale->peer_id = "a";
  stale->where = MemberLocation{0, 1, 1, 3, 4};  // an abandoned join's sequence
  shard.deliver(std::move(stale));
  EXPECT_EQ(shard.owner.viewers("live"), 1u);
  auto leave = std::make_unique<LeaveSwarm>();
  leave->stream_id = "live";
  leave->peer_id = "a";
  leave->where = MemberLocation{0, 1, 1, 3, 5};
  shard.deliver(std::move(leave));
  EXPECT_EQ(shard.owner.viewers("live"), 0u);
}

TEST(StreamOwner, NeedPeersExcludesWhatTheClientNamedAndReturnsItsTexts) {
  StreamShard shard;
  for (uint32_t i = 1; i <= 4; ++i) shard.deliver(enter(std::string(1, static_cast<char>('a' + i - 1)), i));
  auto pick = std::make_unique<PickPeers>();
  pick->stream_id = "live";
  pick->rendition = "720p";
  pick->requester = "a";
  pick->ref_raw = "\"r1\"";
  pick->count = 8;
  pick->exclude = {"b"};
  pick->who = connection(1);
  shard.deliver(std::move(pick));
  ASSERT_EQ(shard.picked.size(), 1u);
  const PeersResult& r = *shard.picked[0];
  auto got = ids(r.candidates);
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), (std::set<std::string>{"c", "d"}));
  EXPECT_EQ(r.wanted, 8u);
  EXPECT_EQ(r.ref_raw, "\"r1\"");
  EXPECT_EQ(r.exclude, std::vector<std::string>{"b"});  // back for candidates from other edges
  EXPECT_EQ(r.who, connection(1));
}

TEST(StreamOwner, AMemberNotAcceptingPeersIsNeverProposed) {
  StreamShard shard;
  shard.deliver(enter("a", 1));
  shard.deliver(enter("b", 2));
  auto update = std::make_unique<UpdateMember>();
  update->stream_id = "live";
  update->peer_id = "a";
  update->where = MemberLocation{0, 1, 1, 3, 5};
  update->accepting_peers = false;
  shard.deliver(std::move(update));
  shard.deliver(enter("c", 3));
  EXPECT_EQ(ids(shard.entered.back()->candidates), std::vector<std::string>{"b"});
}

TEST(StreamOwner, StatsAddUpPerStream) {
  StreamShard shard;
  shard.deliver(enter("a", 1));
  for (int i = 0; i < 2; ++i) {
    auto stats = std::make_unique<StatsDelta>();
    stats->stream_id = "live";
    stats->delta.p2p_bytes = 100;
    stats->delta.cdn_bytes = 10;
    shard.deliver(std::move(stats));
  }
  std::vector<StreamSummary> summary;
  shard.owner.summarize(summary);
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_EQ(summary[0].stream_id, "live");
  EXPECT_EQ(summary[0].stats.p2p_bytes, 200u);
  EXPECT_EQ(summary[0].stats.cdn_bytes, 20u);
  EXPECT_EQ(summary[0].viewers, 1u);
}

}  // namespace
}  // namespace mf::edge
