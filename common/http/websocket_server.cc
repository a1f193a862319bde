#include "common/http/websocket_server.h"

#include "common/codec/http_response.h"
#include "common/http/head_accumulator.h"
#include "common/base/log.h"
#include "common/runtime/provided_buffer_ring.h"

namespace mf {
namespace {
constexpr size_t padding = ProvidedBufferRing::tail_padding;
// What a connection may send while its source verdict is on its way: a
// ClientHello (one record) or a request head, with room to spare.
constexpr size_t max_held_bytes = size_t{16} * 1024 + 1024;
}

// Routes decoder events of one connection back into the server.
struct WebSocketServer::FrameHandler {
  WebSocketServer& server;
  Connection& c;

  // Liveness counts frames, not bytes (docs/protocol.md section 7: "without any
  // frame"): a peer that trickles one byte of a frame that never ends stays
  // silent.
  void on_frame_complete() { c.last_traffic_ms = server.reactor_.now_ms(); }
  void on_message(std::string_view text, bool) {
    server.counters_.messages_in++;
    server.app_.on_message(c.socket, text);
  }
  void on_out_of_buffers() {
    // The shard's buffer pool is exhausted: shed this connection.
    server.close_websocket(c, ws::close_code::internal_error, "server busy");
  }
  void on_ping(std::span<const uint8_t> payload) {
    on_frame_complete();
    server.send_frame(c, ws::Opcode::pong, payload);
  }
  void on_pong(std::span<const uint8_t>) {
    on_frame_complete();
    server.counters_.pongs_received++;
    c.ping_outstanding = false;
  }
  void on_close(uint16_t code, std::string_view) {
    // Echo the peer's code (RFC 6455 5.5.1); an empty close gets an empty one.
    c.messages.halt();
    server.close_websocket(c, code == ws::close_code::no_status ? 0 : code, {});
  }
  void on_error(uint16_t code, std::string_view why) {
    server.counters_.protocol_closes++;
    server.close_websocket(c, code, why);
  }
};

bool WebSocketServer::in_handshake(Phase phase) {
  return phase == Phase::proxy_header || phase == Phase::tls_handshake || phase == Phase::http_head ||
         phase == Phase::admission_pending || phase == Phase::http_pending;
}

WebSocketServer::WebSocketServer(Reactor& reactor, const WebSocketServerConfig& config, WebSocketApp& app)
    : reactor_(reactor),
      config_(config),
      app_(app),
      connections_(reactor.options().max_sockets),
      // Messages and request heads are reassembled in the same room; frames
      // are gathered per record for OpenSSL's record layer only.
      workspace_(reactor.pool(),
                 std::max<size_t>(config.decoder.max_message_bytes, http::max_request_head_bytes + 4),
                 size_t{16} * 1024) {
  app_checked_decoder_ = config_.decoder;
  app_checked_decoder_.check_text_utf8 = false;
  static_assert(ws::message_tail_padding >= padding);
  plaintext_scratch_.resize(size_t{16} * 1024 + 1024 + padding);
  replay_scratch_.resize(max_held_bytes);
}

WebSocketServer::~WebSocketServer() {
  for (uint32_t slot = 0; slot < connections_.created(); ++slot) {
    connections_[slot].partial.clear(reactor_.pool());
    connections_[slot].messages.release(reactor_.pool());
  }
}

WebSocketServer::Connection* WebSocketServer::connection(SocketHandle socket) {
  if (socket.slot >= connections_.created()) return nullptr;
  Connection& c = connections_[socket.slot];
  if (c.socket != socket || c.phase == Phase::idle) return nullptr;
  return &c;
}

void WebSocketServer::on_accepted(SocketHandle socket, const sockaddr_storage* peer) {
  Connection& c = connections_.ensure(socket.slot);
  counters_.accepted++;
  c.socket = socket;
  c.has_source = false;
  if (peer != nullptr) {
    auto endpoint = proxy::endpoint_from_sockaddr(reinterpret_cast<const sockaddr*>(peer), sizeof *peer);
    if (endpoint) {
      c.source = *endpoint;
      c.has_source = true;
    }
  }
  c.messages.start(ws::Role::server, &config_.decoder);
  c.ping_outstanding = false;
  c.close_at_ms = 0;
  c.got_bytes = false;
  c.source_pending = false;
  c.accepted_ms = c.last_traffic_ms = reactor_.now_ms();
  if (config_.tls != nullptr) {
    auto ok = c.transport.start_tls(reactor_, socket, *config_.tls, tls::Role::server, {}, &reactor_.pool());
    if (!ok) {
      MF_LOG_WARN("tls: cannot start a session: {}", ok.error());
      c.phase = Phase::closing;
      reactor_.close(socket, CloseMode::abort);
      return;
    }
    c.phase = Phase::tls_handshake;
  } else {
    c.transport.start_plain(reactor_, socket);
    c.phase = Phase::http_head;
  }
  if (config_.expect_proxy_header) c.phase = Phase::proxy_header;
  uint64_t deadline = c.accepted_ms + config_.handshake_timeout_ms;
  if (config_.first_bytes_timeout_ms != 0)
    deadline = std::min(deadline, c.accepted_ms + config_.first_bytes_timeout_ms);
  reactor_.arm_timer(socket, deadline);
  enqueue_unadmitted(c);
  keep_reserve(c);
  // Behind a PROXY header the source is known once the header is in.
  if (!config_.expect_proxy_header) gate_source(c, {});
}

bool WebSocketServer::gate_source(Connection& c, std::span<uint8_t> rest) {
  Admission refusal{429, "too many connections from this address\n", "Retry-After: 1\r\n"};
  SocketHandle socket = c.socket;
  SourceGate gate = app_.admit_source(socket, c.has_source ? &c.source : nullptr, refusal);
  if (connection(socket) != &c || c.phase == Phase::closing) return false;
  switch (gate) {
    case SourceGate::admit: return true;
    case SourceGate::refuse: refuse_source(c, refusal); return false;
    case SourceGate::pending: break;
  }
  c.source_pending = true;
  reactor_.pause_receive(socket);
  if (!rest.empty() && !c.partial.append(reactor_.pool(), rest)) fail(c, "buffer pool exhausted");
  return false;
}

void WebSocketServer::refuse_source(Connection& c, const Admission& refusal) {
  counters_.source_refusals++;
  c.partial.clear(reactor_.pool());
  // Over TLS an answer would cost the handshake the limit is there to
  // spare: the connection is reset. Plain: one short response, unread
  // request or not (the linger reads and drops it).
  if (c.transport.secure()) return fail(c, "source refused");
  respond_and_close(c, refusal.status, refusal.reason, refusal.extra_headers, false);
}

void WebSocketServer::complete_source(SocketHandle socket, bool admitted, const Admission& refusal) {
  Connection* c = connection(socket);
  if (c == nullptr || !c->source_pending || c->phase == Phase::closing) return;
  c->source_pending = false;
  if (!admitted) return refuse_source(*c, refusal);
  reactor_.resume_receive(socket);
  if (c->partial.empty()) return;
  size_t size = c->partial.size();
  c->partial.copy_to(replay_scratch_);
  c->partial.clear(reactor_.pool());
  on_transport_bytes(*c, std::span<uint8_t>(replay_scratch_.data(), size));
}

void WebSocketServer::enqueue_unadmitted(Connection& c) {
  unadmitted_.push_newest(c.socket.slot, [this](uint32_t slot) -> SlotFifo::Links& {
    return connections_[slot].unadmitted;
  });
}

void WebSocketServer::dequeue_unadmitted(Connection& c) {
  unadmitted_.remove(c.socket.slot, [this](uint32_t slot) -> SlotFifo::Links& {
    return connections_[slot].unadmitted;
  });
}

void WebSocketServer::keep_reserve(const Connection& fresh) {
  uint32_t max = reactor_.options().max_sockets;
  if (config_.reserve_slots == 0 || config_.reserve_slots >= max) return;
  if (reactor_.live_sockets() < max - config_.reserve_slots) return;
  // Closing connections leave the list here, each once: the walk is
  // amortized O(1) per accept.
  while (unadmitted_.oldest() != SlotFifo::none && unadmitted_.oldest() != fresh.socket.slot) {
    Connection& oldest = connections_[unadmitted_.oldest()];
    dequeue_unadmitted(oldest);
    if (!in_handshake(oldest.phase)) continue;
    counters_.reserve_evictions++;
    fail(oldest, "closed to keep the reserve of admitted slots");
    return;
  }
}

const proxy::Endpoint* WebSocketServer::source(SocketHandle socket) const {
  if (socket.slot >= connections_.created()) return nullptr;
  const Connection& c = connections_[socket.slot];
  if (c.socket != socket || c.phase == Phase::idle || !c.has_source) return nullptr;
  return &c.source;
}

void WebSocketServer::on_proxy_header_bytes(Connection& c, std::span<uint8_t> bytes) {
  // Usually the whole header arrives in the first read: parse in place.
  std::span<const uint8_t> view = bytes;
  size_t before = c.partial.size();
  if (before > 0) {
    if (!c.partial.append(reactor_.pool(), bytes.first(std::min(bytes.size(), proxy::max_header_bytes)))) return fail(c, "buffer pool exhausted");
    c.partial.copy_to(workspace_.message());
    view = std::span<const uint8_t>(workspace_.message().data(), c.partial.size());
  }
  auto header = proxy::parse(view);
  if (!header) {
    if (header.error() == proxy::ParseError::incomplete) {
      if (before == 0 && !c.partial.append(reactor_.pool(), bytes)) return fail(c, "buffer pool exhausted");
      return;
    }
    // Not from the ingress, or garbled: nothing sensible can be answered.
    counters_.proxy_header_failures++;
    return fail(c, "bad PROXY header");
  }
  if (header->has_addresses) {
    c.source = header->source;
    c.has_source = true;
  }
  size_t consumed_from_this_read = header->length - before;
  c.partial.clear(reactor_.pool());
  after_proxy_header(c, bytes.subspan(consumed_from_this_read));
}

void WebSocketServer::after_proxy_header(Connection& c, std::span<uint8_t> rest) {
  c.phase = c.transport.secure() ? Phase::tls_handshake : Phase::http_head;
  if (!gate_source(c, rest)) return;
  if (!rest.empty()) on_transport_bytes(c, rest);
}

void WebSocketServer::on_received(SocketHandle socket, std::span<uint8_t> bytes) {
  Connection* c = connection(socket);
  if (c == nullptr || c->phase == Phase::closing) return;
  if (c->phase != Phase::websocket) c->last_traffic_ms = reactor_.now_ms();
  if (!c->got_bytes) {
    // The first-bytes deadline is met: the handshake's own runs from accept.
    c->got_bytes = true;
    if (in_handshake(c->phase)) reactor_.arm_timer(socket, c->accepted_ms + config_.handshake_timeout_ms);
  }
  if (c->source_pending) {
    // In flight before the pause took effect (a ClientHello, a head).
    if (c->partial.size() + bytes.size() > max_held_bytes || !c->partial.append(reactor_.pool(), bytes))
      fail(*c, "too many bytes before the source verdict");
    return;
  }
  if (c->phase == Phase::proxy_header) {
    on_proxy_header_bytes(*c, bytes);
    return;
  }
  on_transport_bytes(*c, bytes);
}

void WebSocketServer::on_transport_bytes(Connection& connection_ref, std::span<uint8_t> bytes) {
  Connection* c = &connection_ref;
  SocketHandle socket = c->socket;
  std::span<uint8_t> scratch(plaintext_scratch_.data(), plaintext_scratch_.size() - padding);
  auto progress = c->transport.read(bytes, scratch, [&](std::span<uint8_t> plain) {
    if (c->phase != Phase::closing) on_plaintext(*c, plain);
  });
  if (!progress) {
    counters_.tls_failures++;
    MF_LOG_DEBUG("tls: connection {} failed: {}", socket.slot, progress.error().reason);
    fail(*c, "TLS failure", CloseMode::graceful);
    return;
  }
  if (*progress == tls::Progress::handshake_completed) {
    counters_.tls_handshakes++;
    if (c->transport.resumed()) counters_.tls_resumed++;
    if (c->phase == Phase::tls_handshake) c->phase = Phase::http_head;
  } else if (*progress == tls::Progress::peer_closed) {
    if (c->phase == Phase::websocket) close_websocket(*c, ws::close_code::going_away, {});
    else fail(*c, "TLS closed before upgrade");
  }
}

void WebSocketServer::on_plaintext(Connection& c, std::span<uint8_t> bytes) {
  switch (c.phase) {
    case Phase::tls_handshake:
      // The client's first request may ride in the same read as its
      // Finished message: the handshake completed inside this feed().
      if (!c.transport.handshake_done()) {
        fail(c, "data before TLS handshake done");
        return;
      }
      c.phase = Phase::http_head;
      on_request_head_bytes(c, bytes);
      return;
    case Phase::http_head:
      on_request_head_bytes(c, bytes);
      return;
    case Phase::websocket: {
      FrameHandler handler{*this, c};
      c.messages.feed(bytes, handler, workspace_);
      return;
    }
    case Phase::proxy_header:  // handled before TLS, never here
    case Phase::admission_pending:
    case Phase::http_pending:  // one request per connection: ignore what follows
    case Phase::idle:
    case Phase::closing:
      return;
  }
}

void WebSocketServer::on_request_head_bytes(Connection& c, std::span<uint8_t> bytes) {
  http::HeadProgress found = http::accumulate_head(c.partial, reactor_.pool(), bytes, workspace_.message(),
                                       http::max_request_head_bytes);
  switch (found.status) {
    case http::HeadStatus::need_more:
      return;
    case http::HeadStatus::out_of_memory:
      fail(c, "buffer pool exhausted");
      return;
    case http::HeadStatus::too_large:
      respond_and_close(c, 431, "request head larger than 8 KiB\n", {}, false);
      return;
    case http::HeadStatus::complete:
      // Bytes after the head in this read (a client that pipelined its first
      // frame) go to the decoder once the upgrade is done.
      handle_request_head(c, found.head, found.rest);
      return;
  }
}

void WebSocketServer::handle_request_head(Connection& c, std::string_view head, std::span<uint8_t> rest) {
  auto parsed = http::parse_request_head(head);
  if (!parsed) {
    http::UpgradeDecision rejection = http::rejection_for(parsed.error());
    counters_.http_rejections++;
    respond_and_close(c, rejection.status, rejection.reason, {}, false);
    return;
  }
  const http::RequestHead& request = *parsed;
  http::UpgradeDecision decision = http::decide_upgrade(request, config_.routes);
  if (decision.kind == http::RequestKind::health) {
    counters_.health_checks++;
    bool head_only = request.method == "HEAD";
    if (app_.healthy()) respond_and_close(c, 200, "ok", {}, head_only);
    else respond_and_close(c, 503, "draining", "Retry-After: 1\r\n", head_only);
    return;
  }
  if (decision.kind == http::RequestKind::rejected && decision.status == 404 && app_.on_http_request(c.socket, request)) {
    // The app answers later (respond()); the handshake timer still bounds it.
    if (c.phase == Phase::http_head) c.phase = Phase::http_pending;
    return;
  }
  if (decision.kind == http::RequestKind::rejected) {
    counters_.http_rejections++;
    respond_and_close(c, decision.status, decision.reason, http::upgrade_rejection_headers(decision), false);
    return;
  }
  c.accept_key = decision.accept;
  c.select_subprotocol = decision.select_subprotocol;
  // The phase is set first: an app may complete the admission from inside
  // admit() (its answer computed in place), and complete_admission() acts
  // only on a pending connection.
  c.phase = Phase::admission_pending;
  Admission admission = app_.admit(c.socket, request);
  if (admission.status == Admission::pending) {
    // Answered, now or later, through complete_admission(). Bytes a client
    // sent before our 101 are a protocol violation anyway (RFC 6455 4.1).
    return;
  }
  c.phase = Phase::http_head;
  if (admission.status != 101) {
    counters_.http_rejections++;
    respond_and_close(c, admission.status, admission.reason, admission.extra_headers, false);
    return;
  }
  open_websocket(c, rest, admission.app_checks_utf8);
}

void WebSocketServer::complete_admission(SocketHandle socket, const Admission& admission) {
  Connection* c = connection(socket);
  if (c == nullptr || c->phase != Phase::admission_pending) {
    MF_LOG_DEBUG("admission of connection {}:{} completed in phase {} (ignored)", socket.slot, socket.generation,
                 c == nullptr ? -1 : static_cast<int>(c->phase));
    return;
  }
  if (admission.status != 101) {
    counters_.http_rejections++;
    respond_and_close(*c, admission.status, admission.reason, admission.extra_headers, false);
    return;
  }
  open_websocket(*c, {}, admission.app_checks_utf8);
}

void WebSocketServer::open_websocket(Connection& c, std::span<uint8_t> rest, bool app_checks_utf8) {
  char response[512];
  size_t n = http::format_switching_protocols(
      response, c.accept_key, c.select_subprotocol ? config_.routes.subprotocol : std::string_view{});
  if (n == 0 || !write(c, {reinterpret_cast<const uint8_t*>(response), n})) {
    fail(c, "101 not sent");
    return;
  }
  counters_.upgrades++;
  if (app_checks_utf8) c.messages.set_decoder_config(&app_checked_decoder_);
  dequeue_unadmitted(c);
  c.phase = Phase::websocket;
  c.last_traffic_ms = reactor_.now_ms();
  ++open_websockets_;
  reactor_.arm_timer(c.socket, reactor_.now_ms() + config_.heartbeat_ms);
  app_.on_open(c.socket);
  if (!rest.empty() && c.phase == Phase::websocket) {
    FrameHandler handler{*this, c};
    c.messages.feed(rest, handler, workspace_);
  }
}

void WebSocketServer::respond_and_close(Connection& c, uint16_t status, std::string_view body,
                                        std::string_view extra_headers, bool head_only) {
  char response[1024];
  std::string_view text = body.empty() ? http::status_text(status) : body;
  size_t n = http::format_response(response, status, text, extra_headers, head_only);
  bool written = n > 0 && write(c, {reinterpret_cast<const uint8_t*>(response), n});
  MF_LOG_DEBUG("connection {}:{} answered {} ({})", c.socket.slot, c.socket.generation, status,
               written ? "queued" : "NOT queued");
  c.transport.send_close_notify();
  c.phase = Phase::closing;
  reactor_.close(c.socket, CloseMode::graceful);
}

bool WebSocketServer::write(Connection& c, std::span<const uint8_t> bytes) {
  return c.transport.write(bytes).has_value();
}

bool WebSocketServer::send_frame(Connection& c, ws::Opcode opcode, std::span<const uint8_t> payload) {
  std::span<const uint8_t> frame[2] = {{}, payload};
  return send_frame(c, opcode, frame);
}

bool WebSocketServer::send_frame(Connection& c, ws::Opcode opcode, std::span<std::span<const uint8_t>> frame) {
  if (!c.messages.send_pieces(c.transport, opcode, frame, workspace_)) {
    // The peer does not read: its queue hit the cap. Memory stays bounded.
    counters_.slow_consumer_closes++;
    fail(c, "send queue full");
    return false;
  }
  return true;
}

bool WebSocketServer::send_text(SocketHandle socket, std::string_view text) {
  Connection* c = connection(socket);
  if (c == nullptr || c->phase != Phase::websocket) return false;
  counters_.messages_out++;
  return send_frame(*c, ws::Opcode::text, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

bool WebSocketServer::send_text(SocketHandle socket, std::span<const std::string_view> pieces) {
  Connection* c = connection(socket);
  if (c == nullptr || c->phase != Phase::websocket || pieces.size() > max_text_pieces) return false;
  std::span<const uint8_t> frame[1 + max_text_pieces];
  for (size_t i = 0; i < pieces.size(); ++i)
    frame[1 + i] = {reinterpret_cast<const uint8_t*>(pieces[i].data()), pieces[i].size()};
  counters_.messages_out++;
  return send_frame(*c, ws::Opcode::text, std::span<std::span<const uint8_t>>(frame, 1 + pieces.size()));
}

void WebSocketServer::close(SocketHandle socket, uint16_t code, std::string_view reason) {
  Connection* c = connection(socket);
  if (c == nullptr || c->phase == Phase::closing) return;
  close_websocket(*c, code, reason);
}

void WebSocketServer::close_for_violation(SocketHandle socket, uint16_t code, std::string_view reason) {
  Connection* c = connection(socket);
  if (c == nullptr || c->phase == Phase::closing) return;
  counters_.protocol_closes++;
  close_websocket(*c, code, reason);
}

void WebSocketServer::close_websocket(Connection& c, uint16_t code, std::string_view reason) {
  if (c.phase == Phase::closing) return;
  if (c.phase != Phase::websocket) {
    fail(c, "closed before upgrade");
    return;
  }
  c.messages.halt();
  uint8_t payload[125];
  size_t n = code == 0 ? 0 : ws::encode_close_payload(payload, code, reason);
  bool ok = send_frame(c, ws::Opcode::close, {payload, n});
  if (!ok) return;  // send_frame already aborted the connection
  c.transport.send_close_notify();
  mark_closed(c);
  c.phase = Phase::closing;
  reactor_.close(c.socket, CloseMode::graceful);
}

void WebSocketServer::close_all(uint16_t code, std::string_view reason) {
  for (uint32_t slot = 0; slot < connections_.created(); ++slot) {
    Connection& c = connections_[slot];
    if (c.phase == Phase::websocket) close_websocket(c, code, reason);
    else if (in_handshake(c.phase)) fail(c, "shutdown");
  }
}

bool WebSocketServer::respond(SocketHandle socket, std::string_view response) {
  Connection* c = connection(socket);
  if (c == nullptr || (c->phase != Phase::http_pending && c->phase != Phase::http_head)) return false;
  if (!write(*c, {reinterpret_cast<const uint8_t*>(response.data()), response.size()})) {
    // Never a silent empty answer: counted, logged, and the client sees
    // the connection reset rather than a truncated document.
    counters_.responses_refused++;
    MF_LOG_WARN("http: a {}-byte response did not fit the send queue ({} bytes): not sent", response.size(),
                max_response_bytes());
    fail(*c, "response larger than the send queue");
    return false;
  }
  c->transport.send_close_notify();
  c->phase = Phase::closing;
  reactor_.close(c->socket, CloseMode::graceful);
  return true;
}

void WebSocketServer::set_timeouts(uint32_t handshake_timeout_ms, uint32_t first_bytes_timeout_ms,
                                   uint32_t heartbeat_ms) {
  if (!handshakes_aborted_) config_.handshake_timeout_ms = handshake_timeout_ms;
  config_.first_bytes_timeout_ms = first_bytes_timeout_ms;
  config_.heartbeat_ms = heartbeat_ms;
}

void WebSocketServer::abort_handshakes(uint32_t timeout_ms) {
  handshakes_aborted_ = true;
  config_.handshake_timeout_ms = timeout_ms;
  for (uint32_t slot = 0; slot < connections_.created(); ++slot) {
    Connection& c = connections_[slot];
    if (in_handshake(c.phase)) fail(c, "drain");
  }
}

void WebSocketServer::fail(Connection& c, std::string_view reason, CloseMode mode) {
  if (c.phase == Phase::closing || c.phase == Phase::idle) return;
  MF_LOG_DEBUG("connection {}:{} dropped in phase {}: {}", c.socket.slot, c.socket.generation, static_cast<int>(c.phase),
               reason);
  mark_closed(c);
  c.phase = Phase::closing;
  c.messages.halt();
  reactor_.close(c.socket, mode);
}

void WebSocketServer::mark_closed(Connection& c) {
  if (c.phase != Phase::websocket) return;
  --open_websockets_;
  app_.on_closed(c.socket);
}

void WebSocketServer::on_peer_closed(SocketHandle socket, int error) {
  Connection* c = connection(socket);
  if (c == nullptr) return;
  (void)error;
  if (c->phase == Phase::websocket) {
    // EOF without a close frame: abnormal closure; nothing can be sent.
    mark_closed(*c);
    c->phase = Phase::closing;
    reactor_.close(socket, CloseMode::abort);
    return;
  }
  fail(*c, "peer closed");
}

void WebSocketServer::on_timer(SocketHandle socket) {
  Connection* c = connection(socket);
  if (c == nullptr) return;
  uint64_t now = reactor_.now_ms();
  if (in_handshake(c->phase)) {
    // Which deadline fired: the first-bytes one only when it is the earlier
    // of the two and nothing came.
    if (!c->got_bytes && config_.first_bytes_timeout_ms != 0 &&
        config_.first_bytes_timeout_ms < config_.handshake_timeout_ms) {
      counters_.first_bytes_timeouts++;
      fail(*c, "no byte before the first-bytes deadline");
      return;
    }
    counters_.handshake_timeouts++;
    fail(*c, "handshake timeout");
    return;
  }
  if (c->phase != Phase::websocket) return;
  if (c->close_at_ms != 0 && now >= c->close_at_ms) {
    if (c->close_at_code == ws::close_code::policy_violation) counters_.deadline_policy_closes++;
    close_websocket(*c, c->close_at_code, c->close_at_reason);
    return;
  }
  // Liveness (docs/protocol.md section 7), checked lazily: traffic only stamps
  // last_traffic_ms, the timer looks at it when it fires.
  uint64_t silent = now - c->last_traffic_ms;
  uint64_t idle_close_ms = uint64_t{config_.heartbeat_ms} * config_.idle_close_factor_x10 / 10;
  if (silent >= idle_close_ms) {
    counters_.idle_closes++;
    close_websocket(*c, close_code::idle_timeout, "idle timeout");
    return;
  }
  if (silent >= config_.heartbeat_ms) {
    if (!c->ping_outstanding) {
      counters_.pings_sent++;
      c->ping_outstanding = true;
      if (!send_frame(*c, ws::Opcode::ping, std::span<const uint8_t>{})) return;
    }
    arm_liveness(*c, c->last_traffic_ms + idle_close_ms);
    return;
  }
  arm_liveness(*c, c->last_traffic_ms + config_.heartbeat_ms);
}

void WebSocketServer::arm_liveness(Connection& c, uint64_t deadline_ms) {
  if (c.close_at_ms != 0 && c.close_at_ms < deadline_ms) deadline_ms = c.close_at_ms;
  reactor_.arm_timer(c.socket, deadline_ms);
}

void WebSocketServer::schedule_close(SocketHandle socket, uint64_t deadline_ms, uint16_t code, std::string_view reason) {
  Connection* c = connection(socket);
  if (c == nullptr || c->phase != Phase::websocket) return;
  deadline_ms = std::max<uint64_t>(deadline_ms, 1);
  if (c->close_at_ms != 0 && c->close_at_ms <= deadline_ms) return;
  c->close_at_ms = deadline_ms;
  c->close_at_code = code;
  c->close_at_reason = reason;
  // The timer may be armed later than the new deadline: pull it in.
  arm_liveness(*c, c->last_traffic_ms + config_.heartbeat_ms);
}

void WebSocketServer::on_released(SocketHandle socket) {
  if (socket.slot >= connections_.created()) return;
  Connection& c = connections_[socket.slot];
  if (c.socket != socket) return;
  if (c.phase == Phase::websocket) mark_closed(c);
  dequeue_unadmitted(c);
  c.source_pending = false;
  c.partial.clear(reactor_.pool());
  c.messages.release(reactor_.pool());
  c.transport.reset();
  c.phase = Phase::idle;
  app_.on_released(socket);
}

}  // namespace mf
