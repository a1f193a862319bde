#pragma once
// ClusterSync over Valkey (docs/cluster.md; key layout in edge/cluster_keys.h):
// each shard has its own valkey::Client (or ClusterClient) on its own ring
// and, for the sessions its host holds, registers presence, answers signals
// published to its channel, and adds candidates from other edges to `peers`.
//
// What is exact and what is not:
//   - presence is eventually consistent: written when a peer joins, refreshed
//     every refresh_ms, removed when it leaves; an edge that dies leaves its
//     records until its liveness entry expires (3 s: not proposed any more) and
//     the records themselves expire (presence_ttl_ms).
//   - while Valkey is down the edge serves alone: no write is queued (they are
//     counted as skipped), and every local peer is registered again as soon as
//     the command link is ready, so nothing is lost that a refresh would not
//     restore.
//   - signals keep their order per pair: every signal to one target goes
//     through the target's directory shard on this edge (hash of its peerId),
//     whose one Valkey connection sends lookups and publishes in order, and
//     Valkey delivers one channel's messages in order.
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/base/transparent_string_hash.h"
#include "common/valkey/valkey_client.h"
#include "common/valkey/valkey_cluster_client.h"
#include "edge/cluster_sync.h"

namespace mf::edge {

class ValkeyClusterSync final : public ClusterSync {
 public:
  // Connects (in the background), subscribes to this shard's signal channel
  // and starts the periodic refresh, heartbeat and deadlines on the reactor.
  static std::expected<std::unique_ptr<ClusterSync>, std::string> create(const ClusterSyncContext& context,
                                                                         ClusterHost& host);
  ~ValkeyClusterSync() override;

  bool ready() const override;
  ValkeyState state() const override;
  void add_metrics(MetricsSnapshot& snapshot) const override;
  void count_remote_proposals(uint64_t n) override { counters_.remote_proposals += n; }
  void register_member(const ClusterMember& member) override;
  void unregister_member(const ClusterMember& member) override;
  void release_owner(std::string_view peer_id, const PeerLocation& who, std::string_view stream_id,
                     std::string_view rendition, std::string_view session_digest) override;
  void claim(ClusterClaim claim) override;
  void admit(std::unique_ptr<EnterSwarm> enter) override;
  void query(const ClusterMember& requester, ClusterQuery query) override;
  void route_signal(std::unique_ptr<SignalPacket> m) override;
  void publish_summary(std::string_view summary) override;
  bool read_summaries(uint64_t id) override;
  void tracker_register(const TrackerId& info_hash, const TrackerId& peer_id, const PeerLocation& who,
                        bool seeder) override;
  void tracker_unregister(const TrackerId& info_hash, const TrackerId& peer_id, const PeerLocation& who) override;
  void tracker_offers(std::unique_ptr<TrackerPacket> m, size_t first) override;
  bool publish(std::string_view edge_id, uint32_t shard, const cluster::Envelope& e) override;
  size_t live_sockets() const override { return client_ ? client_->live_sockets() : 0; }
  bool stopped() const override { return !client_ || client_->stopped(); }

 private:
  ValkeyClusterSync(const ClusterSyncContext& context, ClusterHost& host);
  std::expected<void, std::string> start(uint64_t seed);

  // The Lua scripts (cluster_sync_valkey.cc), in valkey::Config::scripts order.
  enum class Script : uint8_t {
    register_members,
    unregister_member,
    claim,
    own,
    admit,
    delete_if_equal,
    query,
    tracker_register,
    tracker_unregister,
    tracker_query,
  };
  // Queues one command or EVALSHA (args = numkeys, keys, arguments); false
  // (counted) when not sent.
  bool command(std::span<const std::string_view> argv, valkey::Completion done = {});
  bool script(Script script, std::span<const std::string_view> args, valkey::Completion done = {});
  uint64_t now_ms() const;

  // ---- presence (cluster_sync_valkey.cc)
  void on_state(const valkey::StateEvent& event);
  // Re-registers the joined sessions of one part of the refresh period
  // (cluster_sync_valkey_support.h, refresh_parts), or all of them
  // (all_refresh_parts: after a reconnect).
  void refresh(uint32_t part);
  void heartbeat();
  void tick();
  void on_edges(valkey::CommandStatus status, const resp::ReplyView* reply);
  // The owner record of a joined session, written only while the key is free
  // or still names it (refresh, register); false when not sent.
  bool write_owner(const ClusterMember& member, std::string_view ttl);
  void on_owner_written(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply);
  void encode_owner_record(std::string& out, const ClusterMember& member) const;
  void encode_swarm_record(std::string& out, const ClusterMember& member) const;
  // argv_scratch_ set to the swarm scripts' numkeys and three keys; the
  // caller appends ARGV (views valid until the next use of the key scratches).
  std::vector<std::string_view>& swarm_keys(std::string_view stream_id, std::string_view rendition);
  void finish_query(uint64_t cookie, const resp::ReplyView* reply);

  // ---- claims, seats, policy, summaries (cluster_sync_valkey_claims.cc)
  // reply null: no answer in time (or the link failed): decided locally.
  void on_claimed(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply);
  // The holder's edge of a refused claim is alive (EXISTS on its liveness
  // key): refused; dead: claimed over its record.
  void on_holder_checked(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply);
  void refuse(ClusterClaim claim);
  void on_admitted(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply);
  // Shard 0: reads the policy key (on ready, on its notification, every second).
  void poll_policy();
  void on_policy(valkey::CommandStatus status, const resp::ReplyView* reply);
  void on_summaries(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply);

  // ---- signals (cluster_sync_valkey_signals.cc)
  // The peer-location cache (docs/cluster.md, "The peer-location cache"):
  // on the directory shard of each peerId, where a peer of another edge was
  // last found (by a lookup or a presence query), so that a stream of
  // signals to it costs one PUBLISH each, not GET + PUBLISH. An entry is
  // used only while no lookup of the same peer is in flight (the order of
  // one pair's signals), for a sender of the stream it names, and while it
  // is younger than the presence TTL; a miss at the cached place bounces the
  // signal back whole and it is looked up again.
  struct PeerLocationEntry {
    std::string edge_id, stream_id;
    uint32_t shard = 0, slot = 0, generation = 0;
    uint64_t expires_ms = 0;  // reactor clock; 0: no location known (lookups in flight only)
    uint32_t lookups_in_flight = 0;
  };
  bool location_usable(const PeerLocationEntry& entry, std::string_view sender_stream) const;
  void remember_location(std::string_view peer_id, std::string_view edge_id, std::string_view stream_id,
                         uint32_t shard, uint32_t slot, uint32_t generation);
  void forget_location(std::string_view peer_id);
  // Publishes `m` to the target's shard channel; false when Valkey refused it.
  bool publish_signal(uint64_t cookie, const SignalPacket& m, cluster::EnvelopeKind kind, std::string_view edge_id,
                      uint32_t shard, uint32_t slot, uint32_t generation);
  void publish_failure(const cluster::Envelope& e);
  void publish_back(const cluster::Envelope& e, cluster::EnvelopeKind kind);
  void on_message(std::string_view channel, std::string_view payload);
  void on_lookup(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply);
  void on_published(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply);

  // ---- tracker swarms (cluster_sync_valkey_tracker.cc)
  // The members of the swarms whose info_hash falls on this refresh tick
  // (all: every swarm).
  void tracker_refresh(bool all, uint32_t part, std::string_view expiry, std::string_view ttl);
  void on_tracker_candidates(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply);
  // argv_scratch_ set to the tracker scripts' numkeys and four keys (index,
  // records, seeders, offer counts); the caller appends ARGV.
  std::vector<std::string_view>& tracker_swarm_keys(const TrackerId& info_hash);
  void encode_tracker_record(std::string& out, const PeerLocation& who) const;
  // Sends a tracker register or unregister (argv) whose reply carries the
  // swarm's counts (and, for a register, the members another edge holds):
  // on_tracker_written. False when not sent.
  bool tracker_write(Script script, const TrackerId& info_hash, std::span<const std::string_view> argv);
  void on_tracker_written(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply);
  // One member registered, replacing `stale` (a dead edge's record) when
  // not empty.
  void tracker_register_one(const TrackerMemberRef& member, std::string_view stale);

  ClusterHost& host_;
  Reactor& reactor_;
  const ClusterSettings& settings_;
  const std::string& edge_id_;
  const uint32_t shard_;
  const uint32_t shard_count_;
  Rng rng_;
  std::unique_ptr<valkey::Endpoint> client_;
  // PUBLISH to one server, SPUBLISH (sharded) in a cluster.
  std::string_view publish_command_ = "PUBLISH";
  // Signals waiting for a lookup or a publish, by cookie; `cached` when
  // published from the location cache (no subscriber: looked up again).
  struct PendingSignal {
    std::unique_ptr<SignalPacket> packet;
    bool cached = false;
  };
  struct PendingAdmission {
    std::unique_ptr<EnterSwarm> enter;
    uint64_t deadline_ms = 0;  // then the edge-local cap (Valkey slow)
  };
  struct TrackerQuery {
    std::unique_ptr<TrackerPacket> packet;
    size_t first = 0;
  };
  std::unordered_map<uint64_t, PendingSignal> lookups_;  // by cookie
  std::unordered_map<std::string, PeerLocationEntry, TransparentStringHash, std::equal_to<>> peer_locations_;
  std::unordered_map<uint64_t, ClusterQuery> queries_;            // by cookie
  std::unordered_map<uint64_t, ClusterClaim> claims_;             // by cookie
  std::unordered_map<uint64_t, PendingAdmission> admissions_;     // by cookie
  std::unordered_map<uint64_t, TrackerQuery> tracker_queries_;    // by cookie
  std::unordered_set<std::string, TransparentStringHash, std::equal_to<>> live_edges_;
  uint64_t cookie_ = 0;
  uint32_t refresh_tick_ = 0;
  bool was_ready_ = false;
  bool down_logged_ = false;
  bool client_stopping_ = false;  // drained: the client is stopping
  ClusterCounters counters_;
  std::string key_scratch_, key2_scratch_, key3_scratch_, value_scratch_, value2_scratch_, holder_scratch_;
  std::string tracker_hex_scratch_, tracker_hex2_scratch_, stale_scratch_, key4_scratch_;
  std::string edge_field_;  // cluster::encode_edge_field(edge_id_)
  // The swarm of each tracker register or unregister in flight, by cookie
  // (an index here; freed ones are reused, so the steady state allocates
  // nothing).
  std::vector<TrackerId> tracker_writes_;
  std::vector<uint32_t> tracker_writes_free_;
  std::vector<ClusterMember> members_scratch_;
  std::vector<uint32_t> refresh_scratch_;
  std::vector<std::string> batch_scratch_;
  std::vector<std::string_view> argv_scratch_;
  std::vector<TrackerMemberRef> tracker_members_all_, tracker_refresh_scratch_;
  std::vector<RemoteTrackerMember> tracker_members_scratch_;
};

}  // namespace mf::edge
