#pragma once
// One shard of mf-edge: its listener, its WebSocket server, the SDK protocol
// for the connections it accepted, and the slices of edge-wide state it owns:
// the directory entries of the peerIds that hash to it and the streams that
// hash to it (see edge_messages.h for who talks to whom).
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/http/admin_guard.h"
#include "common/net/listen_socket.h"
#include "common/runtime/shard_collection.h"
#include "common/runtime/shard_group.h"
#include "common/base/slot_array.h"
#include "common/net/source_admission.h"
#include "common/tls/tls_context.h"
#include "common/config/watched_files.h"
#include "common/tls/tls_ticket_keys.h"
#include "common/base/transparent_string_hash.h"
#include "common/http/websocket_server.h"
#include "edge/cluster_keys.h"
#include "edge/cluster_sync.h"
#include "edge/edge_messages.h"
#include "edge/cluster_summary.h"
#include "edge/edge_history.h"
#include "edge/edge_metrics.h"
#include "edge/edge_settings.h"
#include "edge/jwt.h"
#include "edge/origin_allow_list.h"
#include "edge/peer_directory.h"
#include "edge/policy.h"
#include "edge/policy_source.h"
#include "edge/recent_peers.h"
#include "edge/sdk_message.h"
#include "edge/sdk_reply.h"
#include "edge/signal_packet_pool.h"
#include "edge/stats_credit.h"
#include "edge/stream_signal_counts.h"
#include "edge/stream_owner.h"
#include "edge/stream_table.h"
#include "edge/token_bucket.h"
#include "edge/tracker_message.h"
#include "edge/tracker_reply.h"
#include "edge/tracker_swarms.h"

namespace mf::edge {

class EdgeShard final : public ShardService, private ClusterHost {
 public:
  static std::expected<std::unique_ptr<ShardService>, std::string> create(Shard& shard, const EdgeShared& shared);
  // Frees the payload of a message no shard will deliver any more (shutdown):
  // EdgeMessages::dispose, generated from the same list as the dispatch.
  static void dispose(const ShardMessage& message);
  ~EdgeShard() override;

  // ShardService
  void on_message(const ShardMessage& message) override;
  void on_stop_requested() override;
  bool stopped() const override;
  void on_reload() override;
  // Open WebSocket connections of this shard (STATUS=).
  uint64_t live_count() const override {
    return server_->open_websockets() + (plain_server_ ? plain_server_->open_websockets() : 0);
  }

  bool healthy() const { return !stopping_; }

  const EdgeCounters& counters() const { return counters_; }

 private:
  // EdgeMessages::dispatch delivers each message to its `on` overload.
  template <class...>
  friend class mf::ShardMessageList;
  // The SDK protocol on one listener: forwards to the shard with the server
  // the connection belongs to (public wss/ws, or plain behind the ingress).
  class ListenerApp final : public WebSocketApp {
   public:
    explicit ListenerApp(EdgeShard& edge) : edge_(edge) {}
    WebSocketServer* server = nullptr;
    SourceGate admit_source(SocketHandle connection, const proxy::Endpoint* source, Admission& refusal) override {
      return edge_.admit_source(*server, connection, source, refusal);
    }
    Admission admit(SocketHandle connection, const http::RequestHead& head) override {
      return edge_.admit(*server, connection, head);
    }
    void on_open(SocketHandle connection) override { edge_.on_open(*server, connection); }
    void on_message(SocketHandle connection, std::string_view text) override { edge_.on_client_message(connection, text); }
    void on_closed(SocketHandle connection) override { edge_.on_closed(connection); }
    void on_released(SocketHandle connection) override { edge_.on_released(connection); }
    bool healthy() const override { return edge_.healthy(); }

   private:
    EdgeShard& edge_;
  };

  // The admin listener (shard 0) over plain HTTP: /healthz, /metrics, the
  // operator page (/) and the JSON it reads (/api/streams).
  class AdminApp final : public WebSocketApp {
   public:
    explicit AdminApp(EdgeShard& edge) : edge_(edge) {}
    Admission admit(SocketHandle, const http::RequestHead&) override { return Admission{404, "not found\n", {}}; }
    void on_open(SocketHandle) override {}
    void on_message(SocketHandle, std::string_view) override {}
    void on_closed(SocketHandle) override {}
    bool healthy() const override { return edge_.healthy(); }
    bool on_http_request(SocketHandle connection, const http::RequestHead& head) override;

   private:
    EdgeShard& edge_;
  };

  enum class PeerState : uint8_t { free, admitting, connected, joining, joined };

  // The protocol state of one connection, indexed by its socket slot.
  struct alignas(64) PeerSession {
    // What a relayed signal reads of its sender and of its target comes
    // first, in the first six cache lines: with tens of thousands of
    // connections a session is cold when its message arrives, and each
    // further line it touches is one more miss (docs/architecture.md,
    // "The relay path").
    SocketHandle socket;
    WebSocketServer* server = nullptr;  // the listener's server that owns the socket
    PeerState state = PeerState::free;
    // The WebTorrent tracker protocol (docs/tracker.md): the connection came
    // on the tracker path; tracker_seats below are the swarms it announced on.
    bool tracker = false;
    uint32_t signal_counts_index = StreamSignalCounts::no_entry;  // its entry in this shard's signal counts
    TokenBucket bucket;
    Policy policy;  // effective policy of stream_id
    // What the relay carries instead of texts (docs/architecture.md, "The
    // relay path"): this connection's claim in the directory, its stream's
    // key (StreamTable::key), and the handles of the peers that signalled it
    // lately.
    DirectoryHandle directory_handle;
    uint64_t stream_key = 0;
    std::string peer_id, stream_id;
    std::string signal_head;  // signal_head(peer_id): every signal it sends starts so
    RecentPeers recent_peers;
    // The rest is read on joins, leaves, closes and the other messages.
    bool source_acquired = false;       // counted by the source's owner shard
    SourceKey source;
    uint32_t join_sequence = 0;  // bumps on every join, leave and close: stale replies miss
    // What this connection holds and must give back exactly once (leave,
    // close, a full stream, a switch's old swarm); each grant is named by the
    // join sequence that obtained it. A grant whose reply arrives after the
    // join was abandoned is given back by that reply instead
    // (docs/architecture.md, "Obligations").
    struct HeldClaim {
      bool held = false;
      uint32_t sequence = 0;
      std::string peer_id, stream_id, rendition;  // the claim's owner record in a cluster
    } held_claim;
    bool in_swarm = false;        // a member of (stream_id, rendition) as peer_id
    uint32_t member_sequence = 0;  // in_swarm: the join that entered it
    std::string rendition, session;
    std::string session_digest;  // in a cluster: what the owner key holds of `session`
    Topology topology;
    bool accepting_peers = true;
    uint32_t caps_max_peers = UINT32_MAX;  // UINT32_MAX: not declared
    ErrorBudget errors;
    ErrorBudget rate_drops;
    StatsCredit stats_credit;         // what `stats` may add (bounded per peer)
    uint64_t proposals_received = 0;  // candidates sent to it in `peers` since its join
    std::unique_ptr<JwtClaims> claims;  // null: no JWT configured
    // The tracker protocol's swarms it announced on, left when it closes.
    struct TrackerSeat {
      TrackerId info_hash{}, peer_id{};
    };
    std::vector<TrackerSeat> tracker_seats;
    // The join in flight.
    struct PendingJoin {
      std::string peer_id, stream_id, rendition, ref_raw, old_stream_id;
      Topology topology;
      bool accepting_peers = true;
      uint32_t caps_max_peers = UINT32_MAX;
      bool switching = false;
      Policy policy;
      uint64_t started_ns = 0;  // join read: for the join-to-peers histogram
    } pending;
  };

  struct Seeds {
    uint64_t streams = 0, rng = 0, valkey = 0;
  };
  EdgeShard(Shard& shard, const EdgeShared& shared, const Seeds& seeds);

  SourceGate admit_source(WebSocketServer& server, SocketHandle connection, const proxy::Endpoint* source,
                          Admission& refusal);
  Admission admit(WebSocketServer& server, SocketHandle connection, const http::RequestHead& head);
  void on_open(WebSocketServer& server, SocketHandle connection);
  void on_client_message(SocketHandle connection, std::string_view text);
  bool sdk_text_is_utf8(PeerSession& s, std::string_view text);
  void on_closed(SocketHandle connection);
  void on_released(SocketHandle connection);

  // Client messages.
  void handle_join(PeerSession& s, const SdkRequest& request);
  void handle_leave(PeerSession& s, const SdkRequest& request);
  // `id_raw`: the message's `id`, echoed as `ref` by an error.
  void handle_signal(PeerSession& s, const SignalFields& signal, std::string_view id_raw);
  void handle_need_peers(PeerSession& s, const SdkRequest& request);
  void handle_update(PeerSession& s, const SdkRequest& request);
  void handle_stats(PeerSession& s, const SdkRequest& request);

  // Shard messages (also called in place when the target shard is this one).
  void on(std::unique_ptr<ClaimPeer> m);
  // On the directory shard: the claim's verdict goes back to the joining
  // connection (and a local takeover closes the old holder with 4001).
  void finish_claim(std::unique_ptr<ClaimPeer> m, ClaimOutcome outcome, std::string_view session,
                    const PeerLocation& replaced) override;
  void on(std::unique_ptr<ClaimResultPayload> m);
  void on(std::unique_ptr<ReleasePeer> m);
  void on_replace_connection(const PeerLocation& who);
  // Closes `who` with 4001 on its shard (a takeover).
  void send_replace(const PeerLocation& who);
  void on(std::unique_ptr<EnterSwarm> m);
  // To the stream's shard; a full mailbox closes `s` (if given): edge busy.
  void send_enter(PeerSession* s, std::unique_ptr<EnterSwarm> enter);
  void on(std::unique_ptr<EnterResult> m);
  void on(std::unique_ptr<LeaveSwarm> m);
  void on(std::unique_ptr<PickPeers> m);
  void on(std::unique_ptr<PeersResult> m);
  // On the connection's shard: sends `peers` with the local candidates, after
  // adding candidates from other edges when in a cluster and `local` has
  // fewer than `wanted` (started_ns: the join's start, for the histogram; 0
  // for need-peers).
  void deliver_peers(PeerSession& s, CandidateList local, uint32_t wanted, std::vector<std::string> exclude,
                     std::string_view ref_raw, uint64_t started_ns);
  // Renders and sends `peers`: `local` then `remote`; counts the proposals.
  void send_peers(PeerSession& s, const CandidateList& local, const CandidateList& remote, std::string_view ref_raw,
                  uint64_t started_ns);
  void on(std::unique_ptr<UpdateMember> m);
  void on(std::unique_ptr<StatsDelta> m);
  void on_route_signal(std::unique_ptr<SignalPacket> m);
  void on_deliver_signal(std::unique_ptr<SignalPacket> m);
  // A signal whose target's directory entry is on this shard: delivered at
  // once, without a packet, when the target is here too and takes it; false
  // (nothing done) otherwise, and the packet path decides (docs/architecture.md,
  // "The relay path").
  bool deliver_in_place(PeerSession& s, const SignalFields& signal, const DirectoryHandle* known, uint64_t to_hash);
  // This shard's directory entry for `to`: by `handle` when valid and
  // current, else by the hash (computed into `to_hash` when 0); null if none.
  const DirectoryEntry* directory_entry(const DirectoryHandle* handle, std::string_view to, uint64_t& to_hash) const;
  // The joined connection of this shard at `where` that still holds
  // `to_handle` in the sender's stream; null if it has gone.
  PeerSession* signal_target(const PeerLocation& where, const DirectoryHandle& to_handle, uint64_t sender_stream_key);
  // Counts the delivery, remembers the sender's handle for the reply, sends
  // `text` (its pieces, in order).
  void deliver_signal(PeerSession& target, std::string_view from, const DirectoryHandle& sender_handle,
                      std::span<const std::string_view> text);
  void on_signal_failed(std::unique_ptr<SignalPacket> m);
  void on(RouteSignal m) { on_route_signal(m.take()); }
  void on(DeliverSignal m) { on_deliver_signal(m.take()); }
  void on(SignalFailed m) { on_signal_failed(m.take()); }
  void on(SignalPacketsReturned m) { signal_pool_.take_home(m.release()); }
  void on(ReplaceConnection m) { on_replace_connection(m.who); }
  void on(CertificatesChanged) { on_certificates_changed(); }
  void on(std::unique_ptr<SettingsChanged> m) { on_settings_changed(std::move(m)); }
  void on(CollectMetrics m) { on_collect_metrics(m.round); }
  void on(MetricsSnapshotReady m) { on_metrics_snapshot(m.take()); }
  void on(SourceAcquire m) { on_source_acquire(m.take()); }
  void on(SourceAnswer m) { on_source_verdict(m.take()); }
  void on(SourceRelease m) { on_source_release(m.take()); }
  void on(TrackerRequestMessage m) { on_tracker_request(m.take()); }
  void on(TrackerLeave m) { on_tracker_leave(m.take()); }
  void on(ScrapeRequest m) { on_tracker_scrape(m.take()); }
  void on(ScrapeHop m) { on_tracker_scrape(m.take()); }
  // This shard is done with a packet: back to its home shard's pool, in
  // batches (edge/signal_packet_pool.h).
  void recycle_signal(std::unique_ptr<SignalPacket> m);
  void flush_signal_returns();
  void on(std::unique_ptr<PolicyChanged> m);
  void on_source_acquire(std::unique_ptr<SourceRequest> m);
  void on_source_verdict(std::unique_ptr<SourceRequest> m);
  void on_source_release(std::unique_ptr<SourceRequest> m);
  void sweep_sources();
  // Room for the status line and headers of an admin response.
  static constexpr size_t max_response_head_bytes = 512;
  // What an admin request waiting for a collection gets from the snapshots.
  // `history` and `summary` are shard 0's own rounds (no connection waits):
  // a history sample, and this edge's summary for the cluster view.
  enum class CollectionKind : uint8_t { metrics, streams, cluster, history, summary };
  void on_collect_metrics(uint64_t round);
  void on_metrics_snapshot(std::unique_ptr<MetricsSnapshot> m);
  void start_metrics_collection(SocketHandle waiter, CollectionKind kind, bool head_only);
  // A connection of this shard entered / left a stream's swarm.
  void count_member_joined(PeerSession& s, std::string_view stream_id);
  void count_member_left(PeerSession& s);

  // Sends a message of EdgeMessages to shard `to` (in place when it is this
  // shard); the payload's type decides the delivery (common/runtime/shard_messages.h).
  // A request returns false when the target's mailbox is full (counted as a
  // drop; the payload is freed); a must_arrive type returns nothing and is
  // never dropped. Compute `to` into a local first when it reads the payload:
  // the order of argument evaluation is unspecified and the move may come first.
  template <class P>
  auto send(uint32_t to, P payload);

  uint32_t stream_shard(std::string_view stream_id) const;
  // The directory shard of a peerId whose PeerDirectory::hash_of is `hash`.
  uint32_t directory_shard_of(uint64_t hash) const { return static_cast<uint32_t>(hash % shard_.count()); }
  PeerLocation location_of(const PeerSession& s) const;
  // The swarm membership entered with `join_sequence`.
  MemberLocation member_location_of(const PeerSession& s, uint32_t join_sequence) const;
  // The live connection of this shard at `who` (slot and generation), or null.
  PeerSession* session_at(const PeerLocation& who) {
    if (who.shard != shard_.id() || who.slot >= sessions_.created()) return nullptr;
    PeerSession& s = sessions_[who.slot];
    if (s.state == PeerState::free || s.socket.generation != who.generation || s.socket.slot != who.slot)
      return nullptr;
    return &s;
  }
  uint32_t effective_max_peers(const Policy& policy, uint32_t caps_max_peers) const;
  // Gives back what `s` holds (its swarm membership, its claim) and makes
  // every reply still in flight for it stale (leave, close).
  void give_up(PeerSession& s);
  void leave_swarm_held(PeerSession& s);
  void release_claim_held(PeerSession& s);
  // Leave a swarm / give a peerId back; both act only if `where`/`who` is
  // still the registered holder through the grant named by its sequence.
  void send_leave_swarm(std::string_view stream_id, std::string_view peer_id, const MemberLocation& where);
  void send_release(std::string_view peer_id, const PeerLocation& who, uint32_t sequence);
  void send_error(PeerSession& s, SdkErrorCode code, std::string_view message, std::string_view detail = {},
                  std::string_view ref_raw = {}, std::string_view to = {}, int64_t retry_after_ms = -1);
  void send_text(PeerSession& s, std::string_view text);
  // nullopt: the CSPRNG failed (the join is refused).
  std::optional<std::string> fresh_session();
  void load_policy_file();
  // Shard 0: reloads the certificate when its files changed (a periodic
  // check), or on SIGHUP whatever they are (`forced`); then every shard
  // rebuilds its context from the files (docs/security.md, "Certificate reload").
  void check_certificate_files(bool forced);
  void on_certificates_changed();
  // SIGHUP (shard 0): the configuration read again and checked; every shard
  // takes what a reload may change (edge/edge_shard_reload.cc).
  void reload_settings();
  void on_settings_changed(std::unique_ptr<SettingsChanged> m);
  // Shard 0: the effective document (Valkey's when it holds one, else the
  // file's, else the defaults) to every shard, which push it to their peers.
  void apply_policy_sources();
  void broadcast_policy(std::shared_ptr<const PolicyDocument> document);
  uint64_t reactor_now() const { return shard_.reactor().now_ms(); }

  // ---- the WebTorrent tracker protocol (edge_shard_tracker.cc) ----
  // At most this many swarms per connection (p2p-media-loader uses one per
  // stream and media type).
  static constexpr size_t max_tracker_seats = 16;
  bool tracker_enabled() const { return !shared_.settings.tracker_path.empty(); }
  uint32_t tracker_shard(const TrackerId& info_hash) const;
  void on_tracker_message(PeerSession& s, std::string_view text);
  void tracker_fail(PeerSession& s, const TrackerRejection& failure);
  void tracker_give_up(PeerSession& s);
  // Decides an announce, answer or stop of a swarm this shard owns and
  // delivers what it makes (tracker_deliver). Gives the packet back unless
  // the cluster took it (offers left over for other edges), so a shard's own
  // packet is used again.
  std::unique_ptr<TrackerPacket> on_tracker_request(std::unique_ptr<TrackerPacket> m);
  void decide_tracker_request(std::unique_ptr<TrackerPacket>& m);
  // Sends every batch tracker_deliver() began (one message per shard). It
  // runs once at the end of every loop turn (Reactor::add_end_of_turn,
  // registered at start-up), where the turn's socket writes leave too: what
  // the turn decided (requests from the mailbox or decided in place, scrapes,
  // Valkey's refusals, offers and answers from other edges) reaches each
  // shard as one message, in the order it was decided, and no code path has
  // to remember a flush. A batch answers something: it is an obligation
  // (must_arrive), and the shard does not stop while one waits (stopped()).
  // docs/tracker.md, "Where the work happens".
  void flush_tracker_deliveries();
  bool tracker_deliveries_waiting() const;
  void deliver_tracker_text(const PeerLocation& who, std::string_view text, TrackerDelivery::Kind kind);
  void on(std::unique_ptr<TrackerDelivery> m);
  void on_tracker_leave(std::unique_ptr<TrackerPacket> m);
  void on_tracker_scrape(std::unique_ptr<TrackerScrape> m);
  // A ready message for `who`: written at once to a connection of this
  // shard, else appended to the batch for its shard (sent at the turn's end:
  // flush_tracker_deliveries).
  void tracker_deliver(const PeerLocation& who, std::string_view text, TrackerDelivery::Kind kind);
  // Once a second: silent peers and old offers go (and leave Valkey).
  void tracker_expire();
  TrackerSwarms tracker_swarms_;
  TrackerMessageParser tracker_parser_;
  std::vector<TrackerTarget> tracker_targets_;
  std::vector<TrackerId> tracker_offer_ids_;
  std::vector<TrackerMemberRef> tracker_removed_;
  // Per target shard: the deliveries of this loop turn, sent at its end by
  // flush_tracker_deliveries().
  std::vector<std::unique_ptr<TrackerDelivery>> tracker_outbox_;
  // This shard's packet for requests on swarms it owns itself: used again.
  std::unique_ptr<TrackerPacket> tracker_spare_;

  // ---- the cluster of edges (docs/cluster.md), behind edge/cluster_sync.h:
  // null without [valkey] address (then no Valkey code runs). EdgeShard is
  // the sync's host (edge_shard_cluster.cc).
  std::unique_ptr<ClusterSync> cluster_;
  bool cluster_ready() const { return cluster_ && cluster_->ready(); }
  ValkeyState cluster_state() const { return cluster_ ? cluster_->state() : ValkeyState::off; }
  std::expected<void, std::string> cluster_start();
  ClusterMember cluster_member(const PeerSession& s) const;
  // Presence of a joined session (join, update) and its swarm record's
  // removal (leave, close, switch).
  void cluster_register(const PeerSession& s);
  void cluster_unregister(const PeerSession& s);
  // GET /api/cluster answered with `own` and the other edges' summaries.
  void cluster_answer(SocketHandle connection, bool head_only, std::string own);
  // An answer to an offer of another edge goes back there.
  void tracker_publish_answer(const TrackerAnswerRoute& route, const TrackerPacket& m);
  // ClusterHost
  void joined_members(std::vector<ClusterMember>& out) override;
  std::optional<ClusterMember> joined_member(const PeerLocation& who) override;
  bool close_superseded(const PeerLocation& who) override;
  void close_replaced(const PeerLocation& who, std::string_view peer_id) override;
  void send_peers(const PeerLocation& who, uint32_t join_sequence, const CandidateList& local,
                  const CandidateList& remote, std::string_view ref_raw, uint64_t started_ns) override;
  uint32_t directory_shard(std::string_view peer_id) const override;
  // finish_claim is declared with the claim messages above.
  void refuse_claim(std::unique_ptr<ClaimPeer> m, ClaimOutcome local, const PeerLocation& replaced) override;
  bool seat_decided(std::unique_ptr<EnterSwarm> enter, ClusterSeat seat) override;
  bool policy_read(std::optional<std::string_view> text) override;
  void summaries_read(uint64_t id, ValkeyState state, std::span<const std::string_view> others) override;
  void signal_failed(std::unique_ptr<SignalPacket> m) override;
  void signal_sent(std::unique_ptr<SignalPacket> m) override { recycle_signal(std::move(m)); }
  // peer-not-found to the sender of a signal (if it is still connected).
  void signal_not_found(const PeerLocation& sender, std::string_view to, std::string_view ref_raw) override;
  void signal_missed(const cluster::Envelope& e) override;
  RemoteDelivery deliver_signal(const PeerLocation& target, std::string_view to, std::string_view stream_id,
                                std::string_view text) override;
  void tracker_members(std::vector<TrackerMemberRef>& out) override;
  std::optional<TrackerMemberRef> tracker_member(const TrackerId& info_hash, const TrackerId& peer_id) override;
  void tracker_counts(const TrackerId& info_hash, uint32_t seeders, uint32_t members) override;
  void tracker_refused(const TrackerMemberRef& member) override;
  void tracker_candidates(std::unique_ptr<TrackerPacket> m, size_t first,
                          std::span<const RemoteTrackerMember> members) override;
  void tracker_from_edge(const cluster::Envelope& e) override;
  bool draining() const override { return stopping_; }
  bool clients_gone() const override;

  uint64_t valkey_seed_ = 0;
  bool no_session_randomness_ = false;  // test hook
  // Shard 0: which policy is in force (the file's, Valkey's, the defaults).
  PolicySource policy_source_;
  struct PendingClusterAnswer {
    uint64_t id = 0;
    SocketHandle connection;
    bool head_only = false;
    std::string own;
  };
  std::string tracker_pair_scratch_;

  Shard& shard_;
  // This shard's copy of the settings, changed only by a reload
  // (on_settings_changed); read through shared_.
  EdgeShared running_;
  const EdgeShared& shared_;
  int listen_fd_ = -1;
  std::optional<tls::Context> tls_;
  std::unique_ptr<WebSocketServer> server_;        // public listener
  std::unique_ptr<WebSocketServer> plain_server_;  // plain listener, if configured
  int plain_fd_ = -1;
  ListenerApp public_app_{*this};
  ListenerApp plain_app_{*this};
  // Source addresses this shard owns (hash of the address): open connections
  // and the new-connection rate, edge-wide for that address; the three
  // source messages (edge/edge_messages.h) for the one per-source admission
  // (common/net/source_admission.h).
  using SourceMessages = TypedSourceMessenger<EdgeShard, SourceAcquire, SourceAnswer, SourceRelease>;
  friend SourceMessages;
  SourceMessages source_messages_{*this};
  SourceAdmission sources_{shard_.id(), shard_.count(), source_messages_};
  SdkMessageParser parser_;
  simdjson::dom::parser jwt_parser_;  // scratch for JwtVerifier::verify on this shard
  SlotArray<PeerSession> sessions_;
  PeerDirectory directory_;
  StreamOwner stream_owner_;  // the streams that hash to this shard
  std::shared_ptr<const PolicyDocument> policy_;
  Rng rng_;
  std::vector<char> reply_;       // one outgoing message
  SignalPacketPool signal_pool_;
  // The reactor's deferred task that sends batches not yet full home
  // (several shards only): scheduled when a batch begins, so an idle shard
  // never wakes for it.
  uint32_t signal_return_task_ = UINT32_MAX;
  uint64_t collection_heap_allocations_ = 0;  // shard 0: at the start of the /metrics collection
  EdgeCounters counters_;
  LatencyHistogram join_to_peers_;
  uint64_t peers_joined_ = 0;
  StreamSignalCounts signal_counts_;  // by the stream of the receiving connection
  // Shard 0: admin listener and a /metrics collection in progress.
  std::unique_ptr<AdminApp> admin_app_;
  std::optional<TicketKeyRotation> ticket_rotation_;  // shard 0, with TLS
  std::unique_ptr<WebSocketServer> admin_server_;
  std::optional<AdminGuard> admin_guard_;  // no edge endpoint changes state: Origin and Host only
  int admin_fd_ = -1;
  ShardCollection<MetricsSnapshot, CollectionKind> collection_;
  std::optional<EdgeHistory> history_;  // shard 0 with an admin listener
  std::vector<PendingClusterAnswer> cluster_answers_;  // shard 0: /api/cluster waiting for Valkey
  uint64_t next_cluster_answer_ = 0;
  bool stopping_ = false;
  uint64_t stop_deadline_ms_ = 0;
  std::optional<WatchedFiles> policy_files_;       // shard 0 with [policy] file
  std::optional<WatchedFiles> certificate_files_;  // shard 0 with [tls]
};

// Defined here, not in edge_shard.cc: the role files (edge_shard_*.cc)
// send too, and an optimizing build emits no out-of-line copy of a template
// that one file inlined everywhere it used it.
template <class P>
auto EdgeShard::send(uint32_t to, P payload) {
  return EdgeMessages::send(shard_, *this, to, std::move(payload), counters_.mailbox_drops);
}

}  // namespace mf::edge
