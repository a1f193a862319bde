#pragma once
// Messages between the shards of one edge: one type per message, listed once
// in EdgeMessages at the end of this file, which generates their kinds, their
// dispatch and their disposal (common/runtime/shard_messages.h). A type that declares
// `must_arrive` undoes or answers something and is never dropped.
//
// Roles, for a connection on shard C:
//   D = directory shard of a peerId  (hash(peerId) % shards)
//   S = stream shard of a streamId   (hash(streamId) % shards)
//   T = shard of a signal's target connection
// join:        C -> D claim_peer -> C (claim_result) -> S enter_swarm -> C (enter_result)
// signal:      C -> D route_signal -> T deliver_signal   (2 hops; 0 when all are C)
//              failures come back to C as signal_failed
// need-peers:  C -> S pick_peers -> C (peers_result)
// In a cluster (docs/cluster.md), C adds candidates from other edges read in
// Valkey before it sends `peers`, and a signal whose target D does not know
// goes from D through Valkey to the target's edge and shard (cluster_sync_valkey_signals.cc).
// A message whose target shard is the sender's own is handled in place, not
// queued. Per ordered pair of shards the mailbox is FIFO, and a pair of peers
// always routes through the same D, so signals between two peers keep their
// order.
//
// Requests that the sender can refuse to its client (ClaimPeer, EnterSwarm,
// PickPeers, RouteSignal, DeliverSignal, SourceAcquire, CollectMetrics,
// TrackerRequestMessage, ScrapeRequest) may find a mailbox full: the client gets an
// error or a close and the drop is counted. Everything else undoes, answers
// or updates something, declares must_arrive, and is never dropped: it waits
// for room in order (docs/architecture.md, "Mailboxes").
#include <cstdint>
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "common/runtime/shard_group.h"
#include "common/net/source_admission.h"
#include "common/runtime/shard_messages.h"
#include "edge/peer_directory.h"
#include "edge/edge_metrics.h"
#include "edge/policy.h"
#include "edge/stream_table.h"
#include "edge/swarm.h"
#include "edge/tracker_message.h"
#include "edge/tracker_reply.h"

namespace mf::edge {


struct ClaimPeer {
  std::string peer_id, stream_id, rendition, offered_session, fresh_session;
  bool has_offered_session = false;
  PeerLocation who;
  uint32_t join_sequence = 0;
};

struct ClaimResultPayload {
  static constexpr bool must_arrive = true;
  ClaimOutcome outcome = ClaimOutcome::taken;
  std::string peer_id;
  std::string stream_id, rendition;  // of the claim: a late undo rebuilds its owner record (cluster)
  std::string session;
  DirectoryHandle handle;  // the directory entry's, unless taken: the connection's own for its signals
  PeerLocation who;
  uint32_t join_sequence = 0;
};

struct ReleasePeer {
  static constexpr bool must_arrive = true;
  std::string peer_id;
  PeerLocation who;
  uint32_t sequence = 0;  // release_peer: the claim it gives back (PeerDirectory::release)
};

struct EnterSwarm {
  std::string stream_id, rendition;
  Member member;
  uint32_t max_viewers = 0;
  uint32_t initial_peers = 0;  // candidates for the first `peers`
  bool mesh_enabled = true;    // false: no `peers` at all
  PeerLocation who;
  uint32_t join_sequence = 0;
};

// Candidates picked on the stream's shard, for the connection's shard to
// send (after adding candidates from other edges, when it is in a cluster).
// One allocation for the whole list: per candidate, peerId, rendition and
// the topology JSON, each followed by a NUL (none of them contains one).
struct CandidateList {
  std::string packed;
  uint32_t count = 0;
  void add(std::string_view peer_id, std::string_view rendition, std::string_view topology_json) {
    for (std::string_view field : {peer_id, rendition, topology_json}) {
      packed.append(field);
      packed.push_back('\0');
    }
    count++;
  }
  // Calls visit(peer_id, rendition, topology_json) for each candidate in order.
  template <class Visit>
  void for_each(Visit&& visit) const {
    std::string_view rest = packed;
    for (uint32_t i = 0; i < count; ++i) {
      std::string_view f[3];
      for (auto& field : f) {
        size_t end = rest.find('\0');
        field = rest.substr(0, end);
        rest.remove_prefix(end + 1);
      }
      visit(f[0], f[1], f[2]);
    }
  }
};

struct EnterResult {
  static constexpr bool must_arrive = true;
  bool full = false;
  std::string stream_id, peer_id;
  CandidateList candidates;
  uint32_t wanted = 0;  // how many the first `peers` may hold
  uint64_t stream_key = 0;  // unless full: StreamTable::key, what the relay compares
  PeerLocation who;
  uint32_t join_sequence = 0;
};

struct LeaveSwarm {
  static constexpr bool must_arrive = true;
  std::string stream_id, peer_id;
  MemberLocation where;
};

struct PickPeers {
  std::string stream_id, rendition, requester, ref_raw;
  Topology topology;
  uint32_t count = 0;
  std::vector<std::string> exclude;
  PeerLocation who;
};

struct PeersResult {
  static constexpr bool must_arrive = true;
  CandidateList candidates;
  uint32_t wanted = 0;
  std::string ref_raw;
  std::vector<std::string> exclude;  // back to the connection's shard for candidates from other edges
  PeerLocation who;
};

struct UpdateMember {
  static constexpr bool must_arrive = true;
  std::string stream_id, peer_id;
  MemberLocation where;
  Topology topology;
  bool accepting_peers = true;
};

struct StatsDelta {
  static constexpr bool must_arrive = true;
  std::string stream_id;
  StreamStats delta;
};

// One relayed signal: the ready `signal` message for the target plus what
// routing and error replies need. Rendered once on the sender's shard into
// `text`, which the target's shard sends as it is. Packets are recycled
// (edge/signal_packet_pool.h): their strings keep their capacity.
//
// Between the shards of this edge it travels on integers
// (docs/architecture.md, "The relay path"): D resolves `to_handle` when the
// sender's shard knew one (an array index, a generation check and a
// comparison of the text), else finds `to` with `to_hash`, computed once on
// the sender's shard; T checks the target by its connection's slot and
// generation, its directory handle and the stream key. The texts `to` and
// `sender_stream` serve the cluster path (docs/cluster.md) and the error reply.
struct SignalPacket {
  std::string to, sender_stream, ref_raw;
  std::string from;  // the sender's peerId: its handle is remembered where it is delivered
  std::string text;  // {"type":"signal","from":...,"kind":...,"data":...}
  uint64_t to_hash = 0;  // PeerDirectory::hash_of(to); 0 with a valid to_handle: not computed
  DirectoryHandle to_handle;      // from the sender's shard, or invalid; set by D to the entry it found
  DirectoryHandle sender_handle;  // the sender's own claim
  uint64_t sender_stream_key = 0;  // StreamTable::key of the sender's stream
  PeerLocation sender;
  PeerLocation target;  // set by D
  uint32_t home_shard = 0;       // the shard that allocated it, where it returns
  SignalPacket* next = nullptr;  // in a free list or a batch going home
  // In a cluster: a signal that missed at a cached location (`target`: its
  // slot and generation) and came back (docs/cluster.md, "The peer-location
  // cache"): D sends it again after a lookup if it is the first miss of that
  // place, else answers peer-not-found.
  bool relookup = false;
};

// A tracker announce (with its offers, or an answer) or a leave, built on
// the connection's shard; the raw offer/answer texts are packed in `raw`.
struct TrackerPacket {
  PeerLocation who;
  TrackerId info_hash{}, peer_id{};
  AnnounceEvent event = AnnounceEvent::update;
  bool seeder = false;
  std::vector<TrackerId> offer_ids;
  std::vector<uint32_t> offer_ends;  // offer i is raw[offer_ends[i-1], offer_ends[i])
  bool has_answer = false;
  TrackerId to_peer_id{}, answer_offer_id{};
  std::string raw;  // the offers' texts, or the answer's
};

// Ready tracker messages (replies, relayed offers and answers, failures,
// scrape replies) for connections of one shard: what a loop turn of the
// sending shard makes for that shard travels in one message, sent at the
// turn's end (docs/tracker.md, "Where the work happens").
struct TrackerDelivery {
  static constexpr bool must_arrive = true;
  // Offers, answers and scrape replies are counted where delivered.
  enum class Kind : uint8_t { reply, offer, answer, scrape };
  struct Item {
    PeerLocation who;
    uint32_t end = 0;  // item i's text is text[items[i-1].end, items[i].end)
    Kind kind = Kind::reply;
  };
  std::vector<Item> items;
  std::string text;
};

// A scrape going round the shards that own its info_hashes; the last one
// sends the reply (TrackerDelivery).
struct TrackerScrape {
  PeerLocation who;
  std::vector<TrackerScrapeFile> files;
  std::vector<uint8_t> filled;  // per file: its owner shard has counted it
};

struct PolicyChanged {
  static constexpr bool must_arrive = true;
  std::shared_ptr<const PolicyDocument> document;
};

// The tracker protocol's scrape and announce packets, and the packets
// and admissions that hop from kind to kind, travel as handles: the same body
// changes message type at each hop without a copy or an allocation.
struct RouteSignal : OwnedPointer<SignalPacket> {  // C -> D
  using OwnedPointer::OwnedPointer;
};
struct DeliverSignal : OwnedPointer<SignalPacket> {  // D -> T
  using OwnedPointer::OwnedPointer;
};
struct SignalFailed : OwnedPointer<SignalPacket> {  // back to C
  static constexpr bool must_arrive = true;
  using OwnedPointer::OwnedPointer;
};
// A chain of packets (through SignalPacket::next) going back to the shard
// that allocated them (edge/signal_packet_pool.h).
struct SignalChainDeleter {
  void operator()(SignalPacket* chain) const;
};
struct SignalPacketsReturned : OwnedPointer<SignalPacket, SignalChainDeleter> {
  static constexpr bool must_arrive = true;
  using OwnedPointer::OwnedPointer;
};

// Per-source admission (common/net/source_admission.h, shared with the
// ingress): the request goes to the source's owner shard and the same record
// comes back as the verdict; the release goes to the owner. The verdict
// answers and the release undoes a count: both must arrive.
struct SourceAcquire : OwnedPointer<SourceRequest> {
  using OwnedPointer::OwnedPointer;
};
struct SourceAnswer : OwnedPointer<SourceRequest> {
  static constexpr bool must_arrive = true;
  using OwnedPointer::OwnedPointer;
};
struct SourceRelease : OwnedPointer<SourceRequest> {
  static constexpr bool must_arrive = true;
  using OwnedPointer::OwnedPointer;
};

// The WebTorrent tracker protocol (docs/tracker.md), for a connection on C and
// an info_hash owned by S (hash(info_hash) % shards):
//   announce/answer: C -> S TrackerRequestMessage -> C, and each target's T (TrackerDelivery)
//   scrape:          C -> each owning S in turn (ScrapeRequest, then ScrapeHop) -> C (TrackerDelivery)
//   close:           C -> S TrackerLeave, once per swarm the connection announced on
struct TrackerRequestMessage : OwnedPointer<TrackerPacket> {
  using OwnedPointer::OwnedPointer;
};
struct TrackerLeave : OwnedPointer<TrackerPacket> {
  static constexpr bool must_arrive = true;
  using OwnedPointer::OwnedPointer;
};
// The first hop of a scrape can be refused (the client gets "edge busy");
// once a shard has counted its files, the rest of the round must arrive
// (the reply is a must-arrive TrackerDelivery).
struct ScrapeRequest : OwnedPointer<TrackerScrape> {
  using OwnedPointer::OwnedPointer;
};
struct ScrapeHop : OwnedPointer<TrackerScrape> {
  static constexpr bool must_arrive = true;
  using OwnedPointer::OwnedPointer;
};

// Closes a connection with 4001 on its shard (a takeover of its peerId).
struct ReplaceConnection {
  static constexpr bool must_arrive = true;
  PeerLocation who;
};

// Shard 0 asks every shard for its part of a metrics collection round.
struct CollectMetrics {
  uint64_t round = 0;
};
// A shard's part of a round, back to shard 0.
struct MetricsSnapshotReady : OwnedPointer<MetricsSnapshot> {
  static constexpr bool must_arrive = true;
  using OwnedPointer::OwnedPointer;
};

// Shard 0 reloaded the certificate: every shard rebuilds its context (a
// shard that missed it would serve the old certificate).
struct CertificatesChanged {
  static constexpr bool must_arrive = true;
};

// A SIGHUP reload's settings, loaded and checked by shard 0; each shard
// takes what a reload may change (take_reloadable, edge/edge_settings.h). A
// shard that missed it would keep the old settings.
struct EdgeShared;
struct SettingsChanged {
  static constexpr bool must_arrive = true;
  std::shared_ptr<const EdgeShared> loaded;
};

// Every message between an edge's shards, once: kinds, dispatch
// (EdgeShard::on overloads) and disposal come from this list.
using EdgeMessages = ShardMessageList<ClaimPeer, ClaimResultPayload, ReleasePeer, ReplaceConnection, EnterSwarm,
                                      EnterResult, LeaveSwarm, PickPeers, PeersResult, UpdateMember, StatsDelta,
                                      RouteSignal, DeliverSignal, SignalFailed, SignalPacketsReturned, PolicyChanged,
                                      CollectMetrics, MetricsSnapshotReady, SourceAcquire, SourceAnswer, SourceRelease,
                                      TrackerRequestMessage, TrackerDelivery, TrackerLeave, ScrapeRequest, ScrapeHop,
                                      CertificatesChanged, SettingsChanged>;

}  // namespace mf::edge
