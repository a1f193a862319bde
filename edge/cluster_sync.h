#pragma once
// The cluster of edges as one role of a shard (docs/cluster.md): what a shard
// asks of the cluster (ClusterSync) and what the cluster needs back from the
// shard (ClusterHost). EdgeShard holds a ClusterSync only with [valkey]
// address; alone it holds none and no Valkey code runs (docs/architecture.md,
// "The edge's roles"). The one implementation, over Valkey, is
// edge/cluster_sync_valkey.h, in its own library (mf_edge_cluster): nothing of
// the edge's core includes a Valkey header.
//
// Every call is made on the shard's thread, and every callback of ClusterHost
// comes on it too: from the shard's reactor when Valkey answers (or a
// deadline passes), or from inside the call itself when the link cannot take
// the command (then decided at once, as an edge alone decides).
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edge/cluster_keys.h"
#include "edge/cluster_summary.h"
#include "edge/edge_messages.h"
#include "edge/edge_metrics.h"
#include "edge/edge_settings.h"
#include "edge/peer_directory.h"
#include "edge/swarm.h"
#include "edge/tracker_message.h"
#include "edge/tracker_swarms.h"

namespace mf {
class Reactor;
}

namespace mf::edge {

// A joined session of the shard as the cluster's presence records name it
// (docs/cluster.md, "Presence"). The views are valid until the shard next
// changes its sessions (the call that hands it over, no longer).
struct ClusterMember {
  PeerLocation who;
  uint32_t join_sequence = 0;
  std::string_view peer_id, stream_id, rendition;
  std::string_view session_digest;  // cluster::session_digest of its session
  const Topology* topology = nullptr;
  bool accepting_peers = true;
};

// A `peers` waiting for candidates from other edges.
struct ClusterQuery {
  PeerLocation who;
  uint32_t join_sequence = 0;
  uint64_t started_ns = 0;  // the join's start, for its histogram; 0: need-peers
  uint64_t deadline_ms = 0;  // reactor clock: then the local candidates go alone
  uint32_t wanted = 0;
  CandidateList local;
  std::vector<std::string> exclude;
  std::string ref_raw;
};

// A peerId claim the directory shard granted locally, for the cluster to
// confirm (docs/cluster.md, "peerId uniqueness and takeover").
struct ClusterClaim {
  std::unique_ptr<ClaimPeer> message;
  ClaimOutcome local = ClaimOutcome::claimed;  // what this edge's directory decided
  std::string session;                         // the identity's session per the directory
  PeerLocation replaced;                       // local taken_over: this edge's old holder
  std::string stale;                           // retry: the dead edge's record to override
  uint64_t deadline_ms = 0;                    // then decided locally (Valkey slow)
};

// The cluster's verdict on a seat among a stream's viewers (docs/cluster.md,
// "Cluster-wide maxViewers").
enum class ClusterSeat : uint8_t {
  seated,      // counted cluster-wide: the local table does not cap again
  full,        // answered as a full stream
  unanswered,  // Valkey down or slow: the edge-local cap, as alone
};

// What became of a signal from another edge addressed to a connection here.
enum class RemoteDelivery : uint8_t {
  delivered,
  gone,   // the connection is gone for good (slot and generation never come back)
  other,  // the slot holds another connection, or it left the stream
};

// A member of a tracker swarm on another live edge, from a sample of the
// swarm's presence (docs/cluster.md, "Tracker swarms across edges").
struct RemoteTrackerMember {
  std::string_view peer_id_hex;
  std::string_view edge_id;
  uint32_t shard = 0, slot = 0, generation = 0;
};

// What the cluster needs from its shard.
class ClusterHost {
 public:
  virtual ~ClusterHost() = default;

  // Presence: every joined session of the shard, into `out` (cleared first).
  virtual void joined_members(std::vector<ClusterMember>& out) = 0;
  // The joined session at `who`, if it still is one.
  virtual std::optional<ClusterMember> joined_member(const PeerLocation& who) = 0;
  // Another holder owns the peerId in the cluster: the joined session at
  // `who` is closed with 4001; false when it is not joined any more.
  virtual bool close_superseded(const PeerLocation& who) = 0;
  // Taken over on another edge: the connection at `who` is closed with 4001
  // if it still holds `peer_id` (joined, or switching streams).
  virtual void close_replaced(const PeerLocation& who, std::string_view peer_id) = 0;
  // Sends `peers` to the joined session at `who` (if it still is the join
  // `join_sequence`): `local`, then `remote`.
  virtual void send_peers(const PeerLocation& who, uint32_t join_sequence, const CandidateList& local,
                          const CandidateList& remote, std::string_view ref_raw, uint64_t started_ns) = 0;
  // The shard of this edge that owns `peer_id`'s directory entry.
  virtual uint32_t directory_shard(std::string_view peer_id) const = 0;

  // Claims: the verdict to the joining connection (a taken_over closes
  // `replaced`); refused: the local grant is given back first (and a local
  // takeover's old holder closed).
  virtual void finish_claim(std::unique_ptr<ClaimPeer> m, ClaimOutcome outcome, std::string_view session,
                            const PeerLocation& replaced) = 0;
  virtual void refuse_claim(std::unique_ptr<ClaimPeer> m, ClaimOutcome local, const PeerLocation& replaced) = 0;
  // The seat for `enter`; false when its join was abandoned meanwhile
  // (nothing entered).
  virtual bool seat_decided(std::unique_ptr<EnterSwarm> enter, ClusterSeat seat) = 0;

  // Shard 0: the policy key's text (nullopt: no key); true when a new
  // document was loaded from it.
  virtual bool policy_read(std::optional<std::string_view> text) = 0;
  // The answer to read_summaries(id): the other live edges' summaries.
  virtual void summaries_read(uint64_t id, ValkeyState state, std::span<const std::string_view> others) = 0;

  // Signals (docs/cluster.md, "Signals across edges"): the packet goes back
  // to its sender's shard as peer-not-found, or is done with (sent).
  virtual void signal_failed(std::unique_ptr<SignalPacket> m) = 0;
  virtual void signal_sent(std::unique_ptr<SignalPacket> m) = 0;
  // peer-not-found to the sender of a signal of this shard.
  virtual void signal_not_found(const PeerLocation& sender, std::string_view to, std::string_view ref_raw) = 0;
  // A signal of this shard missed at a place this edge had cached
  // (`missed`: without its text): its target's directory shard settles it.
  virtual void signal_missed(const cluster::Envelope& e) = 0;
  // A signal from another edge to the connection at `target`.
  virtual RemoteDelivery deliver_signal(const PeerLocation& target, std::string_view to, std::string_view stream_id,
                                        std::string_view text) = 0;

  // Tracker swarms: every member this shard registers (cleared first); the
  // candidates on other edges for the offers of `m` from index `first`; an
  // offer or answer from another edge (its kind says which).
  virtual void tracker_members(std::vector<TrackerMemberRef>& out) = 0;
  // The member `peer_id` of the swarm here, if it still is one.
  virtual std::optional<TrackerMemberRef> tracker_member(const TrackerId& info_hash, const TrackerId& peer_id) = 0;
  // The swarm's live members on every edge, as Valkey counted them when it
  // registered or removed members of it (seeders among members).
  virtual void tracker_counts(const TrackerId& info_hash, uint32_t seeders, uint32_t members) = 0;
  // Another live edge holds the member's peer_id in its swarm: the member
  // leaves (if it still is `member.who`) and its connection gets the
  // failure `peer_id in use by another connection`.
  virtual void tracker_refused(const TrackerMemberRef& member) = 0;
  virtual void tracker_candidates(std::unique_ptr<TrackerPacket> m, size_t first,
                                  std::span<const RemoteTrackerMember> members) = 0;
  virtual void tracker_from_edge(const cluster::Envelope& e) = 0;

  // The shard drains (its clients are leaving), and they are all gone.
  virtual bool draining() const = 0;
  virtual bool clients_gone() const = 0;
};

// What a shard asks of the cluster. Without a ready link every call is a
// counted no-op or decides as an edge alone would (docs/cluster.md, "When
// Valkey is down").
class ClusterSync {
 public:
  virtual ~ClusterSync() = default;

  // This shard's link to the cluster can take commands now.
  virtual bool ready() const = 0;
  virtual ValkeyState state() const = 0;
  virtual void add_metrics(MetricsSnapshot& snapshot) const = 0;
  // Counts candidates of other edges sent in a `peers`.
  virtual void count_remote_proposals(uint64_t n) = 0;

  // Presence of a joined session (join, update), its swarm record's removal
  // (leave, close, switch: only while the record is still the one given),
  // and the owner key of a claim given back (only while it still names it).
  virtual void register_member(const ClusterMember& member) = 0;
  virtual void unregister_member(const ClusterMember& member) = 0;
  virtual void release_owner(std::string_view peer_id, const PeerLocation& who, std::string_view stream_id,
                             std::string_view rendition, std::string_view session_digest) = 0;

  // The claim confirmed, refused or decided locally: ClusterHost::finish_claim
  // or refuse_claim, exactly once (within the claim's deadline).
  virtual void claim(ClusterClaim claim) = 0;
  // A cluster-wide seat for `enter` (its max_viewers is the cap):
  // ClusterHost::seat_decided, exactly once.
  virtual void admit(std::unique_ptr<EnterSwarm> enter) = 0;
  // Candidates from other edges for `requester`: ClusterHost::send_peers at
  // most once (not when the session left meanwhile).
  virtual void query(const ClusterMember& requester, ClusterQuery query) = 0;
  // A signal whose target this edge does not hold (on the target's directory
  // shard): ClusterHost::signal_sent or signal_failed, exactly once.
  virtual void route_signal(std::unique_ptr<SignalPacket> m) = 0;

  // Shard 0: this edge's summary for the other edges' operator pages, and a
  // read of theirs (false: not sent; otherwise ClusterHost::summaries_read).
  virtual void publish_summary(std::string_view summary) = 0;
  virtual bool read_summaries(uint64_t id) = 0;

  // Tracker swarms across edges.
  // A member joined (or became a seeder or a leecher): registered unless
  // another live edge holds its peer_id in the swarm, then
  // ClusterHost::tracker_refused; the swarm's counts come back
  // (ClusterHost::tracker_counts), as they do from a removal and from the
  // periodic refresh.
  virtual void tracker_register(const TrackerId& info_hash, const TrackerId& peer_id, const PeerLocation& who,
                                bool seeder) = 0;
  virtual void tracker_unregister(const TrackerId& info_hash, const TrackerId& peer_id, const PeerLocation& who) = 0;
  // The offers of `m` from `first` on found no member here: a sample of the
  // swarm's members on other edges (ClusterHost::tracker_candidates).
  virtual void tracker_offers(std::unique_ptr<TrackerPacket> m, size_t first) = 0;
  // An envelope to shard `shard` of edge `edge_id`; false when not sent.
  virtual bool publish(std::string_view edge_id, uint32_t shard, const cluster::Envelope& e) = 0;

  // Drain: the links close once ClusterHost::clients_gone(); then stopped().
  virtual size_t live_sockets() const = 0;
  virtual bool stopped() const = 0;
};

// Where a shard's cluster sync runs and what it is.
struct ClusterSyncContext {
  Reactor& reactor;
  const ClusterSettings& settings;
  const std::string& edge_id;
  uint32_t shard = 0, shard_count = 1;
  uint64_t seed = 0;  // the client's randomness (reconnect jitter)
};

}  // namespace mf::edge
