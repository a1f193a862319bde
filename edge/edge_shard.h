#pragma once
// One shard of mf-edge: its listener, its WebSocket server, the SDK protocol
// for the connections it accepted, and the slices of edge-wide state it owns:
// the directory entries of the peerIds that hash to it and the streams that
// hash to it (see edge_messages.h for who talks to whom).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/listen_socket.h"
#include "common/shard_group.h"
#include "common/slot_array.h"
#include "common/tls_context.h"
#include "common/websocket_server.h"
#include "edge/edge_messages.h"
#include "edge/jwt.h"
#include "edge/origin_allow_list.h"
#include "edge/peer_directory.h"
#include "edge/policy.h"
#include "edge/sdk_message.h"
#include "edge/sdk_reply.h"
#include "edge/stream_table.h"
#include "edge/token_bucket.h"

namespace mf::edge {

// The numbers the protocol layer needs, resolved from EdgeConfig at start.
struct EdgeSettings {
  std::string edge_id;
  std::string websocket_path = "/ws";
  uint32_t heartbeat_ms = 15000;
  uint32_t handshake_timeout_ms = 10000;
  uint32_t max_message_bytes = 16 * 1024;
  uint32_t max_connections = 0;        // edge-wide; 0 = unlimited
  uint32_t messages_per_second = 50;   // per connection
  uint32_t message_burst = 100;
  uint32_t error_limit = 20;           // errors within error_window_ms before 1008
  uint32_t error_window_ms = 10000;
  uint32_t rate_limit_close_after = 20;  // rate-limited drops within error_window_ms before 4003
  uint32_t drain_ms = 10000;           // `reconnect` afterMs spread over [0, drain_ms)
  uint32_t drain_deadline_ms = 30000;  // the process is gone by then
  uint32_t stream_full_retry_ms = 5000;
  std::string policy_file;             // empty: built-in defaults
  bool policy_watch = true;
};

// Built once at start-up, read-only afterwards, shared by every shard.
struct EdgeShared {
  EdgeSettings settings;
  SocketAddress listen_address;
  tls::ServerContextConfig tls;  // certificates empty: plain
  std::optional<JwtVerifier> jwt;
  std::optional<OriginAllowList> origins;
  std::shared_ptr<const PolicyDocument> initial_policy;
};

struct EdgeCounters {
  uint64_t joins = 0;
  uint64_t leaves = 0;
  uint64_t signals_relayed = 0;   // delivered by this shard to its connection
  uint64_t signals_failed = 0;    // answered with peer-not-found
  uint64_t signals_dropped = 0;   // lost to a full mailbox
  uint64_t proposals = 0;         // candidates sent in `peers`
  uint64_t policy_pushes = 0;
  uint64_t takeovers = 0;
  uint64_t errors[9] = {};        // by SdkErrorCode
  uint64_t mailbox_drops = 0;
};

class EdgeShard final : public ShardService, public WebSocketApp {
 public:
  static std::expected<std::unique_ptr<ShardService>, std::string> create(Shard& shard, const EdgeShared& shared);
  ~EdgeShard() override;

  // ShardService
  void on_message(const ShardMessage& message) override;
  void on_stop_requested() override;
  bool stopped() const override;
  void on_reload() override;

  // WebSocketApp
  Admission admit(SocketHandle connection, const http::RequestHead& head) override;
  void on_open(SocketHandle connection) override;
  void on_message(SocketHandle connection, std::string_view text) override;
  void on_closed(SocketHandle connection) override;
  bool healthy() const override { return !stopping_; }

  const EdgeCounters& counters() const { return counters_; }

 private:
  enum class PeerState : uint8_t { free, connected, joining, joined };

  // The protocol state of one connection, indexed by its socket slot.
  struct PeerSession {
    SocketHandle socket;
    PeerState state = PeerState::free;
    uint32_t join_sequence = 0;  // bumps on every join and on close: stale replies miss
    std::string peer_id, stream_id, rendition, session;
    Topology topology;
    bool accepting_peers = true;
    uint32_t caps_max_peers = UINT32_MAX;  // UINT32_MAX: not declared
    Policy policy;                         // effective policy of stream_id
    TokenBucket bucket;
    ErrorBudget errors;
    ErrorBudget rate_drops;
    StreamStats reported;  // cumulative counters last seen from `stats`
    std::unique_ptr<JwtClaims> claims;  // null: no JWT configured
    // The join in flight.
    struct PendingJoin {
      std::string peer_id, stream_id, rendition, ref_raw, old_stream_id;
      Topology topology;
      bool accepting_peers = true;
      uint32_t caps_max_peers = UINT32_MAX;
      bool switching = false;
      Policy policy;
    } pending;
  };

  EdgeShard(Shard& shard, const EdgeShared& shared);

  // Client messages.
  void handle_join(PeerSession& s, const SdkRequest& request);
  void handle_leave(PeerSession& s, const SdkRequest& request);
  void handle_signal(PeerSession& s, const SdkRequest& request);
  void handle_need_peers(PeerSession& s, const SdkRequest& request);
  void handle_update(PeerSession& s, const SdkRequest& request);
  void handle_stats(PeerSession& s, const SdkRequest& request);

  // Shard messages (also called in place when the target shard is this one).
  void on_claim_peer(std::unique_ptr<ClaimPeer> m);
  void on_claim_result(std::unique_ptr<ClaimResultPayload> m);
  void on_release_peer(std::unique_ptr<ReleasePeer> m);
  void on_replace_connection(const PeerLocation& who);
  void on_enter_swarm(std::unique_ptr<EnterSwarm> m);
  void on_enter_result(std::unique_ptr<EnterResult> m);
  void on_leave_swarm(std::unique_ptr<LeaveSwarm> m);
  void on_pick_peers(std::unique_ptr<PickPeers> m);
  void on_peers_result(std::unique_ptr<PeersResult> m);
  void on_update_member(std::unique_ptr<UpdateMember> m);
  void on_stats_delta(std::unique_ptr<StatsDelta> m);
  void on_route_signal(std::unique_ptr<SignalPacket> m);
  void on_deliver_signal(std::unique_ptr<SignalPacket> m);
  void on_signal_failed(std::unique_ptr<SignalPacket> m);
  void on_policy_changed(std::unique_ptr<PolicyChanged> m);

  // Sends `payload` to shard `to` (in place when it is this shard). False
  // when the target's mailbox is full; the payload is then destroyed.
  template <class T>
  bool send_to_shard(uint32_t to, uint16_t kind, std::unique_ptr<T> payload);
  void dispatch(uint16_t kind, void* pointer);

  uint32_t directory_shard(std::string_view peer_id) const;
  uint32_t stream_shard(std::string_view stream_id) const;
  PeerLocation location_of(const PeerSession& s) const;
  MemberLocation member_location_of(const PeerSession& s) const;
  PeerSession* session_at(const PeerLocation& who);
  uint32_t effective_max_peers(const Policy& policy, uint32_t caps_max_peers) const;
  void leave_current(PeerSession& s);
  void send_error(PeerSession& s, SdkErrorCode code, std::string_view message, std::string_view detail = {},
                  std::string_view ref_raw = {}, std::string_view to = {}, int64_t retry_after_ms = -1);
  void send_text(PeerSession& s, std::string_view text);
  std::string fresh_session();
  void load_policy_file(bool initial);
  uint64_t reactor_now() const { return shard_.reactor().now_ms(); }

  Shard& shard_;
  const EdgeShared& shared_;
  int listen_fd_ = -1;
  std::optional<tls::Context> tls_;
  std::unique_ptr<WebSocketServer> server_;
  SdkMessageParser parser_;
  simdjson::dom::parser jwt_parser_;  // scratch for JwtVerifier::verify on this shard
  SlotArray<PeerSession> sessions_;
  PeerDirectory directory_;
  StreamTable streams_;
  std::shared_ptr<const PolicyDocument> policy_;
  Rng rng_;
  std::vector<char> reply_;       // one outgoing message
  std::vector<char> topology_scratch_;
  EdgeCounters counters_;
  bool stopping_ = false;
  uint64_t stop_deadline_ms_ = 0;
  int64_t policy_file_mtime_ns_ = -1;  // shard 0: last seen modification time
};

}  // namespace mf::edge
