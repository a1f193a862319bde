#include "ingress/tunnel_server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstring>

#include "common/codec/http_request_head.h"
#include "common/http/head_accumulator.h"
#include "common/net/listen_socket.h"
#include "common/base/log.h"
#include "ingress/backend_pool.h"

namespace mf::ingress {

std::string_view reject_reason_name(RejectReason reason) {
  switch (reason) {
    case RejectReason::max_connections: return "max_connections";
    case RejectReason::per_source_connections: return "per_source_connections";
    case RejectReason::per_source_rate: return "per_source_rate";
    case RejectReason::handshake_rate: return "handshake_rate";
    case RejectReason::no_backend: return "no_backend";
    case RejectReason::backend_full: return "backend_full";
    case RejectReason::no_descriptor: return "no_descriptor";
    case RejectReason::count: break;
  }
  return "unknown";
}

std::string_view tls_failure_name(TlsFailure failure) {
  switch (failure) {
    case TlsFailure::handshake_timeout: return "handshake_timeout";
    case TlsFailure::protocol: return "protocol";
    case TlsFailure::unknown_sni: return "unknown_sni";
    case TlsFailure::version: return "version";
    case TlsFailure::other: return "other";
    case TlsFailure::first_bytes_timeout: return "first_bytes_timeout";
    case TlsFailure::count: break;
  }
  return "unknown";
}

TunnelCounters& TunnelCounters::operator+=(const TunnelCounters& other) {
  accepted += other.accepted;
  tls_full += other.tls_full;
  tls_resumed += other.tls_resumed;
  for (size_t i = 0; i < tls_failures.size(); ++i) tls_failures[i] += other.tls_failures[i];
  for (size_t i = 0; i < rejects.size(); ++i) rejects[i] += other.rejects[i];
  tunnels_opened += other.tunnels_opened;
  tunnels_closed += other.tunnels_closed;
  bytes_to_backend += other.bytes_to_backend;
  bytes_to_client += other.bytes_to_client;
  connect_failures += other.connect_failures;
  connect_retries += other.connect_retries;
  idle_closes += other.idle_closes;
  half_close_timeouts += other.half_close_timeouts;
  flow_pauses += other.flow_pauses;
  reserve_evictions += other.reserve_evictions;
  return *this;
}

namespace {

// Sorts an OpenSSL handshake failure into a metrics label.
TlsFailure classify(unsigned long ssl_error) {
  if (ERR_GET_LIB(ssl_error) != ERR_LIB_SSL) return TlsFailure::other;
  switch (ERR_GET_REASON(ssl_error)) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
      return TlsFailure::version;
    case SSL_R_CALLBACK_FAILED:  // the SNI callback refused the name
      return TlsFailure::unknown_sni;
    default:
      return TlsFailure::protocol;
  }
}

}  // namespace

TunnelServer::TunnelServer(Reactor& reactor, const TunnelSettings& settings, TunnelHost& host)
    : reactor_(reactor),
      settings_(settings),
      host_(host),
      tunnels_(reactor.options().max_sockets),
      roles_(reactor.options().max_sockets) {
  plaintext_scratch_.resize(size_t{16} * 1024 + 1024);
  head_scratch_.resize(http::max_request_head_bytes + 16 * 1024 + 16);
}

TunnelServer::~TunnelServer() {
  for (uint32_t slot = 0; slot < tunnels_.created(); ++slot) tunnels_[slot].pending.clear(reactor_.pool());
}

TunnelServer::Tunnel* TunnelServer::tunnel_of_client(SocketHandle client) {
  if (client.slot >= tunnels_.created()) return nullptr;
  Tunnel& t = tunnels_[client.slot];
  if (t.client != client || t.phase == Phase::idle) return nullptr;
  return &t;
}

TunnelServer::Tunnel* TunnelServer::tunnel_of_backend(SocketHandle backend) {
  if (backend.slot >= roles_.created()) return nullptr;
  const SlotRole& role = roles_[backend.slot];
  if (role.role != Role::backend) return nullptr;
  Tunnel* t = tunnel_of_client(role.owner);
  if (t == nullptr || t->backend != backend) return nullptr;
  return t;
}

void TunnelServer::on_accepted(SocketHandle socket, const sockaddr_storage* peer) {
  Tunnel& t = tunnels_.ensure(socket.slot);
  roles_.ensure(socket.slot) = SlotRole{Role::client, {}};
  ++clients_;
  t.client = socket;
  t.backend = {};
  t.reserved = t.opened = t.client_ended = t.backend_ended = t.client_paused = t.backend_paused = t.has_key = false;
  t.attempts = 0;
  t.half_closed_since_ms = 0;
  t.accepted_ms = t.last_traffic_ms = reactor_.now_ms();
  t.got_bytes = false;
  t.has_source = false;
  if (peer != nullptr) {
    auto endpoint = proxy::endpoint_from_sockaddr(reinterpret_cast<const sockaddr*>(peer), sizeof *peer);
    if (endpoint) {
      t.source = *endpoint;
      t.has_source = true;
    }
  }
  counters_.accepted++;
  t.phase = Phase::admitting;
  enqueue_unadmitted(t);
  keep_reserve(t);
  RejectReason reason = RejectReason::max_connections;
  TunnelHost::Verdict verdict = host_.admit_client(socket, t.has_source ? &t.source : nullptr, reason);
  if (verdict == TunnelHost::Verdict::refuse) {
    refuse(t, reason);
    return;
  }
  t.router = router_;
  auto started = t.transport.start_tls(reactor_, socket, router_->default_context(), tls::Role::server, {},
                                       &reactor_.pool());
  if (!started) {
    MF_LOG_WARN("tls: cannot start a session: {}", started.error());
    finish(t, false);
    return;
  }
  uint64_t deadline = t.accepted_ms + settings_.handshake_timeout_ms;
  if (settings_.first_bytes_timeout_ms != 0)
    deadline = std::min(deadline, t.accepted_ms + settings_.first_bytes_timeout_ms);
  reactor_.arm_timer(socket, deadline);
  if (verdict == TunnelHost::Verdict::pending) {
    // Whatever arrives meanwhile (the ClientHello) waits in `pending`.
    reactor_.pause_receive(socket);
    return;
  }
  t.phase = Phase::handshake;
}

void TunnelServer::enqueue_unadmitted(Tunnel& t) {
  unadmitted_.push_newest(t.client.slot, [this](uint32_t slot) -> SlotFifo::Links& {
    return tunnels_[slot].unadmitted;
  });
}

void TunnelServer::dequeue_unadmitted(Tunnel& t) {
  unadmitted_.remove(t.client.slot, [this](uint32_t slot) -> SlotFifo::Links& {
    return tunnels_[slot].unadmitted;
  });
}

void TunnelServer::keep_reserve(const Tunnel& fresh) {
  uint32_t max = reactor_.options().max_sockets;
  uint32_t reserve = static_cast<uint32_t>(uint64_t{max} * settings_.reserve_percent / 100);
  if (reserve == 0 || reactor_.live_sockets() < max - reserve) return;
  // Tunnels past their handshake leave the list here, each once.
  while (unadmitted_.oldest() != SlotFifo::none && unadmitted_.oldest() != fresh.client.slot) {
    Tunnel& oldest = tunnels_[unadmitted_.oldest()];
    dequeue_unadmitted(oldest);
    if (oldest.phase != Phase::admitting && oldest.phase != Phase::handshake && oldest.phase != Phase::head) continue;
    counters_.reserve_evictions++;
    finish(oldest, false);
    return;
  }
}

void TunnelServer::complete_admission(SocketHandle client, bool admitted, RejectReason reason) {
  Tunnel* t = tunnel_of_client(client);
  if (t == nullptr || t->phase != Phase::admitting) return;
  if (!admitted) {
    refuse(*t, reason);
    return;
  }
  t->phase = Phase::handshake;
  reactor_.resume_receive(client);
  if (t->pending.empty()) return;
  // Feed what arrived while the verdict was on its way.
  size_t size = t->pending.size();
  std::vector<uint8_t>& scratch = head_scratch_;
  if (size > scratch.size()) {
    finish(*t, false);
    return;
  }
  t->pending.copy_to(scratch);
  t->pending.clear(reactor_.pool());
  on_client_bytes(*t, std::span<uint8_t>(scratch.data(), size));
}

void TunnelServer::on_received(SocketHandle socket, std::span<uint8_t> bytes) {
  if (socket.slot >= roles_.created()) return;
  if (roles_[socket.slot].role == Role::client) {
    Tunnel* t = tunnel_of_client(socket);
    if (t != nullptr) on_client_bytes(*t, bytes);
    return;
  }
  Tunnel* t = tunnel_of_backend(socket);
  if (t == nullptr || t->phase != Phase::open) return;
  t->last_traffic_ms = reactor_.now_ms();
  counters_.bytes_to_client += bytes.size();
  if (!t->transport.write(bytes)) {
    // The client's queue overflowed its cap despite the pause: it is gone
    // or hostile; memory stays bounded.
    finish(*t, false);
    return;
  }
  if (!t->backend_paused && reactor_.queued_bytes(t->client) >= settings_.buffer_bytes) {
    t->backend_paused = true;
    counters_.flow_pauses++;
    reactor_.pause_receive(t->backend);
  }
}

void TunnelServer::on_client_bytes(Tunnel& t, std::span<uint8_t> bytes) {
  if (t.phase == Phase::closing) return;
  t.last_traffic_ms = reactor_.now_ms();
  if (!t.got_bytes) {
    // The first-bytes deadline is met: the handshake's own runs from accept.
    t.got_bytes = true;
    if (t.phase == Phase::admitting || t.phase == Phase::handshake)
      reactor_.arm_timer(t.client, t.accepted_ms + settings_.handshake_timeout_ms);
  }
  if (t.phase == Phase::admitting) {
    // In flight before the pause took effect (a ClientHello).
    if (t.pending.size() + bytes.size() > head_scratch_.size() || !t.pending.append(reactor_.pool(), bytes))
      finish(t, false);
    return;
  }
  std::span<uint8_t> scratch(plaintext_scratch_.data(), plaintext_scratch_.size());
  SocketHandle client = t.client;
  auto progress = t.transport.read(bytes, scratch, [&](std::span<uint8_t> plain) {
    if (tunnel_of_client(client) == &t && t.phase != Phase::closing) on_client_plaintext(t, plain);
  });
  if (tunnel_of_client(client) != &t || t.phase == Phase::closing) return;
  if (!progress) {
    fail_tls(t, progress.error());
    return;
  }
  if (*progress == tls::Progress::handshake_completed && t.phase == Phase::handshake) after_handshake(t);
  if (*progress == tls::Progress::peer_closed) client_ended(t);
}

void TunnelServer::fail_tls(Tunnel& t, const tls::Failure& failure) {
  if (!t.transport.handshake_done()) {
    TlsFailure kind = classify(failure.ssl_error);
    counters_.tls_failures[static_cast<size_t>(kind)]++;
    MF_LOG_DEBUG("tls: handshake of {}:{} failed: {} ({})", t.client.slot, t.client.generation, failure.reason,
                 tls_failure_name(kind));
  }
  // Graceful: the alert OpenSSL queued (unrecognized_name,
  // protocol_version...) leaves before the FIN.
  finish(t, true);
}

void TunnelServer::after_handshake(Tunnel& t) {
  counters_.tls_full++;
  if (t.transport.resumed()) {
    counters_.tls_full--;
    counters_.tls_resumed++;
  }
  t.router.reset();
  if (settings_.stream_affinity) {
    t.phase = Phase::head;
    return;  // the handshake timer keeps running until the head is in
  }
  start_connect(t);
}

void TunnelServer::on_client_plaintext(Tunnel& t, std::span<uint8_t> plain) {
  // The client's first bytes may ride in the same read as its Finished.
  if (t.phase == Phase::handshake && t.transport.handshake_done()) after_handshake(t);
  switch (t.phase) {
    case Phase::head:
      on_head_bytes(t, plain);
      return;
    case Phase::connecting:
      hold_pending(t, plain);
      return;
    case Phase::open:
      send_to_backend(t, plain);
      return;
    case Phase::idle:
    case Phase::admitting:
    case Phase::handshake:
    case Phase::closing:
      return;
  }
}

bool TunnelServer::hold_pending(Tunnel& t, std::span<const uint8_t> bytes) {
  if (!t.pending.append(reactor_.pool(), bytes)) {
    finish(t, false);
    return false;
  }
  if (!t.client_paused && t.pending.size() >= settings_.buffer_bytes) {
    t.client_paused = true;
    counters_.flow_pauses++;
    reactor_.pause_receive(t.client);
  }
  return true;
}

void TunnelServer::on_head_bytes(Tunnel& t, std::span<uint8_t> plain) {
  if (!hold_pending(t, plain)) return;
  if (t.pending.size() > head_scratch_.size()) {
    start_connect(t);  // no head within the limit: no affinity for it
    return;
  }
  // The bytes stay in `pending` (the backend gets them all); the head is
  // only looked at.
  http::HeadProgress found = http::find_held_head(t.pending, head_scratch_, http::max_request_head_bytes);
  if (found.status == http::HeadStatus::need_more) return;
  if (found.status == http::HeadStatus::complete) {
    // Only the stream matters here; the edge judges the request itself.
    auto head = http::parse_request_head(found.head);
    if (head) {
      auto stream = http::query_param(head->query, settings_.affinity_parameter);
      if (stream && !stream->empty()) {
        t.has_key = true;
        t.key_hash = BackendPool::hash_key(*stream);
      }
    }
  }
  start_connect(t);
}

void TunnelServer::start_connect(Tunnel& t) {
  dequeue_unadmitted(t);  // past its handshake (and head): admitted
  if (t.attempts == 0) t.connect_deadline_ms = reactor_.now_ms() + settings_.connect_timeout_ms;
  auto target = host_.select_backend(t.has_key ? std::optional<uint64_t>(t.key_hash) : std::nullopt,
                                     std::span<const uint32_t>(t.failed.data(), t.attempts));
  if (!target) {
    refuse(t, target.error());
    return;
  }
  t.phase = Phase::connecting;
  t.backend_index = target->index;
  t.reserved = true;
  // A socket or a descriptor index this shard cannot have is its own
  // shortage: the backend is not blamed (ejecting it would take a healthy
  // edge out for every shard), and another backend would not help.
  auto fd = open_outbound_socket(target->address->ss_family);
  if (!fd) {
    refuse_for_descriptors(t, fd.error());
    return;
  }
  auto handle = reactor_.connect_adopted(*fd, reinterpret_cast<const sockaddr*>(target->address), target->length, this);
  if (!handle) {
    refuse_for_descriptors(t, handle.error());
    return;
  }
  roles_.ensure(handle->slot) = SlotRole{Role::backend, t.client};
  t.backend = *handle;
  reactor_.arm_timer(t.client, t.connect_deadline_ms);
}

void TunnelServer::refuse_for_descriptors(Tunnel& t, int error) {
  // refuse() gives the backend's reservation back (finish()).
  MF_LOG_DEBUG("ingress: no socket for a backend connection: {}", std::strerror(-error));
  refuse(t, RejectReason::no_descriptor);
}

void TunnelServer::retry_or_fail(Tunnel& t, int error) {
  counters_.connect_failures++;
  host_.on_connect_failed(t.backend_index, error);
  t.reserved = false;
  host_.release_backend(t.backend_index);
  MF_LOG_DEBUG("ingress: connect to backend {} failed: {}", t.backend_index, std::strerror(-error));
  t.backend = {};
  t.failed[t.attempts++] = t.backend_index;
  if (t.attempts < max_attempts && reactor_.now_ms() < t.connect_deadline_ms) {
    counters_.connect_retries++;
    start_connect(t);
    return;
  }
  refuse(t, RejectReason::no_backend);
}

void TunnelServer::on_connected(SocketHandle socket, int error) {
  Tunnel* t = tunnel_of_backend(socket);
  if (t == nullptr || t->phase != Phase::connecting) {
    if (error == 0) reactor_.close(socket, CloseMode::abort);
    return;
  }
  if (error != 0) {
    retry_or_fail(*t, error);
    return;
  }
  on_backend_connected(*t);
}

void TunnelServer::on_backend_connected(Tunnel& t) {
  uint8_t header[proxy::max_header_bytes];
  size_t n = 0;
  if (t.has_source && t.source.family == settings_.listen_endpoint.family) {
    n = proxy::encode(header, t.source, settings_.listen_endpoint, t.transport.server_name(), t.transport.alpn(), false);
  } else if (t.has_source) {
    // An IPv4 client on an IPv6 listener (or the reverse): name the client
    // with an unspecified destination of its own family.
    proxy::Endpoint destination = t.source;
    destination.address = {};
    destination.port = settings_.listen_endpoint.port;
    n = proxy::encode(header, t.source, destination, t.transport.server_name(), t.transport.alpn(), false);
  }
  if (n == 0) n = proxy::encode_local(header);
  t.phase = Phase::open;
  t.opened = true;
  counters_.tunnels_opened++;
  if (!reactor_.send(t.backend, {header, n})) {
    finish(t, false);
    return;
  }
  while (!t.pending.empty()) {
    std::span<uint8_t> front = t.pending.front();
    counters_.bytes_to_backend += front.size();
    if (!reactor_.send(t.backend, front)) {
      finish(t, false);
      return;
    }
    t.pending.consume(reactor_.pool(), front.size());
  }
  if (t.client_paused && reactor_.queued_bytes(t.backend) < settings_.buffer_bytes) {
    t.client_paused = false;
    reactor_.resume_receive(t.client);
  }
  if (t.client_ended) {
    reactor_.shutdown_write(t.backend);
    t.half_closed_since_ms = reactor_.now_ms();
  }
  arm_timer(t);
}

void TunnelServer::send_to_backend(Tunnel& t, std::span<const uint8_t> bytes) {
  counters_.bytes_to_backend += bytes.size();
  if (!reactor_.send(t.backend, bytes)) {
    finish(t, false);
    return;
  }
  if (!t.client_paused && reactor_.queued_bytes(t.backend) >= settings_.buffer_bytes) {
    t.client_paused = true;
    counters_.flow_pauses++;
    reactor_.pause_receive(t.client);
  }
}

void TunnelServer::on_sent(SocketHandle socket, size_t queued_bytes) {
  if (socket.slot >= roles_.created() || queued_bytes >= settings_.buffer_bytes / 2) return;
  if (roles_[socket.slot].role == Role::client) {
    Tunnel* t = tunnel_of_client(socket);
    if (t != nullptr && t->phase == Phase::open && t->backend_paused) {
      t->backend_paused = false;
      reactor_.resume_receive(t->backend);
    }
    return;
  }
  Tunnel* t = tunnel_of_backend(socket);
  if (t != nullptr && t->phase == Phase::open && t->client_paused) {
    t->client_paused = false;
    reactor_.resume_receive(t->client);
  }
}

void TunnelServer::client_ended(Tunnel& t) {
  if (t.client_ended) return;
  t.client_ended = true;
  if (t.phase == Phase::connecting) return;  // shut once connected
  if (t.phase != Phase::open) {
    finish(t, false);
    return;
  }
  reactor_.shutdown_write(t.backend);
  if (t.backend_ended) {
    finish(t, true);
    return;
  }
  t.half_closed_since_ms = reactor_.now_ms();
  arm_timer(t);
}

void TunnelServer::backend_ended(Tunnel& t) {
  if (t.backend_ended) return;
  t.backend_ended = true;
  // The edge said all it will say: tell the client the same way.
  t.transport.send_close_notify();
  reactor_.shutdown_write(t.client);
  if (t.client_ended) {
    finish(t, true);
    return;
  }
  t.half_closed_since_ms = reactor_.now_ms();
  arm_timer(t);
}

void TunnelServer::on_peer_closed(SocketHandle socket, int error) {
  if (socket.slot >= roles_.created()) return;
  bool is_client = roles_[socket.slot].role == Role::client;
  Tunnel* t = is_client ? tunnel_of_client(socket) : tunnel_of_backend(socket);
  if (t == nullptr || t->phase == Phase::closing) return;
  if (error != 0) {
    // A reset or a failed send: nothing more can flow on this tunnel.
    finish(*t, false);
    return;
  }
  if (is_client) client_ended(*t);
  else if (t->phase == Phase::open) backend_ended(*t);
  else finish(*t, false);
}

void TunnelServer::arm_timer(Tunnel& t) {
  uint64_t deadline = t.last_traffic_ms + settings_.idle_timeout_ms;
  if (t.half_closed_since_ms != 0) deadline = std::min(deadline, t.half_closed_since_ms + settings_.half_closed_ms);
  reactor_.arm_timer(t.client, deadline);
}

void TunnelServer::on_timer(SocketHandle socket) {
  Tunnel* t = tunnel_of_client(socket);
  if (t == nullptr) return;
  uint64_t now = reactor_.now_ms();
  switch (t->phase) {
    case Phase::admitting:
    case Phase::handshake:
    case Phase::head: {
      // Which deadline fired: the first-bytes one only when it is the
      // earlier of the two and nothing came.
      bool first_bytes = !t->got_bytes && settings_.first_bytes_timeout_ms != 0 &&
                         settings_.first_bytes_timeout_ms < settings_.handshake_timeout_ms;
      counters_.tls_failures[static_cast<size_t>(first_bytes ? TlsFailure::first_bytes_timeout
                                                             : TlsFailure::handshake_timeout)]++;
      finish(*t, false);
      return;
    }
    case Phase::connecting: {
      SocketHandle backend = t->backend;
      t->backend = {};
      reactor_.close(backend, CloseMode::abort);
      counters_.connect_failures++;
      host_.on_connect_failed(t->backend_index, -ETIMEDOUT);
      t->reserved = false;
      host_.release_backend(t->backend_index);
      refuse(*t, RejectReason::no_backend);
      return;
    }
    case Phase::open:
      if (t->half_closed_since_ms != 0 && now >= t->half_closed_since_ms + settings_.half_closed_ms) {
        counters_.half_close_timeouts++;
        finish(*t, true);
        return;
      }
      if (now >= t->last_traffic_ms + settings_.idle_timeout_ms) {
        counters_.idle_closes++;
        finish(*t, true);
        return;
      }
      arm_timer(*t);
      return;
    case Phase::idle:
    case Phase::closing:
      return;
  }
}

void TunnelServer::refuse(Tunnel& t, RejectReason reason) {
  counters_.rejects[static_cast<size_t>(reason)]++;
  MF_LOG_DEBUG("ingress: client {}:{} refused: {}", t.client.slot, t.client.generation, reject_reason_name(reason));
  // After the handshake the client gets close_notify and a FIN; before it
  // nothing has been said, and a reset costs the least.
  finish(t, t.transport.handshake_done());
}

void TunnelServer::finish(Tunnel& t, bool graceful) {
  if (t.phase == Phase::closing || t.phase == Phase::idle) return;
  t.phase = Phase::closing;
  if (t.opened) {
    t.opened = false;
    counters_.tunnels_closed++;
  }
  if (t.reserved) {
    t.reserved = false;
    host_.release_backend(t.backend_index);
  }
  if (graceful && t.transport.handshake_done() && !t.backend_ended) t.transport.send_close_notify();
  reactor_.close(t.client, graceful ? CloseMode::graceful : CloseMode::abort);
  if (t.backend.valid()) reactor_.close(t.backend, graceful ? CloseMode::graceful : CloseMode::abort);
}

void TunnelServer::close_all(bool close_open) {
  for (uint32_t slot = 0; slot < tunnels_.created(); ++slot) {
    Tunnel& t = tunnels_[slot];
    if (t.phase == Phase::idle || t.phase == Phase::closing) continue;
    if (t.phase != Phase::open || close_open) finish(t, t.phase == Phase::open);
  }
}

void TunnelServer::on_released(SocketHandle socket) {
  if (socket.slot >= roles_.created()) return;
  SlotRole& role = roles_[socket.slot];
  if (role.role == Role::backend) {
    Tunnel* t = tunnel_of_backend(socket);
    role = SlotRole{};
    if (t != nullptr) {
      t->backend = {};
      if (t->phase == Phase::open) finish(*t, false);
    }
    return;
  }
  if (role.role != Role::client) return;
  role = SlotRole{};
  Tunnel& t = tunnels_[socket.slot];
  if (t.client != socket) return;
  dequeue_unadmitted(t);
  if (t.phase != Phase::closing && t.phase != Phase::idle) finish(t, false);
  t.pending.clear(reactor_.pool());
  t.transport.reset();
  t.router.reset();
  t.phase = Phase::idle;
  --clients_;
  host_.on_client_released(socket);
}

}  // namespace mf::ingress
