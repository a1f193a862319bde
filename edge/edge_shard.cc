#include "edge/edge_shard.h"
#include "edge/edge_shard_support.h"

#include <openssl/rand.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/base/heap_allocation_counter.h"
#include "common/base/json_writer.h"
#include "common/base/keyed_hash.h"
#include "common/base/os_random.h"
#include "common/codec/http_response.h"
#include "common/codec/utf8_validator.h"
#include "common/base/log.h"
#include "edge/cluster_keys.h"
#include "edge/operator_page.h"
#include "edge/streams_json.h"

#include <fmt/format.h>

namespace mf::edge {

using namespace shard_support;

EdgeShard::EdgeShard(Shard& shard, const EdgeShared& shared, const Seeds& seeds)
    : tracker_swarms_(seeds.streams ^ 0x9E3779B97F4A7C15ull, shared.settings.tracker),
      valkey_seed_(seeds.valkey),
      policy_source_(shared.initial_policy),
      shard_(shard),
      running_(shared),
      shared_(running_),
      sessions_(shard.reactor().options().max_sockets),
      directory_(static_cast<uint16_t>(shard.id())),
      stream_owner_(seeds.streams, static_cast<uint16_t>(shard.id())),
      policy_(shared.initial_policy),
      rng_(seeds.rng),
      signal_pool_(shard.id(), shard.count()) {}

std::expected<std::unique_ptr<ShardService>, std::string> EdgeShard::create(Shard& shard, const EdgeShared& shared) {
  // Every shard draws its own seeds from the OS: two shards (or two edges)
  // never share a sequence, whenever they start.
  Seeds seeds;
  for (uint64_t* seed : {&seeds.streams, &seeds.rng, &seeds.valkey}) {
    auto drawn = os_random_u64();
    if (!drawn) return std::unexpected(fmt::format("shard {}: seeds: {}", shard.id(), drawn.error()));
    *seed = *drawn;
  }
  std::unique_ptr<EdgeShard> self(new EdgeShard(shard, shared, seeds));
#if defined(MF_TEST_HOOKS)
  // MF_TEST_NO_SESSION_RANDOMNESS=1: the CSPRNG refuses every session
  // (tests/system/test_session_randomness.py). Compiled only with -Dtest_hooks=true.
  if (const char* hook = std::getenv("MF_TEST_NO_SESSION_RANDOMNESS")) self->no_session_randomness_ = hook[0] == '1';
#endif
  // Any reply fits: an error or `joined` quoting up to a whole request, and
  // the largest `peers` (64 candidates) with a request-sized `ref`.
  // A relayed tracker offer or answer quotes up to a whole tracker message.
  const uint32_t largest_message =
      std::max(shared.settings.max_message_bytes, self->tracker_enabled() ? shared.settings.tracker_max_message_bytes : 0u);
  self->reply_.resize(std::max<size_t>(largest_message + 4096,
                                       max_peers_reply_bytes(shared.settings.max_message_bytes)));
  WebSocketServerConfig ws;
  ws.routes.websocket_path = shared.settings.websocket_path;
  ws.routes.second_websocket_path = shared.settings.tracker_path;  // empty: off
  // The larger of the two paths' limits; each path's own is checked per
  // message (on_client_message).
  ws.decoder.max_message_bytes = largest_message;
  ws.heartbeat_ms = shared.settings.heartbeat_ms;
  ws.handshake_timeout_ms = shared.settings.handshake_timeout_ms;
  ws.first_bytes_timeout_ms = shared.settings.first_bytes_timeout_ms;
  ws.reserve_slots = static_cast<uint32_t>(uint64_t{shard.reactor().options().max_sockets} *
                                           shared.settings.reserve_percent / 100);
  if (!shared.tls.certificates.empty()) {
    // One context per shard: nothing in OpenSSL is shared between shards but
    // the ticket keys, so a resumed session works on any shard.
    auto context = tls::Context::make_server(shared.tls);
    if (!context) return std::unexpected(context.error());
    self->tls_.emplace(std::move(*context));
    ws.tls = &*self->tls_;
  }
  // Per-source limits need the client's address: the listeners ask accept
  // for it; behind the ingress the PROXY header brings it (a LOCAL or
  // UNSPEC header names nobody: the TCP peer's address counts then). Without
  // limits at start, a reload cannot turn them on (edge/main.cc).
  bool per_source = shared.per_source.enabled();
  // The public server exists even without a public listener (it is then
  // idle): counters and drain treat both servers alike.
  self->server_ = std::make_unique<WebSocketServer>(shard.reactor(), ws, self->public_app_);
  self->public_app_.server = self->server_.get();
  if (shared.inherited_public_fd >= 0 || shared.listen_address) {
    auto fd = shard_listener(shared.inherited_public_fd, shared.listen_address ? &*shared.listen_address : nullptr, 4096);
    if (!fd) return std::unexpected("listen.public: " + fd.error());
    self->listen_fd_ = *fd;
    shard.reactor().add_listener(*fd, self->server_.get(), per_source);
  }
  if (shared.inherited_plain_fd >= 0 || shared.plain_address) {
    WebSocketServerConfig plain = ws;
    plain.tls = nullptr;
    plain.expect_proxy_header = shared.settings.proxy_protocol;
    self->plain_server_ = std::make_unique<WebSocketServer>(shard.reactor(), plain, self->plain_app_);
    self->plain_app_.server = self->plain_server_.get();
    auto plain_fd = shard_listener(shared.inherited_plain_fd, shared.plain_address ? &*shared.plain_address : nullptr, 4096);
    if (!plain_fd) return std::unexpected("listen.plain: " + plain_fd.error());
    self->plain_fd_ = *plain_fd;
    shard.reactor().add_listener(*plain_fd, self->plain_server_.get(), per_source);
  }
  if (per_source) {
    EdgeShard* raw = self.get();
    shard.reactor().add_periodic(10000, [raw] { raw->sweep_sources(); });
  }
  if (self->tracker_enabled()) {
    // Silent peers and unanswered offers go within a second of their expiry.
    EdgeShard* raw = self.get();
    shard.reactor().add_periodic(1000, [raw] { raw->tracker_expire(); });
    // What the turn's requests made for other shards leaves at its end.
    shard.reactor().add_end_of_turn([raw] { raw->flush_tracker_deliveries(); });
    raw->tracker_targets_.resize(shared.settings.tracker.max_offers);
  }
  if (shard.count() > 1) {
    // A batch of signal packets not yet full goes home within 10 ms of its
    // first packet; no batch, no timer.
    EdgeShard* raw = self.get();
    self->signal_return_task_ = shard.reactor().add_deferred(10, [raw] { raw->flush_signal_returns(); });
  }
  if (shard.id() == 0 && (shared.inherited_admin_fd >= 0 || shared.admin_address)) {
    self->admin_app_ = std::make_unique<AdminApp>(*self);
    self->admin_guard_.emplace(std::string_view{}, shared.settings.admin_allowed_hosts);
    WebSocketServerConfig admin;
    admin.routes.websocket_path = "/ws";  // refused by AdminApp::admit
    admin.handshake_timeout_ms = 5000;
    self->admin_server_ = std::make_unique<WebSocketServer>(shard.reactor(), admin, *self->admin_app_);
    auto admin_fd = shard_listener(shared.inherited_admin_fd, shared.admin_address ? &*shared.admin_address : nullptr, 64);
    if (!admin_fd) return std::unexpected("admin.listen: " + admin_fd.error());
    self->admin_fd_ = *admin_fd;
    shard.reactor().add_listener(*admin_fd, self->admin_server_.get(), false, Reactor::accepts_per_admin_listener);
    // The history starts at start-up, every counter zero.
    HistoryTotals start;
    start.time_ms = shard.reactor().now_ms();
    self->history_.emplace(shared.settings.history_samples, start);
    EdgeShard* raw = self.get();
    shard.reactor().add_periodic(shared.settings.history_period_ms,
                                 [raw] { raw->start_metrics_collection({}, CollectionKind::history, false); });
  }
  if (shard.id() == 0 && shared.tls.ticket_keys != nullptr) {
    EdgeShard* raw = self.get();
    self->ticket_rotation_.emplace(shared.tls.ticket_keys, shard.reactor().now_ms());
    // The period as the last reload set it (0: never).
    shard.reactor().add_periodic(1000, [raw] {
      raw->ticket_rotation_->tick(raw->shard_.reactor().now_ms(), raw->shared_.settings.ticket_rotation_s);
    });
  }
  if (shard.id() == 0 && self->tls_) {
    EdgeShard* raw = self.get();
    self->certificate_files_.emplace(tls::source_files(shared.tls.certificates));
    if (shared.settings.tls_watch_interval_ms != 0)
      shard.reactor().add_periodic(shared.settings.tls_watch_interval_ms, [raw] { raw->check_certificate_files(false); });
  }
  if (shard.id() == 0 && !shared.settings.policy_file.empty()) {
    EdgeShard* raw = self.get();
    // main() loaded the file as it is now.
    self->policy_files_.emplace(std::vector<std::string>{shared.settings.policy_file});
    if (shared.settings.policy_watch) shard.reactor().add_periodic(1000, [raw] { raw->load_policy_file(); });
  }
  if (auto ok = self->cluster_start(); !ok) return std::unexpected(ok.error());
  return std::unique_ptr<ShardService>(std::move(self));
}

EdgeShard::~EdgeShard() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (plain_fd_ >= 0) ::close(plain_fd_);
  if (admin_fd_ >= 0) ::close(admin_fd_);
}

// ---- routing helpers -------------------------------------------------------

uint32_t EdgeShard::directory_shard(std::string_view peer_id) const {
  return directory_shard_of(PeerDirectory::hash_of(peer_id));
}

uint32_t EdgeShard::stream_shard(std::string_view stream_id) const {
  return static_cast<uint32_t>((hash_text(stream_id) >> 7) % shard_.count());
}

PeerLocation EdgeShard::location_of(const PeerSession& s) const {
  return PeerLocation{static_cast<uint16_t>(shard_.id()), s.socket.slot, s.socket.generation};
}

MemberLocation EdgeShard::member_location_of(const PeerSession& s, uint32_t join_sequence) const {
  return MemberLocation{0, static_cast<uint16_t>(shard_.id()), s.socket.slot, s.socket.generation, join_sequence};
}

void EdgeShard::on_message(const ShardMessage& message) {
  if (EdgeMessages::dispatch(message, *this)) return;
  MF_LOG_ERROR("shard {}: unknown shard message kind {}", shard_.id(), message.kind);
  std::abort();
}

void EdgeShard::dispose(const ShardMessage& message) { EdgeMessages::dispose(message); }

void SignalChainDeleter::operator()(SignalPacket* chain) const { SignalPacketPool::delete_chain(chain); }

// ---- replies ----------------------------------------------------------------

void EdgeShard::send_text(PeerSession& s, std::string_view text) {
  if (text.empty()) {
    // The reply did not fit reply_ (sized for the worst case: this is a
    // defect). Never silent: counted, and logged for the first and then
    // every 1024th.
    if ((counters_.replies_unsent++ & 1023) == 0)
      MF_LOG_ERROR("shard {}: a reply did not fit the {}-byte reply buffer and was not sent ({} so far)", shard_.id(),
                   reply_.size(), counters_.replies_unsent);
    return;
  }
  s.server->send_text(s.socket, text);
}

void EdgeShard::send_error(PeerSession& s, SdkErrorCode code, std::string_view message, std::string_view detail,
                           std::string_view ref_raw, std::string_view to, int64_t retry_after_ms) {
  counters_.errors[static_cast<size_t>(code)]++;
  ErrorReply reply{code, message, detail, ref_raw, to, retry_after_ms};
  send_text(s, write_error(reply_, reply));
  // Repeated errors close the connection (docs/protocol.md section 5); rate-limit drops
  // have their own budget (4003).
  if (code != SdkErrorCode::rate_limited &&
      s.errors.record_error(reactor_now(), shared_.settings.error_limit, shared_.settings.error_window_ms)) {
    counters_.error_limit_closes++;
    s.server->close(s.socket, ws::close_code::policy_violation, "too many errors");
  }
}

uint32_t EdgeShard::effective_max_peers(const Policy& policy, uint32_t caps_max_peers) const {
  return std::min(policy.max_peers, caps_max_peers);
}

std::optional<std::string> EdgeShard::fresh_session() {
  // 128 bits from the CSPRNG: the session is the identity's only secret.
  // Without them there is no session (never a fallback generator).
  uint8_t bytes[16];
  if (no_session_randomness_ || RAND_bytes(bytes, sizeof bytes) != 1) return std::nullopt;
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (size_t i = 0; i < 16; ++i) {
    out[2 * i] = hex[bytes[i] >> 4];
    out[2 * i + 1] = hex[bytes[i] & 15];
  }
  return out;
}

// ---- WebSocketApp -------------------------------------------------------------

Admission EdgeShard::admit(WebSocketServer& server, SocketHandle connection, const http::RequestHead& head) {
  if (stopping_) return Admission{503, "draining\n", "Retry-After: 5\r\n"};
  if (shared_.origins && !shared_.origins->allows(head.header("Origin"))) {
    counters_.rejected_origin++;
    return Admission{403, "origin not allowed\n", {}};
  }
  std::unique_ptr<JwtClaims> claims;
  if (shared_.jwt) {
    auto token = http::query_param(head.query, "token");
    if (!token) {
      counters_.rejected_token++;
      return Admission{401, "token required\n", {}};
    }
    auto verified = shared_.jwt->verify(*token, static_cast<int64_t>(time(nullptr)), jwt_parser_);
    if (!verified) {
      counters_.rejected_token++;
      return Admission{401, "invalid token\n", {}};
    }
    claims = std::make_unique<JwtClaims>(std::move(*verified));
  }
  if (shared_.settings.max_connections != 0) {
    // The edge-wide cap is split evenly: each shard admits its share, so
    // no shard has to ask the others.
    uint32_t n = shard_.count();
    size_t share = (shared_.settings.max_connections + n - 1) / n;
    size_t open = server_->open_websockets() + (plain_server_ ? plain_server_->open_websockets() : 0);
    if (open >= share) {
      counters_.rejected_capacity++;
      return Admission{503, "edge at capacity\n", "Retry-After: 5\r\n"};
    }
  }
  PeerSession& s = sessions_.ensure(connection.slot);
  s.claims = std::move(claims);
  s.server = &server;
  s.socket = connection;
  // Same listeners, same admission; the path picks the protocol.
  s.tracker = tracker_enabled() && head.path == shared_.settings.tracker_path;
  s.tracker_seats.clear();
  Admission admitted;
  // SDK messages: the parser's one walk checks their UTF-8
  // (sdk_text_is_utf8()); the tracker's go through the WebSocket layer's.
  admitted.app_checks_utf8 = !s.tracker;
  return admitted;
}

namespace {
Admission per_source_refusal(SourceVerdict verdict) {
  return Admission{429,
                   verdict == SourceVerdict::over_rate ? "too many new connections from this address\n"
                                                       : "too many connections from this address\n",
                   "Retry-After: 1\r\n"};
}
}  // namespace

SourceGate EdgeShard::admit_source(WebSocketServer& server, SocketHandle connection, const proxy::Endpoint* source,
                                   Admission& refusal) {
  PeerSession& s = sessions_.ensure(connection.slot);
  s.server = &server;
  s.socket = connection;
  s.state = PeerState::free;
  s.source_acquired = false;
  if (!shared_.per_source.enabled() || source == nullptr) return SourceGate::admit;
  // Counted at accept, before any TLS or HTTP work (docs/security.md,
  // "Connection admission"). The count of a source lives on the shard it
  // hashes to, so the limit holds edge-wide.
  s.source = SourceKey::of(*source, shared_.per_source.prefixes);
  SourceAdmission::Start start =
      sources_.acquire(s.source, connection.slot, connection.generation, shared_.per_source, reactor_now());
  switch (start.step) {
    case SourceAdmission::Step::admitted:
      s.source_acquired = true;
      return SourceGate::admit;
    case SourceAdmission::Step::refused:
      counters_.rejected_per_source++;
      refusal = per_source_refusal(start.verdict);
      return SourceGate::refuse;
    case SourceAdmission::Step::pending:
      // The verdict comes by message, never in place (the owner is another shard).
      s.state = PeerState::admitting;
      return SourceGate::pending;
    case SourceAdmission::Step::busy:
      break;
  }
  refusal = Admission{503, "edge busy\n", "Retry-After: 1\r\n"};
  return SourceGate::refuse;
}

void EdgeShard::on_source_acquire(std::unique_ptr<SourceRequest> m) {
  sources_.on_acquire(std::move(m), shared_.per_source, reactor_now());
}

void EdgeShard::on_source_verdict(std::unique_ptr<SourceRequest> m) {
  PeerSession* s = session_at(PeerLocation{static_cast<uint16_t>(shard_.id()), m->slot, m->generation});
  bool waiting = s != nullptr && s->state == PeerState::admitting;
  if (!waiting)
    MF_LOG_DEBUG("source verdict for {}:{} found no admitting connection (state {})", m->slot, m->generation,
                 s == nullptr ? -1 : static_cast<int>(s->state));
  // A connection that left meanwhile: its place granted goes back to the owner.
  std::optional<SourceVerdict> verdict = sources_.on_verdict(std::move(m), waiting);
  if (!verdict) return;
  s->state = PeerState::free;
  if (*verdict != SourceVerdict::admitted) {
    counters_.rejected_per_source++;
    s->server->complete_source(s->socket, false, per_source_refusal(*verdict));
    return;
  }
  s->source_acquired = true;
  s->server->complete_source(s->socket, true, Admission{});
}

void EdgeShard::on_source_release(std::unique_ptr<SourceRequest> m) { sources_.on_release(std::move(m), reactor_now()); }

void EdgeShard::sweep_sources() { sources_.sweep(reactor_now()); }

void EdgeShard::on_released(SocketHandle connection) {
  if (connection.slot >= sessions_.created()) return;
  PeerSession& s = sessions_[connection.slot];
  if (s.socket != connection) return;
  if (s.source_acquired) {
    sources_.release(s.source, reactor_now());
    s.source_acquired = false;
  }
  s.state = PeerState::free;
}

void EdgeShard::on_open(WebSocketServer& server, SocketHandle connection) {
  PeerSession& s = sessions_.ensure(connection.slot);
  uint64_t now = reactor_now();
  s.server = &server;
  s.socket = connection;
  s.state = PeerState::connected;
  s.join_sequence++;
  s.peer_id.clear();
  s.signal_head.clear();
  s.stream_id.clear();
  s.rendition.clear();
  s.session.clear();
  s.stats_credit.start(now);
  s.proposals_received = 0;
  s.held_claim = {};
  s.in_swarm = false;
  s.directory_handle = {};
  s.stream_key = 0;
  s.signal_counts_index = StreamSignalCounts::no_entry;
  s.recent_peers.clear();
  s.bucket.init(shared_.settings.message_burst, now);
  s.errors.reset();
  s.rate_drops.reset();
  if (s.claims && shared_.jwt) {
    // Admission lasts as long as the token (docs/protocol.md section 8): at its `exp`
    // (with the leeway the verifier allowed) the connection closes with
    // 1008, whatever it is doing, so it cannot join anything afterwards.
    int64_t end_ms = (s.claims->exp + shared_.jwt->leeway_seconds()) * 1000;
    int64_t wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
    uint64_t left_ms = end_ms > wall_ms ? static_cast<uint64_t>(end_ms - wall_ms) : 0;
    server.schedule_close(connection, now + left_ms, ws::close_code::policy_violation, "admission revoked: token expired");
  }
}

void EdgeShard::on_closed(SocketHandle connection) {
  if (connection.slot >= sessions_.created()) return;
  PeerSession& s = sessions_[connection.slot];
  if (s.socket != connection) return;
  give_up(s);
  if (s.tracker) tracker_give_up(s);
  s.state = PeerState::free;
  s.claims.reset();
}

// An SDK connection's messages reach the edge unchecked for UTF-8
// (Admission::app_checks_utf8): one the parser did not refuse as bad JSON
// was valid UTF-8 throughout, since JsonReader checks every string and
// takes no other byte above 0x7F (docs/architecture.md, "Reading an SDK
// message"). Every other message is checked here; an invalid one closes
// the connection with 1007, as the WebSocket layer would have.
bool EdgeShard::sdk_text_is_utf8(PeerSession& s, std::string_view text) {
  if (is_valid_utf8(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()))) return true;
  s.server->close_for_violation(s.socket, ws::close_code::invalid_payload, "invalid UTF-8 in text message");
  return false;
}

void EdgeShard::on_client_message(SocketHandle connection, std::string_view text) {
  PeerSession& s = sessions_[connection.slot];
  if (s.state == PeerState::free || s.socket != connection) return;
  // The WebSocket limit is the larger of the two paths' (create()): each
  // path's own is enforced here, with the same close code.
  if (text.size() > (s.tracker ? shared_.settings.tracker_max_message_bytes : shared_.settings.max_message_bytes)) {
    if (!s.tracker && !sdk_text_is_utf8(s, text)) return;
    counters_.tracker.oversized_closed++;
    s.server->close(s.socket, ws::close_code::message_too_big, "message too big");
    return;
  }
  if (s.tracker) return on_tracker_message(s, text);
  uint64_t now = reactor_now();
  if (!s.bucket.take(shared_.settings.messages_per_second, shared_.settings.message_burst, now)) {
    if (!sdk_text_is_utf8(s, text)) return;
    if (s.rate_drops.record_error(now, shared_.settings.rate_limit_close_after, shared_.settings.error_window_ms)) {
      s.server->close(s.socket, close_code::rate_limited, "rate limit exceeded");
      return;
    }
    // The message is dropped, but its `id` still comes back as `ref` (the
    // error is the reply it caused); parsing costs well under a microsecond.
    auto dropped = parser_.parse(text);
    std::string_view ref = dropped ? dropped->id_raw : dropped.error().id_raw;
    send_error(s, SdkErrorCode::rate_limited, "message dropped: rate limit exceeded", {}, ref);
    return;
  }
  // parse() in two steps: the SDK's own signal read by its pieces, without
  // building a whole request; anything else by the walk.
  if (SignalFields signal; read_compact_signal(text, signal)) return handle_signal(s, signal, {});
  auto request = parser_.parse_by_walk(text);
  if (!request) {
    const SdkRejection& r = request.error();
    if (r.code == SdkErrorCode::bad_json && !sdk_text_is_utf8(s, text)) return;
    send_error(s, r.code, r.message, r.detail, r.id_raw);
    return;
  }
  switch (request->type) {
    case MessageType::ping:
      send_text(s, write_pong(reply_, request->t_raw, request->id_raw));
      return;
    case MessageType::join:
      return handle_join(s, *request);
    case MessageType::leave:
      return handle_leave(s, *request);
    case MessageType::signal:
      return handle_signal(s, request->signal, request->id_raw);
    case MessageType::need_peers:
      return handle_need_peers(s, *request);
    case MessageType::update:
      return handle_update(s, *request);
    case MessageType::stats:
      return handle_stats(s, *request);
  }
}

// ---- drain --------------------------------------------------------------------

void EdgeShard::on_stop_requested() {
  stopping_ = true;
  uint64_t now = reactor_now();
  stop_deadline_ms_ = now + shared_.settings.drain_deadline_ms;
  // The listener stays open while draining: /healthz answers 503 and new
  // upgrades get 503 with Retry-After, so load balancers and players move on.
  // Half-done handshakes would only hold the process up: drop them.
  server_->abort_handshakes(1000);
  if (plain_server_) plain_server_->abort_handshakes(1000);
  // Every peer is told to come back after a random delay within the drain
  // window (so a fleet of players does not reconnect at once), then closed
  // with 1001 at that moment.
  uint32_t window = std::max<uint32_t>(shared_.settings.drain_ms, 1);
  for (uint32_t slot = 0; slot < sessions_.created(); ++slot) {
    PeerSession& s = sessions_[slot];
    if (s.state == PeerState::free) continue;
    uint32_t after_ms = rng_.below(window);
    send_text(s, write_reconnect(reply_, after_ms));
    s.server->schedule_close(s.socket, now + after_ms, ws::close_code::going_away, "edge draining");
  }
}

bool EdgeShard::clients_gone() const {
  const Reactor& reactor = shard_.reactor();
  // Done when no socket is left (health checks come and go between peers'
  // goodbyes) or at the drain deadline. The Valkey client's own sockets do
  // not count: it stays up while peers leave (their presence is removed).
  size_t own = cluster_ ? cluster_->live_sockets() : 0;
  return reactor.live_sockets() <= own || reactor.now_ms() >= stop_deadline_ms_;
}

bool EdgeShard::stopped() const {
  if (!stopping_ || !clients_gone()) return false;
  // A tracker delivery batched in the last turn answers a request: the loop
  // turns once more so that its end sends it.
  if (tracker_deliveries_waiting()) return false;
  // The cluster sync stops its links once the clients are gone.
  return !cluster_ || cluster_->stopped();
}

}  // namespace mf::edge
