#pragma once
// The server side of docs/protocol.md section 1 on one shard: TLS (or plain, behind the
// ingress), the HTTP/1.1 upgrade with /healthz beside it, RFC 6455 framing,
// liveness (server pings, idle close), and the close handshake. What the
// messages mean is the WebSocketApp's business; this layer hands it whole,
// validated text messages and sends what it is given.
//
// Per connection it keeps only what an idle peer needs (phase, decoder state,
// TLS session, last-traffic time); partial heads and messages borrow blocks
// from the shard's pool only while they are incomplete.
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/runtime/block_pool.h"
#include "common/codec/http_request_head.h"
#include "common/codec/proxy_protocol.h"
#include "common/runtime/reactor.h"
#include "common/base/slot_array.h"
#include "common/base/slot_fifo.h"
#include "common/tls/tls_context.h"
#include "common/tls/transport_stream.h"
#include "common/codec/websocket_codec.h"
#include "common/http/websocket_message_stream.h"
#include "common/codec/websocket_upgrade.h"

namespace mf {

// Close codes of the SDK protocol beyond RFC 6455 (docs/protocol.md section 7).
namespace close_code {
inline constexpr uint16_t replaced = 4001;
inline constexpr uint16_t idle_timeout = 4002;
inline constexpr uint16_t rate_limited = 4003;
}  // namespace close_code

struct WebSocketServerConfig {
  http::UpgradeRoutes routes;
  ws::DecoderConfig decoder;          // message limit (1009), binary refused (1003)
  uint32_t handshake_timeout_ms = 10000;  // accept to upgrade done (TLS + head)
  // Accept to the first byte (the ClientHello, the PROXY header or the
  // request line), cut sooner than the handshake: an idle socket costs a
  // descriptor slot and nothing else, so it must not keep one long.
  // 0: only handshake_timeout_ms applies.
  uint32_t first_bytes_timeout_ms = 3000;
  // Slots kept for admitted connections: once the reactor holds
  // max_sockets - reserve_slots sockets, each new accept closes the oldest
  // connection of this server that is not yet admitted (docs/security.md,
  // "Connection admission"). 0: no reserve.
  uint32_t reserve_slots = 0;
  uint32_t heartbeat_ms = 15000;      // ping after this long without traffic
  // Close with 4002 after heartbeat_ms * idle_close_factor_x10 / 10 silent.
  uint32_t idle_close_factor_x10 = 25;
  const tls::Context* tls = nullptr;  // null: plain WebSocket
  // Every connection starts with a PROXY protocol v2 header (behind the
  // ingress): its source address replaces the socket's peer address.
  bool expect_proxy_header = false;
};

// The answer to an upgrade request that passed the RFC 6455 checks.
// The verdict on a new connection's source, given before any byte of it is
// processed (see WebSocketApp::admit_source).
enum class SourceGate : uint8_t { admit, refuse, pending };

struct Admission {
  static constexpr uint16_t pending = 0;  // the app answers later: complete_admission()
  uint16_t status = 101;           // 101 admits; else 401, 403, 429, 503...
  std::string_view reason;         // body of the refusal (static storage)
  std::string_view extra_headers;  // e.g. "Retry-After: 1\r\n" (static storage)
  // The app validates the UTF-8 of every text message of this connection
  // itself, in the walk its parser makes over each message anyway, and
  // calls close_for_violation(1007) when it is not: the server's decoder
  // then skips its own pass (ws::DecoderConfig::check_text_utf8).
  bool app_checks_utf8 = false;
};

class WebSocketApp {
 public:
  // A new connection, before any byte of its TLS or HTTP is processed:
  // `source` is its client (the PROXY header's when the listener expects
  // one, else the peer address from accept; null when unknown). refuse
  // closes it at once (plain: with `refusal`; TLS: a reset, since saying
  // anything costs a handshake); pending holds its bytes unread until
  // complete_source().
  virtual SourceGate admit_source(SocketHandle connection, const proxy::Endpoint* source, Admission& refusal) {
    (void)connection;
    (void)source;
    (void)refusal;
    return SourceGate::admit;
  }
  // docs/protocol.md section 8 checks that need configuration (Origin, JWT, caps).
  virtual Admission admit(SocketHandle connection, const http::RequestHead& head) = 0;
  virtual void on_open(SocketHandle connection) = 0;
  // One complete, UTF-8-valid text message. `text` is followed by at least
  // 64 readable bytes (simdjson's padding) and is valid during the call.
  virtual void on_message(SocketHandle connection, std::string_view text) = 0;
  // An opened connection is gone (closed by either side, or failed).
  virtual void on_closed(SocketHandle connection) = 0;
  // Any connection, opened or not, is fully gone (its slot will be reused).
  virtual void on_released(SocketHandle connection) { (void)connection; }
  // /healthz: 200 when true, 503 when false (draining).
  virtual bool healthy() const = 0;
  // A request for a path that is neither the WebSocket nor the health path.
  // Return true to answer it (now or later) with WebSocketServer::respond();
  // false gives 404.
  virtual bool on_http_request(SocketHandle connection, const http::RequestHead& head) {
    (void)connection;
    (void)head;
    return false;
  }

 protected:
  ~WebSocketApp() = default;
};

struct WebSocketServerCounters {
  uint64_t accepted = 0;
  uint64_t tls_handshakes = 0;
  uint64_t tls_resumed = 0;
  uint64_t tls_failures = 0;
  uint64_t handshake_timeouts = 0;
  uint64_t upgrades = 0;
  uint64_t http_rejections = 0;
  uint64_t health_checks = 0;
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;
  uint64_t protocol_closes = 0;   // 1002/1003/1007/1009 sent
  uint64_t idle_closes = 0;
  uint64_t slow_consumer_closes = 0;
  uint64_t pings_sent = 0;
  uint64_t pongs_received = 0;
  uint64_t proxy_header_failures = 0;
  uint64_t first_bytes_timeouts = 0;  // no byte at all before first_bytes_timeout_ms
  uint64_t source_refusals = 0;       // refused by admit_source (cap or rate of the source)
  uint64_t reserve_evictions = 0;     // not-yet-admitted connections closed to keep the reserve
  uint64_t responses_refused = 0;     // HTTP responses larger than the send queue allows (never sent)
  uint64_t deadline_policy_closes = 0;  // 1008 sent at a deadline set by schedule_close (admission expired)

  // Merging: several servers of a shard, or every shard, for /metrics.
  WebSocketServerCounters& operator+=(const WebSocketServerCounters& other) {
    accepted += other.accepted;
    tls_handshakes += other.tls_handshakes;
    tls_resumed += other.tls_resumed;
    tls_failures += other.tls_failures;
    handshake_timeouts += other.handshake_timeouts;
    upgrades += other.upgrades;
    http_rejections += other.http_rejections;
    health_checks += other.health_checks;
    messages_in += other.messages_in;
    messages_out += other.messages_out;
    protocol_closes += other.protocol_closes;
    idle_closes += other.idle_closes;
    slow_consumer_closes += other.slow_consumer_closes;
    pings_sent += other.pings_sent;
    pongs_received += other.pongs_received;
    proxy_header_failures += other.proxy_header_failures;
    first_bytes_timeouts += other.first_bytes_timeouts;
    source_refusals += other.source_refusals;
    reserve_evictions += other.reserve_evictions;
    responses_refused += other.responses_refused;
    deadline_policy_closes += other.deadline_policy_closes;
    return *this;
  }
};

class WebSocketServer final : public SocketService {
 public:
  WebSocketServer(Reactor& reactor, const WebSocketServerConfig& config, WebSocketApp& app);
  WebSocketServer(const WebSocketServer&) = delete;
  WebSocketServer& operator=(const WebSocketServer&) = delete;
  ~WebSocketServer();

  // Sends one text message. False when the connection is not open or its
  // send queue overflowed (it is then being closed as a slow consumer).
  bool send_text(SocketHandle connection, std::string_view text);
  // The same with the text as the concatenation of `pieces` (at most
  // max_text_pieces; false, nothing sent, beyond), sealed or queued as they
  // are: the message is never assembled.
  static constexpr size_t max_text_pieces = 4;
  bool send_text(SocketHandle connection, std::span<const std::string_view> pieces);
  // Sends a close frame with `code` and closes gracefully; the app gets
  // on_closed at once.
  void close(SocketHandle connection, uint16_t code, std::string_view reason);
  // The same for a protocol violation the app found in a message (1007 on
  // a connection admitted with app_checks_utf8): counted with the
  // decoder's own (protocol_closes).
  void close_for_violation(SocketHandle connection, uint16_t code, std::string_view reason);
  // Closes the connection with `code` and `reason` (static storage) at
  // `deadline_ms` (drain: each peer leaves at its own randomized moment; a
  // token's expiry). An earlier scheduled close stays. The liveness timer
  // keeps running.
  void schedule_close(SocketHandle connection, uint64_t deadline_ms, uint16_t code, std::string_view reason);
  // Finishes a source check whose admit_source() returned pending: the
  // connection's bytes are processed from here, or it is refused.
  void complete_source(SocketHandle connection, bool admitted, const Admission& refusal);
  // Finishes an upgrade whose admit() returned Admission::pending.
  void complete_admission(SocketHandle connection, const Admission& admission);
  // The client's address: from the PROXY header, else from accept; null
  // when unknown (a listener that did not ask for addresses).
  const proxy::Endpoint* source(SocketHandle connection) const;
  // Answers a request the app took in on_http_request(): writes `response`
  // (a complete HTTP response, status line to body) and closes. False (and
  // counted in responses_refused, and the connection aborted) when the
  // response is larger than the socket's send queue may hold: size bodies
  // with max_response_bytes().
  bool respond(SocketHandle connection, std::string_view response);
  // The largest response respond() can queue at once.
  size_t max_response_bytes() const { return reactor_.options().max_queued_bytes_per_socket; }
  // Drain: drops every connection still in its TLS or HTTP handshake and
  // gives new ones `timeout_ms` to finish theirs (health checks still work).
  void abort_handshakes(uint32_t timeout_ms);
  // A reload: the handshake and first-bytes timeouts of connections accepted
  // from now on (after abort_handshakes() the drain's handshake timeout
  // stays), and the heartbeat of every liveness timer armed from now on
  // (each open connection's next one).
  void set_timeouts(uint32_t handshake_timeout_ms, uint32_t first_bytes_timeout_ms, uint32_t heartbeat_ms);
  // Closes every connection (1001 for WebSocket peers) for shutdown.
  void close_all(uint16_t code, std::string_view reason);

  size_t open_websockets() const { return open_websockets_; }
  const WebSocketServerCounters& counters() const { return counters_; }
  uint32_t heartbeat_ms() const { return config_.heartbeat_ms; }

  // SocketService
  void on_accepted(SocketHandle socket, const sockaddr_storage* peer) override;
  void on_received(SocketHandle socket, std::span<uint8_t> bytes) override;
  void on_peer_closed(SocketHandle socket, int error) override;
  void on_timer(SocketHandle socket) override;
  void on_released(SocketHandle socket) override;

 private:
  enum class Phase : uint8_t { idle, proxy_header, tls_handshake, http_head, admission_pending, http_pending, websocket, closing };

  // What every received frame reads comes first (the handle, the phase, the
  // liveness fields, the transport): with tens of thousands of connections a
  // connection is cold when its bytes arrive, and each further cache line is
  // one more miss.
  struct alignas(64) Connection {
    SocketHandle socket;
    Phase phase = Phase::idle;
    bool ping_outstanding = false;
    bool got_bytes = false;       // the first-bytes deadline is met
    bool source_pending = false;  // admit_source() said pending: bytes wait in `partial`
    uint64_t last_traffic_ms = 0;  // before the upgrade: any byte; after it: the last complete frame
    TransportStream transport;  // plain or TLS (config_.tls)
    ws::MessageStream messages;
    proxy::Endpoint source{};
    bool has_source = false;
    bool select_subprotocol = false;  // admission pending: what the 101 will say
    std::array<char, 28> accept_key{};
    ByteQueue partial;  // incomplete PROXY header or request head; bytes held for the source verdict
    uint64_t accepted_ms = 0;
    uint64_t close_at_ms = 0;  // 0: no scheduled close
    std::string_view close_at_reason;
    uint16_t close_at_code = 0;
    // In `unadmitted_` (accept order) until admitted, for the reserve.
    SlotFifo::Links unadmitted;
  };
  struct FrameHandler;

  Connection* connection(SocketHandle socket);
  void on_plaintext(Connection& c, std::span<uint8_t> bytes);
  void on_request_head_bytes(Connection& c, std::span<uint8_t> bytes);
  void handle_request_head(Connection& c, std::string_view head, std::span<uint8_t> rest);
  void on_proxy_header_bytes(Connection& c, std::span<uint8_t> bytes);
  void after_proxy_header(Connection& c, std::span<uint8_t> rest);
  void on_transport_bytes(Connection& c, std::span<uint8_t> bytes);
  // Accepted but not yet a WebSocket (or an HTTP request being answered).
  static bool in_handshake(Phase phase);
  void open_websocket(Connection& c, std::span<uint8_t> rest, bool app_checks_utf8);
  void respond_and_close(Connection& c, uint16_t status, std::string_view body,
                         std::string_view extra_headers, bool head_only);
  // Writes bytes to the peer, through TLS when the connection has it.
  bool write(Connection& c, std::span<const uint8_t> bytes);
  bool send_frame(Connection& c, ws::Opcode opcode, std::span<const uint8_t> payload);
  // frame[0]: the header's place; frame[1..]: the payload's pieces.
  bool send_frame(Connection& c, ws::Opcode opcode, std::span<std::span<const uint8_t>> frame);
  void close_websocket(Connection& c, uint16_t code, std::string_view reason);
  // Closes without a goodbye (reason: debug log). `mode` is abort, except
  // after a TLS failure: then the fatal alert the session queued (RFC 8446
  // section 6.2) leaves before the FIN.
  void fail(Connection& c, std::string_view reason, CloseMode mode = CloseMode::abort);
  void arm_liveness(Connection& c, uint64_t deadline_ms);
  // Asks the app about the source; false when the connection is gone or
  // waits for the verdict (`rest`, bytes after a PROXY header, kept).
  bool gate_source(Connection& c, std::span<uint8_t> rest);
  void refuse_source(Connection& c, const Admission& refusal);
  void enqueue_unadmitted(Connection& c);
  void dequeue_unadmitted(Connection& c);
  // Above the high-water mark: closes the oldest not-yet-admitted
  // connection other than `fresh`.
  void keep_reserve(const Connection& fresh);
  void mark_closed(Connection& c);

  Reactor& reactor_;
  WebSocketServerConfig config_;
  ws::DecoderConfig app_checked_decoder_;  // config_.decoder without the UTF-8 pass (Admission::app_checks_utf8)
  bool handshakes_aborted_ = false;  // abort_handshakes() ran: its timeout stays
  WebSocketApp& app_;
  SlotArray<Connection> connections_;
  // Shard scratch: TLS plaintext; reassembled messages and heads, outgoing
  // frames (the framing path's workspace).
  std::vector<uint8_t> plaintext_scratch_;
  ws::MessageWorkspace workspace_;
  std::vector<uint8_t> replay_scratch_;  // bytes held while a source verdict was pending
  SlotFifo unadmitted_;
  size_t open_websockets_ = 0;
  WebSocketServerCounters counters_;
};

}  // namespace mf
