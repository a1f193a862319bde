// ValkeyClusterSync against a real redis-server, with a fake ClusterHost: two
// syncs on one reactor play two edges of a cluster (docs/cluster.md).
#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/valkey/tests/redis_test_server.h"
#include "common/valkey/tests/valkey_client_fixture.h"
#include "edge/cluster_keys.h"
#include "edge/cluster_sync_valkey.h"

namespace mf::edge {
namespace {

using valkey::test::RedisServer;
using valkey::test::SyncClient;

// A shard's sessions as the sync sees them, and what the sync told it.
class FakeHost final : public ClusterHost {
 public:
  struct Session {
    std::string peer_id, stream_id, rendition, digest;
    uint32_t join_sequence = 1;
    Topology topology;
  };
  std::map<uint32_t, Session> sessions;  // by slot; generation 1, shard 0
  struct Delivered {
    PeerLocation target;
    std::string to, text;
  };
  std::vector<Delivered> delivered;
  std::vector<std::unique_ptr<SignalPacket>> failed, sent;
  struct Peers {
    PeerLocation who;
    std::vector<std::string> local, remote;
  };
  std::vector<Peers> peers;
  struct Claim {
    std::string peer_id;
    ClaimOutcome outcome;
    bool refused = false;
  };
  std::vector<Claim> claims;
  std::vector<std::pair<std::string, ClusterSeat>> seats;
  bool stopping = false;

  static PeerLocation at(uint32_t slot) { return PeerLocation{0, slot, 1}; }
  void join(uint32_t slot, std::string peer_id, std::string stream_id) {
    Session& s = sessions[slot];
    s.peer_id = std::move(peer_id);
    s.stream_id = std::move(stream_id);
    s.rendition = "720p";
    s.digest = cluster::session_digest("session-" + s.peer_id);
  }
  ClusterMember member(uint32_t slot) const {
    const Session& s = sessions.at(slot);
    return ClusterMember{at(slot), s.join_sequence, s.peer_id, s.stream_id, s.rendition, s.digest, &s.topology, true};
  }

  void joined_members(std::vector<ClusterMember>& out) override {
    out.clear();
    for (const auto& [slot, s] : sessions) out.push_back(member(slot));
  }
  std::optional<ClusterMember> joined_member(const PeerLocation& who) override {
    if (who.generation != 1 || !sessions.contains(who.slot)) return std::nullopt;
    return member(who.slot);
  }
  bool close_superseded(const PeerLocation& who) override { return sessions.erase(who.slot) != 0; }
  void close_replaced(const PeerLocation& who, std::string_view) override { sessions.erase(who.slot); }
  void send_peers(const PeerLocation& who, uint32_t, const CandidateList& local, const CandidateList& remote,
                  std::string_view, uint64_t) override {
    Peers p{who, {}, {}};
    local.for_each([&](std::string_view id, std::string_view, std::string_view) { p.local.emplace_back(id); });
    remote.for_each([&](std::string_view id, std::string_view, std::string_view) { p.remote.emplace_back(id); });
    peers.push_back(std::move(p));
  }
  uint32_t directory_shard(std::string_view) const override { return 0; }
  void finish_claim(std::unique_ptr<ClaimPeer> m, ClaimOutcome outcome, std::string_view, const PeerLocation&) override {
    claims.push_back({m->peer_id, outcome, false});
  }
  void refuse_claim(std::unique_ptr<ClaimPeer> m, ClaimOutcome, const PeerLocation&) override {
    claims.push_back({m->peer_id, ClaimOutcome::taken, true});
  }
  bool seat_decided(std::unique_ptr<EnterSwarm> enter, ClusterSeat seat) override {
    seats.emplace_back(std::string(enter->member.peer_id.view()), seat);
    return true;
  }
  bool policy_read(std::optional<std::string_view>) override { return false; }
  void summaries_read(uint64_t, ValkeyState, std::span<const std::string_view>) override {}
  void signal_failed(std::unique_ptr<SignalPacket> m) override { failed.push_back(std::move(m)); }
  void signal_sent(std::unique_ptr<SignalPacket> m) override { sent.push_back(std::move(m)); }
  void signal_not_found(const PeerLocation&, std::string_view, std::string_view) override {}
  void signal_missed(const cluster::Envelope&) override {}
  RemoteDelivery deliver_signal(const PeerLocation& target, std::string_view to, std::string_view stream_id,
                                std::string_view text) override {
    auto it = sessions.find(target.slot);
    if (target.generation != 1 || it == sessions.end()) return RemoteDelivery::gone;
    if (it->second.peer_id != to || it->second.stream_id != stream_id) return RemoteDelivery::other;
    delivered.push_back({target, std::string(to), std::string(text)});
    return RemoteDelivery::delivered;
  }
  // Tracker swarms: the members this shard holds, and what the sync said.
  std::vector<TrackerMemberRef> tracker;
  struct Counts {
    TrackerId info_hash;
    uint32_t seeders, members;
  };
  std::vector<Counts> counts;
  std::vector<TrackerMemberRef> refused;
  void tracker_members(std::vector<TrackerMemberRef>& out) override { out = tracker; }
  std::optional<TrackerMemberRef> tracker_member(const TrackerId& info_hash, const TrackerId& peer_id) override {
    for (const TrackerMemberRef& m : tracker)
      if (m.info_hash == info_hash && m.peer_id == peer_id) return m;
    return std::nullopt;
  }
  void tracker_counts(const TrackerId& info_hash, uint32_t seeders, uint32_t members) override {
    counts.push_back({info_hash, seeders, members});
  }
  void tracker_refused(const TrackerMemberRef& member) override {
    std::erase_if(tracker, [&](const TrackerMemberRef& m) {
      return m.info_hash == member.info_hash && m.peer_id == member.peer_id && m.who == member.who;
    });
    refused.push_back(member);
  }
  // The recipients on other edges given for each tracker_offers call, in order.
  std::vector<std::vector<std::string>> candidates;
  void tracker_candidates(std::unique_ptr<TrackerPacket>, size_t,
                          std::span<const RemoteTrackerMember> members) override {
    std::vector<std::string> ids;
    for (const RemoteTrackerMember& m : members) ids.emplace_back(m.peer_id_hex);
    candidates.push_back(std::move(ids));
  }
  void tracker_from_edge(const cluster::Envelope&) override {}
  bool draining() const override { return stopping; }
  bool clients_gone() const override { return true; }
};

// The Valkey clients' fixture (a reactor on shard 0, run_until) without a
// client of its own: the syncs under test hold theirs.
class ClusterSyncValkeyTest : public valkey::test::ValkeyClientFixture<valkey::Client> {
 protected:
  void SetUp() override {
    ValkeyClientFixture::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(server_.start());
    settings_.address = server_.address();
  }
  void TearDown() override {
    // Drained: each sync closes its links on its next tick.
    host_a_.stopping = host_b_.stopping = true;
    EXPECT_TRUE(run_until([&] { return (!a_ || a_->stopped()) && (!b_ || b_->stopped()); }, 5000));
    a_.reset();
    b_.reset();
    ValkeyClientFixture::TearDown();
  }
  std::unique_ptr<ClusterSync> start(const std::string& edge_id, FakeHost& host) {
    ClusterSyncContext context{reactor_, settings_, edge_id, 0, 1, edge_id.size()};
    auto sync = ValkeyClusterSync::create(context, host);
    EXPECT_TRUE(sync.has_value()) << sync.error();
    if (!sync) return nullptr;
    EXPECT_TRUE(run_until([&] { return (*sync)->ready(); }, 5000)) << "never ready";
    return std::move(*sync);
  }
  // Both edges up, and each has read the other as alive (the heartbeat).
  void start_both() {
    a_ = start(edge_a_, host_a_);
    b_ = start(edge_b_, host_b_);
    ASSERT_TRUE(a_ && b_);
    ASSERT_TRUE(run_until([&] { return live_edges(*a_) == 2 && live_edges(*b_) == 2; }, 5000));
  }
  static uint32_t live_edges(const ClusterSync& sync) {
    MetricsSnapshot snapshot;
    sync.add_metrics(snapshot);
    return snapshot.live_edges;
  }
  std::string get(const std::string& key) {
    SyncClient c(server_.port(), "");
    redisReply* r = c.command({"GET", key});
    std::string value = r != nullptr && r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len) : "";
    freeReplyObject(r);
    return value;
  }
  std::string hget(const std::string& key, const std::string& field) {
    SyncClient c(server_.port(), "");
    redisReply* r = c.command({"HGET", key, field});
    std::string value = r != nullptr && r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len) : "";
    freeReplyObject(r);
    return value;
  }
  std::string owner_key(std::string_view peer_id) {
    std::string key;
    cluster::owner_key(key, settings_.key_prefix, peer_id);
    return key;
  }
  std::string record_key(std::string_view stream_id) {
    std::string key;
    cluster::record_key(key, settings_.key_prefix, stream_id, "720p");
    return key;
  }
  std::unique_ptr<SignalPacket> signal(std::string to, std::string stream, std::string text) {
    auto m = std::make_unique<SignalPacket>();
    m->to = std::move(to);
    m->sender_stream = std::move(stream);
    m->text = std::move(text);
    m->ref_raw = "\"7\"";
    m->sender = FakeHost::at(3);
    return m;
  }

  RedisServer server_;
  ClusterSettings settings_;
  const std::string edge_a_ = "edge-a", edge_b_ = "edge-b";
  FakeHost host_a_, host_b_;
  std::unique_ptr<ClusterSync> a_, b_;
};

TEST_F(ClusterSyncValkeyTest, RegisterWritesPresenceAndUnregisterRemovesIt) {
  a_ = start(edge_a_, host_a_);
  ASSERT_TRUE(a_);
  host_a_.join(5, "alice", "s1");
  a_->register_member(host_a_.member(5));
  ASSERT_TRUE(run_until([&] { return !hget(record_key("s1"), "alice").empty(); }, 5000));
  const std::string owner_text = get(owner_key("alice"));  // the record's views point into it
  auto owner = cluster::decode_owner(owner_text);
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->edge_id, "edge-a");
  EXPECT_EQ(owner->slot, 5u);
  EXPECT_EQ(owner->generation, 1u);
  EXPECT_EQ(owner->stream_id, "s1");
  EXPECT_EQ(owner->session_digest, host_a_.sessions[5].digest);
  const std::string swarm_text = hget(record_key("s1"), "alice");
  auto swarm = cluster::decode_swarm(swarm_text);
  ASSERT_TRUE(swarm.has_value());
  EXPECT_EQ(swarm->edge_id, "edge-a");
  EXPECT_EQ(swarm->slot, 5u);

  a_->unregister_member(host_a_.member(5));
  a_->release_owner("alice", FakeHost::at(5), "s1", "720p", host_a_.sessions[5].digest);
  ASSERT_TRUE(run_until([&] { return hget(record_key("s1"), "alice").empty() && get(owner_key("alice")).empty(); },
                        5000));
}

TEST_F(ClusterSyncValkeyTest, ReleaseLeavesASuccessorsOwnerKey) {
  a_ = start(edge_a_, host_a_);
  ASSERT_TRUE(a_);
  host_a_.join(5, "alice", "s1");
  a_->register_member(host_a_.member(5));
  ASSERT_TRUE(run_until([&] { return !get(owner_key("alice")).empty(); }, 5000));
  // Another connection's record (slot 6): not the one the key holds.
  a_->release_owner("alice", FakeHost::at(6), "s1", "720p", host_a_.sessions[5].digest);
  host_a_.join(9, "marker", "s1");
  a_->register_member(host_a_.member(9));  // sent after the release: done when it is
  ASSERT_TRUE(run_until([&] { return !get(owner_key("marker")).empty(); }, 5000));
  EXPECT_FALSE(get(owner_key("alice")).empty());
}

TEST_F(ClusterSyncValkeyTest, SignalCrossesToTheTargetsEdge) {
  start_both();
  host_b_.join(7, "bob", "s1");
  b_->register_member(host_b_.member(7));
  ASSERT_TRUE(run_until([&] { return !get(owner_key("bob")).empty(); }, 5000));

  a_->route_signal(signal("bob", "s1", R"({"type":"signal","from":"alice"})"));
  ASSERT_TRUE(run_until([&] { return !host_b_.delivered.empty() && !host_a_.sent.empty(); }, 5000));
  ASSERT_EQ(host_b_.delivered.size(), 1u);
  EXPECT_EQ(host_b_.delivered[0].target.slot, 7u);
  EXPECT_EQ(host_b_.delivered[0].to, "bob");
  EXPECT_EQ(host_b_.delivered[0].text, R"({"type":"signal","from":"alice"})");
  EXPECT_TRUE(host_a_.failed.empty());
}

TEST_F(ClusterSyncValkeyTest, SignalToAnotherStreamOrAnUnknownPeerFails) {
  start_both();
  host_b_.join(7, "bob", "s1");
  b_->register_member(host_b_.member(7));
  ASSERT_TRUE(run_until([&] { return !get(owner_key("bob")).empty(); }, 5000));

  a_->route_signal(signal("bob", "s2", "x"));       // the same-stream guard
  a_->route_signal(signal("nobody", "s1", "y"));    // no owner key
  ASSERT_TRUE(run_until([&] { return host_a_.failed.size() == 2; }, 5000));
  EXPECT_TRUE(host_b_.delivered.empty());
  EXPECT_TRUE(host_a_.sent.empty());
}

TEST_F(ClusterSyncValkeyTest, QueryProposesPeersOfOtherLiveEdges) {
  start_both();
  host_b_.join(7, "bob", "s1");
  b_->register_member(host_b_.member(7));
  host_b_.join(8, "bea", "other-stream");
  b_->register_member(host_b_.member(8));
  host_a_.join(5, "alice", "s1");
  a_->register_member(host_a_.member(5));
  ASSERT_TRUE(run_until([&] { return !hget(record_key("s1"), "bob").empty() && !hget(record_key("s1"), "alice").empty(); },
                        5000));

  ClusterQuery query;
  query.who = FakeHost::at(5);
  query.join_sequence = 1;
  query.wanted = 4;
  a_->query(host_a_.member(5), std::move(query));
  ASSERT_TRUE(run_until([&] { return !host_a_.peers.empty(); }, 5000));
  // bob only: not alice herself (her own edge's), not bea (another stream).
  EXPECT_EQ(host_a_.peers[0].remote, std::vector<std::string>{"bob"});
  EXPECT_TRUE(host_a_.peers[0].local.empty());
}

TEST_F(ClusterSyncValkeyTest, ClaimOfAPeerIdHeldOnALiveEdgeIsRefused) {
  start_both();
  auto claim = [](std::string peer_id, uint32_t slot) {
    auto m = std::make_unique<ClaimPeer>();
    m->peer_id = std::move(peer_id);
    m->stream_id = "s1";
    m->rendition = "720p";
    m->who = FakeHost::at(slot);
    m->join_sequence = 1;
    return ClusterClaim{std::move(m), ClaimOutcome::claimed, "session-" + std::to_string(slot), {}, {}, 0};
  };
  a_->claim(claim("carol", 4));
  ASSERT_TRUE(run_until([&] { return !host_a_.claims.empty(); }, 5000));
  EXPECT_EQ(host_a_.claims[0].outcome, ClaimOutcome::claimed);
  EXPECT_FALSE(host_a_.claims[0].refused);

  b_->claim(claim("carol", 6));
  ASSERT_TRUE(run_until([&] { return !host_b_.claims.empty(); }, 5000));
  EXPECT_TRUE(host_b_.claims[0].refused);
  const std::string owner_text = get(owner_key("carol"));
  auto owner = cluster::decode_owner(owner_text);
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->edge_id, "edge-a");
}

TEST_F(ClusterSyncValkeyTest, ViewerCapCountsEveryEdge) {
  start_both();
  auto enter = [](std::string peer_id, uint32_t slot) {
    auto e = std::make_unique<EnterSwarm>();
    e->stream_id = "s1";
    e->rendition = "720p";
    e->member.peer_id.assign(peer_id);
    e->max_viewers = 1;
    e->who = FakeHost::at(slot);
    e->join_sequence = 1;
    return e;
  };
  a_->admit(enter("alice", 5));
  ASSERT_TRUE(run_until([&] { return !host_a_.seats.empty(); }, 5000));
  EXPECT_EQ(host_a_.seats[0].second, ClusterSeat::seated);
  b_->admit(enter("bob", 7));
  ASSERT_TRUE(run_until([&] { return !host_b_.seats.empty(); }, 5000));
  EXPECT_EQ(host_b_.seats[0].second, ClusterSeat::full);
}

TrackerId tracker_id(char c) {
  TrackerId out;
  out.fill(static_cast<uint8_t>(c));
  return out;
}

// The last counts a host was given for a swarm equal (seeders, members).
bool counted(const FakeHost& host, uint32_t seeders, uint32_t members) {
  return !host.counts.empty() && host.counts.back().seeders == seeders && host.counts.back().members == members;
}

TEST_F(ClusterSyncValkeyTest, TrackerCountsCoverEveryEdgeAndFollowRemovals) {
  start_both();
  const TrackerId swarm = tracker_id('h');
  // a: a seeder and a leecher; b: a leecher. (The hosts list no members,
  // so the periodic refresh sends nothing of its own.)
  const TrackerId seeder = tracker_id('s'), leecher = tracker_id('l'), other = tracker_id('o');
  a_->tracker_register(swarm, seeder, FakeHost::at(1), true);
  a_->tracker_register(swarm, leecher, FakeHost::at(2), false);
  ASSERT_TRUE(run_until([&] { return counted(host_a_, 1, 2); }, 5000));
  b_->tracker_register(swarm, other, FakeHost::at(3), false);
  ASSERT_TRUE(run_until([&] { return counted(host_b_, 1, 3); }, 5000));
  EXPECT_EQ(host_b_.counts.back().info_hash, swarm);
  // The leecher completes: a seeder now.
  a_->tracker_register(swarm, leecher, FakeHost::at(2), true);
  ASSERT_TRUE(run_until([&] { return counted(host_a_, 2, 3); }, 5000));
  // The seeder leaves; a removal returns the counts too.
  a_->tracker_unregister(swarm, seeder, FakeHost::at(1));
  ASSERT_TRUE(run_until([&] { return counted(host_a_, 1, 2); }, 5000));
  // A removal naming another connection leaves the member, and the counts.
  const size_t before = host_a_.counts.size();
  a_->tracker_unregister(swarm, leecher, FakeHost::at(9));
  ASSERT_TRUE(run_until([&] { return host_a_.counts.size() > before; }, 5000));
  EXPECT_TRUE(counted(host_a_, 1, 2));
  EXPECT_TRUE(host_a_.refused.empty());
  EXPECT_TRUE(host_b_.refused.empty());
}

TEST_F(ClusterSyncValkeyTest, TrackerPeerIdHeldOnALiveEdgeIsRefused) {
  start_both();
  const TrackerId swarm = tracker_id('h'), peer = tracker_id('p');
  TrackerMemberRef on_a{swarm, peer, FakeHost::at(1), false};
  TrackerMemberRef on_b{swarm, peer, FakeHost::at(2), false};
  host_a_.tracker = {on_a};
  a_->tracker_register(swarm, peer, on_a.who, false);
  ASSERT_TRUE(run_until([&] { return counted(host_a_, 0, 1); }, 5000));
  host_b_.tracker = {on_b};
  b_->tracker_register(swarm, peer, on_b.who, false);
  ASSERT_TRUE(run_until([&] { return !host_b_.refused.empty(); }, 5000));
  EXPECT_EQ(host_b_.refused[0].who, on_b.who);
  EXPECT_TRUE(host_b_.tracker.empty());
  EXPECT_TRUE(counted(host_b_, 0, 1));  // a's member only
  // a registers its own member again freely.
  const size_t before = host_a_.counts.size();
  a_->tracker_register(swarm, peer, on_a.who, false);
  ASSERT_TRUE(run_until([&] { return host_a_.counts.size() > before; }, 5000));
  EXPECT_TRUE(host_a_.refused.empty());
  std::string hex, key, peer_hex;
  cluster::tracker_record_key(key, settings_.key_prefix, cluster::hex_id(hex, std::string_view("hhhhhhhhhhhhhhhhhhhh")));
  cluster::hex_id(peer_hex, std::string_view("pppppppppppppppppppp"));
  const std::string record = hget(key, peer_hex);
  auto holder = cluster::decode_swarm(record);
  ASSERT_TRUE(holder.has_value());
  EXPECT_EQ(holder->edge_id, "edge-a");
  // Once a's member has left, b's registers.
  host_a_.tracker.clear();
  a_->tracker_unregister(swarm, peer, on_a.who);
  ASSERT_TRUE(run_until([&] { return hget(key, peer_hex).empty(); }, 5000));
  host_b_.tracker = {on_b};
  b_->tracker_register(swarm, peer, on_b.who, false);
  ASSERT_TRUE(run_until([&] { return hget(key, peer_hex).find("edge-b") != std::string::npos; }, 5000));
  EXPECT_EQ(host_b_.tracker.size(), 1u);
}

TEST_F(ClusterSyncValkeyTest, TrackerOffersAcrossEdgesGoToTheFewestOffersFirst) {
  start_both();
  const TrackerId swarm = tracker_id('h');
  // Three members on b, one on a (the offerer's own edge: never a recipient).
  for (char c : {'x', 'y', 'z'}) b_->tracker_register(swarm, tracker_id(c), FakeHost::at(static_cast<uint32_t>(c)), false);
  ASSERT_TRUE(run_until([&] { return counted(host_b_, 0, 3); }, 5000));
  a_->tracker_register(swarm, tracker_id('a'), FakeHost::at(1), false);
  ASSERT_TRUE(run_until([&] { return counted(host_a_, 0, 4); }, 5000));
  auto offer = [&](size_t offers) {
    auto m = std::make_unique<TrackerPacket>();
    m->info_hash = swarm;
    m->peer_id = tracker_id('a');
    m->offer_ids.assign(offers, tracker_id('o'));
    a_->tracker_offers(std::move(m), 0);
  };
  // One offer at a time: each goes to a member no offer went to yet.
  std::set<std::string> seen;
  for (size_t round = 1; round <= 3; ++round) {
    offer(1);
    ASSERT_TRUE(run_until([&] { return host_a_.candidates.size() == round; }, 5000));
    ASSERT_EQ(host_a_.candidates.back().size(), 1u);
    seen.insert(host_a_.candidates.back()[0]);
  }
  EXPECT_EQ(seen.size(), 3u);
  // Three offers at once: every member of b, once each.
  offer(3);
  ASSERT_TRUE(run_until([&] { return host_a_.candidates.size() == 4; }, 5000));
  EXPECT_EQ(std::set<std::string>(host_a_.candidates.back().begin(), host_a_.candidates.back().end()), seen);
  EXPECT_EQ(host_a_.candidates.back().size(), 3u);
}

TEST_F(ClusterSyncValkeyTest, TrackerPeerIdHeldOnADeadEdgeIsTakenOver) {
  start_both();
  const TrackerId swarm = tracker_id('h'), peer = tracker_id('p');
  // A live record of edge-c, an edge with no liveness entry (it died before
  // its records expired).
  std::string hex, index, records, dead;
  cluster::hex_id(hex, std::string_view("hhhhhhhhhhhhhhhhhhhh"));
  cluster::tracker_index_key(index, settings_.key_prefix, hex);
  cluster::tracker_record_key(records, settings_.key_prefix, hex);
  cluster::encode_swarm(dead, cluster::SwarmRecord{"edge-c", 0, 4, 1, true, -1, {}, {}, "{}"});
  std::string peer_hex;
  cluster::hex_id(peer_hex, std::string_view("pppppppppppppppppppp"));
  {
    SyncClient c(server_.port(), "");
    freeReplyObject(c.command({"ZADD", index, "99999999999999", peer_hex}));
    freeReplyObject(c.command({"HSET", records, peer_hex, dead}));
  }
  TrackerMemberRef on_b{swarm, peer, FakeHost::at(2), false};
  host_b_.tracker = {on_b};
  b_->tracker_register(swarm, peer, on_b.who, false);
  ASSERT_TRUE(run_until([&] { return hget(records, peer_hex).find("edge-b") != std::string::npos; }, 5000));
  EXPECT_TRUE(host_b_.refused.empty());
  EXPECT_EQ(host_b_.tracker.size(), 1u);
}

}  // namespace
}  // namespace mf::edge
