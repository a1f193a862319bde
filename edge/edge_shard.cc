#include "edge/edge_shard.h"

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
#include "common/base/log.h"
#include "edge/cluster_keys.h"
#include "edge/operator_page.h"
#include "edge/streams_json.h"

#include <fmt/format.h>

namespace mf::edge {
namespace {

// /api/streams lists at most this many streams (the busiest): the answer
// stays small enough for a page refreshed every second.
constexpr size_t max_api_streams = 1000;

// Keyed (common/base/keyed_hash.h): a client cannot choose ids that all land on
// one shard.
uint64_t hash_text(std::string_view text) { return keyed_hash(text); }

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000 + static_cast<uint64_t>(ts.tv_nsec);
}

Topology topology_from(const TopologyFields& fields) {
  // The parser already bounded every string to the capacity; asn -1 = none.
  auto t = make_topology(fields.region, fields.country, fields.has_asn ? fields.asn : -1, fields.network);
  return t ? *t : Topology{};
}

}  // namespace

EdgeShard::EdgeShard(Shard& shard, const EdgeShared& shared, const Seeds& seeds)
    : tracker_swarms_(seeds.streams ^ 0x9E3779B97F4A7C15ull, shared.settings.tracker),
      valkey_seed_(seeds.valkey),
      shard_(shard),
      running_(shared),
      shared_(running_),
      sessions_(shard.reactor().options().max_sockets),
      streams_(seeds.streams),
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
  self->topology_scratch_.resize(Swarm::max_pick * max_topology_json_bytes);
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
    shard.reactor().add_listener(*admin_fd, self->admin_server_.get());
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
  return static_cast<uint32_t>(hash_text(peer_id) % shard_.count());
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

EdgeShard::PeerSession* EdgeShard::session_at(const PeerLocation& who) {
  if (who.shard != shard_.id() || who.slot >= sessions_.created()) return nullptr;
  PeerSession& s = sessions_[who.slot];
  if (s.state == PeerState::free || s.socket.generation != who.generation || s.socket.slot != who.slot) return nullptr;
  return &s;
}

void EdgeShard::on_message(const ShardMessage& message) { dispatch(message.kind, message.pointer); }

void EdgeShard::dispose(const ShardMessage& m) {
  switch (m.kind) {
    case edge_message::claim_peer: delete static_cast<ClaimPeer*>(m.pointer); return;
    case edge_message::claim_result: delete static_cast<ClaimResultPayload*>(m.pointer); return;
    case edge_message::release_peer:
    case edge_message::replace_connection: delete static_cast<ReleasePeer*>(m.pointer); return;
    case edge_message::enter_swarm: delete static_cast<EnterSwarm*>(m.pointer); return;
    case edge_message::enter_result: delete static_cast<EnterResult*>(m.pointer); return;
    case edge_message::leave_swarm: delete static_cast<LeaveSwarm*>(m.pointer); return;
    case edge_message::pick_peers: delete static_cast<PickPeers*>(m.pointer); return;
    case edge_message::peers_result: delete static_cast<PeersResult*>(m.pointer); return;
    case edge_message::update_member: delete static_cast<UpdateMember*>(m.pointer); return;
    case edge_message::stats_delta: delete static_cast<StatsDelta*>(m.pointer); return;
    case edge_message::route_signal:
    case edge_message::deliver_signal:
    case edge_message::signal_failed: delete static_cast<SignalPacket*>(m.pointer); return;
    case edge_message::signal_packets_returned:
      SignalPacketPool::delete_chain(static_cast<SignalPacket*>(m.pointer));
      return;
    case edge_message::policy_changed: delete static_cast<PolicyChanged*>(m.pointer); return;
    case edge_message::settings_changed: delete static_cast<SettingsChanged*>(m.pointer); return;
    case edge_message::tracker_request:
    case edge_message::tracker_leave: delete static_cast<TrackerPacket*>(m.pointer); return;
    case edge_message::tracker_deliver: delete static_cast<TrackerDelivery*>(m.pointer); return;
    case edge_message::tracker_scrape: delete static_cast<TrackerScrape*>(m.pointer); return;
    case edge_message::metrics_snapshot: delete static_cast<MetricsSnapshot*>(m.pointer); return;
    case edge_message::source_acquire:
    case edge_message::source_verdict:
    case edge_message::source_release: delete static_cast<SourceRequest*>(m.pointer); return;
    default: return;  // runtime kinds and collect_metrics carry nothing
  }
}

void EdgeShard::dispatch(uint16_t kind, void* pointer) {
  switch (kind) {
    case edge_message::claim_peer: return on_claim_peer(std::unique_ptr<ClaimPeer>(static_cast<ClaimPeer*>(pointer)));
    case edge_message::claim_result:
      return on_claim_result(std::unique_ptr<ClaimResultPayload>(static_cast<ClaimResultPayload*>(pointer)));
    case edge_message::release_peer: return on_release_peer(std::unique_ptr<ReleasePeer>(static_cast<ReleasePeer*>(pointer)));
    case edge_message::replace_connection: {
      std::unique_ptr<ReleasePeer> m(static_cast<ReleasePeer*>(pointer));
      return on_replace_connection(m->who);
    }
    case edge_message::enter_swarm: return on_enter_swarm(std::unique_ptr<EnterSwarm>(static_cast<EnterSwarm*>(pointer)));
    case edge_message::enter_result: return on_enter_result(std::unique_ptr<EnterResult>(static_cast<EnterResult*>(pointer)));
    case edge_message::leave_swarm: return on_leave_swarm(std::unique_ptr<LeaveSwarm>(static_cast<LeaveSwarm*>(pointer)));
    case edge_message::pick_peers: return on_pick_peers(std::unique_ptr<PickPeers>(static_cast<PickPeers*>(pointer)));
    case edge_message::peers_result: return on_peers_result(std::unique_ptr<PeersResult>(static_cast<PeersResult*>(pointer)));
    case edge_message::update_member:
      return on_update_member(std::unique_ptr<UpdateMember>(static_cast<UpdateMember*>(pointer)));
    case edge_message::stats_delta: return on_stats_delta(std::unique_ptr<StatsDelta>(static_cast<StatsDelta*>(pointer)));
    case edge_message::route_signal: return on_route_signal(std::unique_ptr<SignalPacket>(static_cast<SignalPacket*>(pointer)));
    case edge_message::deliver_signal:
      return on_deliver_signal(std::unique_ptr<SignalPacket>(static_cast<SignalPacket*>(pointer)));
    case edge_message::signal_failed: return on_signal_failed(std::unique_ptr<SignalPacket>(static_cast<SignalPacket*>(pointer)));
    case edge_message::signal_packets_returned: return signal_pool_.take_home(static_cast<SignalPacket*>(pointer));
    case edge_message::policy_changed:
      return on_policy_changed(std::unique_ptr<PolicyChanged>(static_cast<PolicyChanged*>(pointer)));
    case edge_message::certificates_changed: return on_certificates_changed();
    case edge_message::settings_changed:
      return on_settings_changed(std::unique_ptr<SettingsChanged>(static_cast<SettingsChanged*>(pointer)));
    case edge_message::collect_metrics:
      return on_collect_metrics(reinterpret_cast<uintptr_t>(pointer));
    case edge_message::metrics_snapshot:
      return on_metrics_snapshot(std::unique_ptr<MetricsSnapshot>(static_cast<MetricsSnapshot*>(pointer)));
    case edge_message::source_acquire:
      return on_source_acquire(std::unique_ptr<SourceRequest>(static_cast<SourceRequest*>(pointer)));
    case edge_message::source_verdict:
      return on_source_verdict(std::unique_ptr<SourceRequest>(static_cast<SourceRequest*>(pointer)));
    case edge_message::source_release:
      return on_source_release(std::unique_ptr<SourceRequest>(static_cast<SourceRequest*>(pointer)));
    case edge_message::tracker_request:
      return on_tracker_request(std::unique_ptr<TrackerPacket>(static_cast<TrackerPacket*>(pointer)));
    case edge_message::tracker_deliver:
      return on_tracker_deliver(std::unique_ptr<TrackerDelivery>(static_cast<TrackerDelivery*>(pointer)));
    case edge_message::tracker_leave:
      return on_tracker_leave(std::unique_ptr<TrackerPacket>(static_cast<TrackerPacket*>(pointer)));
    case edge_message::tracker_scrape:
      return on_tracker_scrape(std::unique_ptr<TrackerScrape>(static_cast<TrackerScrape*>(pointer)));
    default:
      MF_LOG_ERROR("shard {}: unknown shard message kind {}", shard_.id(), kind);
      std::abort();
  }
}

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
  return Admission{};
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
  SourceAdmission::Start start = sources_.acquire(s.source, connection.slot, connection.generation, shared_.per_source, reactor_now());
  switch (start.step) {
    case SourceAdmission::Step::admitted:
      s.source_acquired = true;
      return SourceGate::admit;
    case SourceAdmission::Step::refused:
      counters_.rejected_per_source++;
      refusal = per_source_refusal(start.verdict);
      return SourceGate::refuse;
    case SourceAdmission::Step::pending:
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
  s.stream_id.clear();
  s.rendition.clear();
  s.session.clear();
  s.stats_credit.start(now);
  s.proposals_received = 0;
  s.held_claim = {};
  s.in_swarm = false;
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

void EdgeShard::on_client_message(SocketHandle connection, std::string_view text) {
  PeerSession& s = sessions_[connection.slot];
  if (s.state == PeerState::free || s.socket != connection) return;
  // The WebSocket limit is the larger of the two paths' (create()): each
  // path's own is enforced here, with the same close code.
  if (text.size() > (s.tracker ? shared_.settings.tracker_max_message_bytes : shared_.settings.max_message_bytes)) {
    counters_.tracker.oversized_closed++;
    s.server->close(s.socket, ws::close_code::message_too_big, "message too big");
    return;
  }
  if (s.tracker) return on_tracker_message(s, text);
  uint64_t now = reactor_now();
  if (!s.bucket.take(shared_.settings.messages_per_second, shared_.settings.message_burst, now)) {
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
  auto request = parser_.parse(text);
  if (!request) {
    const SdkRejection& r = request.error();
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
      return handle_signal(s, *request);
    case MessageType::need_peers:
      return handle_need_peers(s, *request);
    case MessageType::update:
      return handle_update(s, *request);
    case MessageType::stats:
      return handle_stats(s, *request);
  }
}

// ---- join ---------------------------------------------------------------------

void EdgeShard::handle_join(PeerSession& s, const SdkRequest& r) {
  if (s.state == PeerState::joining)
    return send_error(s, SdkErrorCode::bad_request, "join: a join is already in progress", {}, r.id_raw);
  if (s.state == PeerState::joined && r.peer_id != s.peer_id)
    return send_error(s, SdkErrorCode::bad_request, "peerId: a joined connection keeps its peerId", {}, r.id_raw);
  if (s.claims && !s.claims->covers(r.stream_id))
    return send_error(s, SdkErrorCode::bad_request, "streamId: not allowed by the token", {}, r.id_raw);
  if (s.state != PeerState::joined && (s.held_claim.held || s.in_swarm)) {
    // Only a joined connection holds anything between joins: a path that
    // forgot to give something back. Say so, and give it back now.
    counters_.obligation_anomalies++;
    MF_LOG_WARN("shard {}: connection {}:{} joins while holding a claim ({}) or a swarm seat ({})", shard_.id(),
                s.socket.slot, s.socket.generation, s.held_claim.held, s.in_swarm);
    give_up(s);
  }
  PeerSession::PendingJoin& p = s.pending;
  p.peer_id.assign(r.peer_id);
  p.stream_id.assign(r.stream_id);
  p.rendition.assign(r.rendition);
  p.ref_raw.assign(r.id_raw);
  p.switching = s.state == PeerState::joined;
  p.old_stream_id = p.switching ? s.stream_id : std::string();
  // A switch keeps what the peer declared unless the join declares it anew.
  p.topology = r.topology.present ? topology_from(r.topology) : (p.switching ? s.topology : Topology{});
  p.accepting_peers = r.caps.has_accepting_peers ? r.caps.accepting_peers : (p.switching ? s.accepting_peers : true);
  p.caps_max_peers = r.caps.has_max_peers ? r.caps.max_peers : (p.switching ? s.caps_max_peers : UINT32_MAX);
  p.policy = policy_->effective(r.stream_id);
  p.started_ns = monotonic_ns();
  s.state = PeerState::joining;
  uint32_t sequence = ++s.join_sequence;

  auto claim = std::make_unique<ClaimPeer>();
  claim->peer_id = p.peer_id;
  claim->stream_id = p.stream_id;
  claim->rendition = p.rendition;
  claim->has_offered_session = r.has_session;
  claim->offered_session.assign(r.session);
  std::optional<std::string> session = fresh_session();
  if (!session) {
    // Fail closed: no identity without a secret nobody can guess.
    counters_.sessions_refused++;
    MF_LOG_ERROR("shard {}: no cryptographic randomness for a session: join refused, connection closed", shard_.id());
    s.state = p.switching ? PeerState::joined : PeerState::connected;
    s.server->close(s.socket, ws::close_code::internal_error, "no session randomness");
    return;
  }
  claim->fresh_session = std::move(*session);
  claim->who = location_of(s);
  claim->join_sequence = sequence;
  if (!send_to_shard(directory_shard(p.peer_id), edge_message::claim_peer, std::move(claim))) {
    s.server->close(s.socket, ws::close_code::internal_error, "edge busy");
  }
}

void EdgeShard::on_claim_peer(std::unique_ptr<ClaimPeer> m) {
  std::optional<std::string_view> offered;
  if (m->has_offered_session) offered = m->offered_session;
  ClaimResult result = directory_.claim(m->peer_id, m->who, m->join_sequence, m->stream_id, offered, m->fresh_session);
  // In a cluster the owner key in Valkey decides too (another edge may hold
  // the peerId); a peerId held here without the session is refused at once.
  if (result.outcome != ClaimOutcome::taken && cluster_ready()) {
    return cluster_claim(ClusterClaim{std::move(m), result.outcome, std::string(result.session), result.replaced, {}});
  }
  finish_claim(std::move(m), result.outcome, result.session, result.replaced);
}

void EdgeShard::finish_claim(std::unique_ptr<ClaimPeer> m, ClaimOutcome outcome, std::string_view session,
                             const PeerLocation& replaced) {
  if (outcome == ClaimOutcome::taken_over) {
    counters_.takeovers++;
    if (replaced.slot != UINT32_MAX) send_replace(m->peer_id, replaced);
  }
  auto reply = std::make_unique<ClaimResultPayload>();
  reply->outcome = outcome;
  reply->session.assign(session);
  reply->who = m->who;
  reply->join_sequence = m->join_sequence;
  reply->peer_id = std::move(m->peer_id);
  reply->stream_id = std::move(m->stream_id);
  reply->rendition = std::move(m->rendition);
  send_obligation(m->who.shard, edge_message::claim_result, std::move(reply));
}

void EdgeShard::send_replace(std::string_view peer_id, const PeerLocation& who) {
  auto replace = std::make_unique<ReleasePeer>();
  replace->peer_id.assign(peer_id);
  replace->who = who;
  send_obligation(who.shard, edge_message::replace_connection, std::move(replace));
}

void EdgeShard::on_replace_connection(const PeerLocation& who) {
  PeerSession* s = session_at(who);
  if (s == nullptr) return;
  // The new holder owns the identity now: this connection must not release
  // it or its swarm membership on the way out (both checks are by location).
  s->server->close(s->socket, close_code::replaced, "replaced by a newer connection");
}

void EdgeShard::on_claim_result(std::unique_ptr<ClaimResultPayload> m) {
  PeerSession* s = session_at(m->who);
  bool current = s != nullptr && s->state == PeerState::joining && s->join_sequence == m->join_sequence;
  if (!current) {
    // The connection left or closed meanwhile: nobody else knows of this
    // grant, so its reply gives the identity back (that claim only).
    if (m->outcome != ClaimOutcome::taken) {
      counters_.late_grants_undone++;
      send_release(m->peer_id, m->who, m->join_sequence);
      if (cluster_)
        cluster_release_owner(m->peer_id, m->who, m->stream_id, m->rendition, cluster::session_digest(m->session));
    }
    return;
  }
  PeerSession::PendingJoin& p = s->pending;
  if (m->outcome == ClaimOutcome::taken) {
    s->state = p.switching ? PeerState::joined : PeerState::connected;
    return send_error(*s, SdkErrorCode::peer_id_taken, "peerId is held by another connection", {}, p.ref_raw);
  }
  s->session = std::move(m->session);
  if (cluster_) s->session_digest = cluster::session_digest(s->session);
  // The connection owns this claim now; a switch's claim supersedes the old
  // one (the same directory entry and owner key, now named by this join).
  s->held_claim.held = true;
  s->held_claim.sequence = m->join_sequence;
  s->held_claim.peer_id = p.peer_id;
  s->held_claim.stream_id = p.stream_id;
  s->held_claim.rendition = p.rendition;
  // Leave the old swarm before entering the new one; the client sees the
  // switch as one step (`joined` comes after both).
  if (p.switching) leave_swarm_held(*s);
  auto enter = std::make_unique<EnterSwarm>();
  enter->stream_id = p.stream_id;
  enter->rendition = p.rendition;
  enter->member.peer_id.assign(p.peer_id);
  enter->member.topology = p.topology;
  enter->member.location = member_location_of(*s, m->join_sequence);
  enter->member.accepting_peers = p.accepting_peers;
  enter->max_viewers = p.policy.max_viewers;
  enter->initial_peers = p.policy.mesh_enabled ? effective_max_peers(p.policy, p.caps_max_peers) : 0;
  enter->mesh_enabled = p.policy.mesh_enabled;
  enter->who = m->who;
  enter->join_sequence = m->join_sequence;
  if (enter->max_viewers != 0 && cluster_ready()) return cluster_admit(*s, std::move(enter));
  send_enter(s, std::move(enter));
}

void EdgeShard::send_enter(PeerSession* s, std::unique_ptr<EnterSwarm> enter) {
  uint32_t to = stream_shard(enter->stream_id);
  if (!send_to_shard(to, edge_message::enter_swarm, std::move(enter)) && s != nullptr)
    s->server->close(s->socket, ws::close_code::internal_error, "edge busy");
}

void EdgeShard::on_release_peer(std::unique_ptr<ReleasePeer> m) { directory_.release(m->peer_id, m->who, m->sequence); }

void EdgeShard::on_enter_swarm(std::unique_ptr<EnterSwarm> m) {
  EnterOutcome outcome = streams_.enter(m->stream_id, m->rendition, m->member, m->max_viewers);
  auto reply = std::make_unique<EnterResult>();
  reply->who = m->who;
  reply->join_sequence = m->join_sequence;
  reply->stream_id = m->stream_id;
  reply->peer_id.assign(m->member.peer_id.view());
  reply->full = outcome == EnterOutcome::full;
  if (!reply->full && m->mesh_enabled) {
    PickRequest request;
    request.requester = m->member.peer_id.view();
    request.requester_topology = m->member.topology;
    request.count = std::min<uint32_t>(m->initial_peers, Swarm::max_pick);
    request.now_ms = reactor_now();
    reply->candidates = pick_candidates(m->stream_id, m->rendition, request);
    reply->wanted = request.count;
  }
  send_obligation(m->who.shard, edge_message::enter_result, std::move(reply));
}

void EdgeShard::on_enter_result(std::unique_ptr<EnterResult> m) {
  PeerSession* s = session_at(m->who);
  bool current = s != nullptr && s->state == PeerState::joining && s->join_sequence == m->join_sequence;
  if (!current) {
    // The join was abandoned while the enter was in flight: this reply is
    // the only one that knows of the seat, it gives it back.
    if (!m->full) {
      counters_.late_grants_undone++;
      send_leave_swarm(m->stream_id, m->peer_id,
                       MemberLocation{0, m->who.shard, m->who.slot, m->who.generation, m->join_sequence});
    }
    return;
  }
  PeerSession::PendingJoin& p = s->pending;
  if (m->full) {
    // Not joined anywhere now (a switch already left its old swarm): give
    // the identity back so it can join again later.
    release_claim_held(*s);
    s->join_sequence++;
    s->state = PeerState::connected;
    return send_error(*s, SdkErrorCode::stream_full, "stream is full", {}, p.ref_raw, {},
                      shared_.settings.stream_full_retry_ms);
  }
  count_member_joined(p.stream_id);
  s->in_swarm = true;
  s->member_sequence = m->join_sequence;
  s->state = PeerState::joined;
  s->peer_id = p.peer_id;
  s->stream_id = p.stream_id;
  s->rendition = p.rendition;
  s->topology = p.topology;
  s->accepting_peers = p.accepting_peers;
  s->caps_max_peers = p.caps_max_peers;
  s->policy = p.policy;
  s->stats_credit.start(reactor_now());
  s->proposals_received = 0;
  counters_.joins++;
  char policy_json[max_policy_json_bytes];
  size_t policy_len = write_policy_json(policy_json, s->policy);
  JoinedReply joined{s->peer_id, s->stream_id, s->rendition, shared_.settings.edge_id, s->session,
                     shared_.settings.heartbeat_ms, std::string_view(policy_json, policy_len), p.ref_raw};
  send_text(*s, write_joined(reply_, joined));
  cluster_register(*s);
  if (s->policy.mesh_enabled)
    deliver_peers(*s, std::move(m->candidates), m->wanted, {}, {}, p.started_ns);
  else
    join_to_peers_.record(static_cast<double>(monotonic_ns() - p.started_ns) / 1e9);
}

void EdgeShard::send_leave_swarm(std::string_view stream_id, std::string_view peer_id, const MemberLocation& where) {
  auto leave = std::make_unique<LeaveSwarm>();
  leave->stream_id.assign(stream_id);
  leave->peer_id.assign(peer_id);
  leave->where = where;
  send_obligation(stream_shard(stream_id), edge_message::leave_swarm, std::move(leave));
}

void EdgeShard::send_release(std::string_view peer_id, const PeerLocation& who, uint32_t sequence) {
  auto release = std::make_unique<ReleasePeer>();
  release->peer_id.assign(peer_id);
  release->who = who;
  release->sequence = sequence;
  send_obligation(directory_shard(peer_id), edge_message::release_peer, std::move(release));
}

void EdgeShard::leave_swarm_held(PeerSession& s) {
  if (!s.in_swarm) return;
  s.in_swarm = false;
  cluster_unregister(s);
  send_leave_swarm(s.stream_id, s.peer_id, member_location_of(s, s.member_sequence));
  count_member_left(s.stream_id);
}

void EdgeShard::release_claim_held(PeerSession& s) {
  if (!s.held_claim.held) return;
  PeerSession::HeldClaim& c = s.held_claim;
  c.held = false;
  send_release(c.peer_id, location_of(s), c.sequence);
  if (cluster_) cluster_release_owner(c.peer_id, location_of(s), c.stream_id, c.rendition, s.session_digest);
}

void EdgeShard::give_up(PeerSession& s) {
  if (s.in_swarm) counters_.leaves++;
  leave_swarm_held(s);
  release_claim_held(s);
  // A claim or enter still in flight finds the sequence moved: its reply
  // gives back what it granted.
  s.join_sequence++;
}

void EdgeShard::count_member_joined(std::string_view stream_id) {
  peers_joined_++;
  signal_counts_.joined(stream_id);
}

void EdgeShard::count_member_left(std::string_view stream_id) {
  peers_joined_--;
  signal_counts_.left(stream_id);
}

void EdgeShard::on_leave_swarm(std::unique_ptr<LeaveSwarm> m) { streams_.leave(m->stream_id, m->peer_id, m->where); }

void EdgeShard::handle_leave(PeerSession& s, const SdkRequest& r) {
  if (s.state == PeerState::joined || s.state == PeerState::joining) {
    give_up(s);
    s.state = PeerState::connected;
  }
  send_text(s, write_left(reply_, r.id_raw));
}

// ---- signal -------------------------------------------------------------------

void EdgeShard::handle_signal(PeerSession& s, const SdkRequest& r) {
  if (s.state != PeerState::joined) return send_error(s, SdkErrorCode::not_joined, "signal before join", {}, r.id_raw);
  if (!s.policy.mesh_enabled)
    return send_error(s, SdkErrorCode::mesh_disabled, "the mesh is disabled for this stream", {}, r.id_raw, r.to);
  std::unique_ptr<SignalPacket> packet = signal_pool_.acquire();
  packet->to.assign(r.to);
  packet->sender_stream.assign(s.stream_id);
  packet->ref_raw.assign(r.id_raw);
  // Rendered once, into the string that travels to the target's shard and
  // is sent from there as it is. Escaping makes `from` at most 6 times
  // longer; the envelope is under 64 bytes.
  const size_t bound = 64 + 6 * s.peer_id.size() + r.data_raw.size();
  SignalPacketPool::reserve_text(*packet, bound);
  packet->text.resize_and_overwrite(bound, [&](char* out, size_t size) {
    return write_signal(std::span<char>(out, size), s.peer_id, r.kind, r.data_raw).size();
  });
  packet->sender = location_of(s);
  if (!send_to_shard(directory_shard(r.to), edge_message::route_signal, std::move(packet))) {
    counters_.signals_dropped++;
    send_error(s, SdkErrorCode::rate_limited, "signal dropped: edge busy", {}, r.id_raw, r.to);
  }
}

void EdgeShard::on_route_signal(std::unique_ptr<SignalPacket> m) {
  const DirectoryEntry* entry = directory_.find(m->to);
  // Not on this edge: maybe on another one of the cluster. A signal that
  // missed at a cached place of another edge is settled there too, even if
  // the peer is on this edge now (docs/cluster.md, "The peer-location cache").
  if ((entry == nullptr || m->relookup) && cluster_) return cluster_route_signal(std::move(m));
  // The same-stream guard: a peer of another stream is indistinguishable
  // from an absent one (the edge does not reveal it exists).
  if (entry == nullptr || entry->stream_id != m->sender_stream) {
    uint32_t back = m->sender.shard;
    send_obligation(back, edge_message::signal_failed, std::move(m));
    return;
  }
  m->target = entry->location;
  uint32_t target_shard = entry->location.shard;
  if (!send_to_shard(target_shard, edge_message::deliver_signal, std::move(m))) counters_.signals_dropped++;
}

void EdgeShard::on_deliver_signal(std::unique_ptr<SignalPacket> m) {
  PeerSession* target = session_at(m->target);
  if (target == nullptr || target->state != PeerState::joined || target->peer_id != m->to ||
      target->stream_id != m->sender_stream) {
    uint32_t back = m->sender.shard;
    send_obligation(back, edge_message::signal_failed, std::move(m));
    return;
  }
  counters_.signals_relayed++;
  signal_counts_.delivered(target->stream_id);
  send_text(*target, m->text);
  recycle_signal(std::move(m));
}

void EdgeShard::on_signal_failed(std::unique_ptr<SignalPacket> m) {
  signal_not_found(m->sender, m->to, m->ref_raw);
  recycle_signal(std::move(m));
}

void EdgeShard::recycle_signal(std::unique_ptr<SignalPacket> m) {
  SignalPacket* full = signal_pool_.release(std::move(m));
  if (full != nullptr)
    send_obligation(full->home_shard, edge_message::signal_packets_returned, std::unique_ptr<SignalPacket>(full));
  // A batch begun is owed home: the timer runs once for it.
  if (signal_pool_.pending_batches() > 0) shard_.reactor().schedule_deferred(signal_return_task_);
}

void EdgeShard::flush_signal_returns() {
  counters_.signal_return_timer_runs++;
  signal_pool_.flush([this](uint32_t home, SignalPacket* chain) {
    send_obligation(home, edge_message::signal_packets_returned, std::unique_ptr<SignalPacket>(chain));
  });
}

void EdgeShard::signal_not_found(const PeerLocation& sender_location, std::string_view to, std::string_view ref_raw) {
  PeerSession* sender = session_at(sender_location);
  counters_.signals_failed++;
  if (sender == nullptr) return;
  send_error(*sender, SdkErrorCode::peer_not_found, "peer not found in this stream", {}, ref_raw, to);
}

// ---- need-peers, update, stats ------------------------------------------------

void EdgeShard::handle_need_peers(PeerSession& s, const SdkRequest& r) {
  if (s.state != PeerState::joined) return send_error(s, SdkErrorCode::not_joined, "need-peers before join", {}, r.id_raw);
  if (!s.policy.mesh_enabled) return send_error(s, SdkErrorCode::mesh_disabled, "the mesh is disabled for this stream", {}, r.id_raw);
  uint32_t limit = effective_max_peers(s.policy, s.caps_max_peers);
  auto pick = std::make_unique<PickPeers>();
  pick->stream_id = s.stream_id;
  pick->rendition = s.rendition;
  pick->requester = s.peer_id;
  pick->ref_raw.assign(r.id_raw);
  pick->topology = s.topology;
  pick->count = r.has_count ? std::min(r.count, limit) : limit;
  pick->exclude.reserve(r.exclude_count);
  for (uint8_t i = 0; i < r.exclude_count; ++i) pick->exclude.emplace_back(r.exclude[i]);
  pick->who = location_of(s);
  if (!send_to_shard(stream_shard(s.stream_id), edge_message::pick_peers, std::move(pick)))
    send_error(s, SdkErrorCode::rate_limited, "need-peers dropped: edge busy", {}, r.id_raw);
}

void EdgeShard::on_pick_peers(std::unique_ptr<PickPeers> m) {
  std::string_view exclude[Swarm::max_exclude];
  size_t exclude_count = std::min(m->exclude.size(), Swarm::max_exclude);
  for (size_t i = 0; i < exclude_count; ++i) exclude[i] = m->exclude[i];
  PickRequest request;
  request.requester = m->requester;
  request.requester_topology = m->topology;
  request.count = m->count;
  request.exclude = std::span<const std::string_view>(exclude, exclude_count);
  request.now_ms = reactor_now();
  auto reply = std::make_unique<PeersResult>();
  reply->candidates = pick_candidates(m->stream_id, m->rendition, request);
  reply->wanted = m->count;
  reply->ref_raw = std::move(m->ref_raw);
  reply->exclude = std::move(m->exclude);
  reply->who = m->who;
  send_obligation(m->who.shard, edge_message::peers_result, std::move(reply));
}

CandidateList EdgeShard::pick_candidates(std::string_view stream_id, std::string_view rendition,
                                         const PickRequest& request) {
  PickedPeer picked[Swarm::max_pick];
  size_t n = request.count == 0 ? 0 : streams_.pick(stream_id, rendition, request, picked, topology_scratch_);
  CandidateList list;
  for (size_t i = 0; i < n; ++i) list.add(picked[i].peer_id, picked[i].rendition, picked[i].topology_json);
  return list;
}

void EdgeShard::send_peers(PeerSession& s, const CandidateList& local, const CandidateList& remote,
                           std::string_view ref_raw, uint64_t started_ns) {
  PeerCandidate candidates[Swarm::max_pick];
  size_t n = 0;
  auto take = [&](std::string_view peer_id, std::string_view rendition, std::string_view topology_json) {
    if (n < Swarm::max_pick) candidates[n++] = PeerCandidate{peer_id, rendition, topology_json};
  };
  local.for_each(take);
  remote.for_each(take);
  counters_.proposals += n;
  s.proposals_received += n;
  cluster_counters_.remote_proposals += std::min<size_t>(remote.count, n - std::min<size_t>(n, local.count));
  send_text(s, write_peers(reply_, std::span<const PeerCandidate>(candidates, n), ref_raw));
  if (started_ns != 0) join_to_peers_.record(static_cast<double>(monotonic_ns() - started_ns) / 1e9);
}

void EdgeShard::on_peers_result(std::unique_ptr<PeersResult> m) {
  PeerSession* s = session_at(m->who);
  if (s == nullptr || s->state != PeerState::joined) return;
  deliver_peers(*s, std::move(m->candidates), m->wanted, std::move(m->exclude), m->ref_raw, 0);
}

void EdgeShard::handle_update(PeerSession& s, const SdkRequest& r) {
  if (s.state != PeerState::joined) return send_error(s, SdkErrorCode::not_joined, "update before join", {}, r.id_raw);
  if (r.topology.present) s.topology = topology_from(r.topology);
  if (r.caps.has_accepting_peers) s.accepting_peers = r.caps.accepting_peers;
  if (r.caps.has_max_peers) s.caps_max_peers = r.caps.max_peers;
  cluster_register(s);
  auto update = std::make_unique<UpdateMember>();
  update->stream_id = s.stream_id;
  update->peer_id = s.peer_id;
  update->where = member_location_of(s, s.member_sequence);
  update->topology = s.topology;
  update->accepting_peers = s.accepting_peers;
  send_obligation(stream_shard(s.stream_id), edge_message::update_member, std::move(update));
}

void EdgeShard::on_update_member(std::unique_ptr<UpdateMember> m) {
  streams_.update(m->stream_id, m->peer_id, m->where, m->topology, m->accepting_peers);
}

void EdgeShard::handle_stats(PeerSession& s, const SdkRequest& r) {
  if (s.state != PeerState::joined) return send_error(s, SdkErrorCode::not_joined, "stats before join", {}, r.id_raw);
  // Cumulative since join, credited within what is plausible for the time
  // joined (edge/stats_credit.h, docs/protocol.md).
  auto field = [](bool has, uint64_t value) { return has ? std::optional<uint64_t>(value) : std::nullopt; };
  ReportedStats report{field(r.has_p2p_bytes, r.p2p_bytes), field(r.has_cdn_bytes, r.cdn_bytes),
                       field(r.has_uploaded_bytes, r.uploaded_bytes),
                       field(r.has_connected_proposals, r.connected_proposals)};
  bool clamped = false;
  StreamStats delta = s.stats_credit.credit(report, reactor_now(), s.proposals_received, clamped);
  if (clamped) counters_.stats_clamped++;
  if (delta.p2p_bytes == 0 && delta.cdn_bytes == 0 && delta.uploaded_bytes == 0 && delta.connected_proposals == 0) return;
  auto message = std::make_unique<StatsDelta>();
  message->stream_id = s.stream_id;
  message->delta = delta;
  send_obligation(stream_shard(s.stream_id), edge_message::stats_delta, std::move(message));
}

void EdgeShard::on_stats_delta(std::unique_ptr<StatsDelta> m) {
  streams_.add_stats(m->stream_id, m->delta);
  counters_.offload.add(m->delta);  // never decreases: streams that ended still count
}

// ---- policy -------------------------------------------------------------------

void EdgeShard::on_reload() {
  if (shard_.id() != 0 || stopping_) return;
  reload_settings();  // edge/edge_shard_reload.cc
  load_policy_file();
}

// ---- certificates ---------------------------------------------------------------

void EdgeShard::check_certificate_files(bool forced) {
  if (stopping_) return;
  // Stats two local files and, when they changed, reads and parses them
  // here: the same accepted exception to "no blocking call on a shard
  // thread" as the policy file (rare, tiny, control plane).
  if (certificate_files_->check() == WatchedFiles::Step::nothing && !forced) return;
  auto context = tls::Context::make_server(shared_.tls);
  WatchedFiles::Verdict verdict = certificate_files_->attempted(context.has_value());
  if (verdict == WatchedFiles::Verdict::waiting && !forced) {
    MF_LOG_DEBUG("certificate files changed but do not load yet (retried at the next check): {}", context.error());
    return;
  }
  if (!context) {
    counters_.certificate_reloads_failed++;
    MF_LOG_ERROR("certificate reload refused, the previous certificate stays: {}", context.error());
    return;
  }
  counters_.certificate_reloads_ok++;
  // In place: the servers hold a pointer to it. Sessions already started
  // hold their SSL_CTX (reference counted by OpenSSL): none is dropped.
  *tls_ = std::move(*context);
  for (uint32_t to = 1; to < shard_.count(); ++to) {
    ShardMessage message;
    message.kind = edge_message::certificates_changed;
    shard_.post_obligation(to, message);  // a shard that missed it would serve the old certificate
  }
  for (const tls::ServedCertificate& served : tls_->served())
    MF_LOG_NOTICE("certificate reloaded: {} (valid until unix {})", served.certificate_chain_path, served.not_after_s);
}

void EdgeShard::on_certificates_changed() {
  if (!tls_) return;
  auto context = tls::Context::make_server(shared_.tls);
  if (!context) {
    // Shard 0 loaded the same files a moment ago: they changed since, and
    // its next check sends them again once they load.
    MF_LOG_ERROR("shard {}: certificate reload: {} (keeping the previous certificate)", shard_.id(), context.error());
    return;
  }
  *tls_ = std::move(*context);
}

void EdgeShard::load_policy_file() {
  if (!policy_files_) return;
  const std::string& path = shared_.settings.policy_file;
  // Shard 0 reads the (small, local) policy file itself on SIGHUP or when
  // it changed (common/config/watched_files.h, as the certificates): a breach of
  // "no blocking call on a shard thread" accepted because it is rare, tiny
  // and on the control plane. A file caught half-written is read again at
  // the next check; one that stays invalid is logged once.
  if (policy_files_->check() == WatchedFiles::Step::nothing) return;
  std::expected<PolicyDocument, std::string> document = std::unexpected("cannot read the file");
  std::ifstream in(path, std::ios::binary);
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    document = PolicyDocument::parse(text.str());
  }
  switch (policy_files_->attempted(document.has_value())) {
    case WatchedFiles::Verdict::waiting:
      MF_LOG_DEBUG("policy: {}: {} (read again at the next check)", path, document.error());
      return;
    case WatchedFiles::Verdict::refused:
      MF_LOG_ERROR("policy: {}: {} (keeping the current policy)", path, document.error());
      return;
    case WatchedFiles::Verdict::accepted:
      break;
  }
  policy_from_file_ = std::make_shared<const PolicyDocument>(std::move(*document));
  if (policy_from_valkey_) {
    MF_LOG_NOTICE("policy: loaded {} (not applied: the policy in Valkey wins while its key exists)", path);
    return;
  }
  MF_LOG_NOTICE("policy: loaded {}", path);
  apply_policy_sources();
}

void EdgeShard::apply_policy_sources() {
  std::shared_ptr<const PolicyDocument> document = policy_from_valkey_ ? policy_from_valkey_ : policy_from_file_;
  if (!document) document = shared_.initial_policy;
  if (document == policy_) return;
  broadcast_policy(std::move(document));
}

void EdgeShard::broadcast_policy(std::shared_ptr<const PolicyDocument> document) {
  for (uint32_t to = 0; to < shard_.count(); ++to) {
    auto change = std::make_unique<PolicyChanged>();
    change->document = document;
    send_obligation(to, edge_message::policy_changed, std::move(change));
  }
}

void EdgeShard::on_policy_changed(std::unique_ptr<PolicyChanged> m) {
  policy_ = m->document;
  char policy_json[max_policy_json_bytes];
  for (uint32_t slot = 0; slot < sessions_.created(); ++slot) {
    PeerSession& s = sessions_[slot];
    if (s.state == PeerState::joining) s.pending.policy = policy_->effective(s.pending.stream_id);
    if (s.state != PeerState::joined) continue;
    Policy now = policy_->effective(s.stream_id);
    if (now == s.policy) continue;
    s.policy = now;
    counters_.policy_pushes++;
    size_t len = write_policy_json(policy_json, now);
    send_text(s, write_policy(reply_, std::string_view(policy_json, len)));
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
  // cluster_tick() stops the Valkey client once the clients are gone.
  return !cluster_ || cluster_->stopped();
}

// ---- admin and metrics ---------------------------------------------------------

bool EdgeShard::AdminApp::on_http_request(SocketHandle connection, const http::RequestHead& head) {
  if (auto refused = edge_.admin_guard_->check_request(head)) {
    edge_.admin_server_->respond(connection, http::format_document_response(refused->status, "text/plain",
                                                                            refused->body, false,
                                                                            refused->extra_headers));
    return true;
  }
  if (head.method != "GET" && head.method != "HEAD") return false;
  bool head_only = head.method == "HEAD";
  if (head.path == "/metrics") {
    edge_.start_metrics_collection(connection, CollectionKind::metrics, head_only);
    return true;
  }
  if (head.path == "/api/streams") {
    edge_.start_metrics_collection(connection, CollectionKind::streams, head_only);
    return true;
  }
  if (head.path == "/api/cluster") {
    edge_.start_metrics_collection(connection, CollectionKind::cluster, head_only);
    return true;
  }
  if (head.path == "/api/history") {
    std::string body = format_history_json(*edge_.history_, edge_.shared_.settings.edge_id, edge_.reactor_now(),
                                           edge_.shared_.settings.history_period_ms,
                                           edge_.admin_server_->max_response_bytes() - max_response_head_bytes);
    edge_.admin_server_->respond(connection, http::format_document_response(200, "application/json", body, head_only));
    return true;
  }
  if (head.path == "/") {
    // Static: the page fetches /api/streams itself, once a second.
    static const std::string page = http::format_document_response(200, "text/html; charset=utf-8", operator_page_html());
    static const std::string page_head =
        http::format_document_response(200, "text/html; charset=utf-8", operator_page_html(), true);
    edge_.admin_server_->respond(connection, head_only ? page_head : page);
    return true;
  }
  return false;
}

void EdgeShard::start_metrics_collection(SocketHandle waiter, CollectionKind kind, bool head_only) {
  const uint64_t allocations = heap_allocations();  // before this collection allocates
  if (!collection_.add_waiter({waiter, kind, head_only})) return;  // a collection is under way: share it
  uint64_t round = collection_.round();
  collection_heap_allocations_ = allocations;
  for (uint32_t to = 0; to < shard_.count(); ++to) {
    if (to == shard_.id()) {
      on_collect_metrics(round);
      continue;
    }
    ShardMessage message;
    message.kind = edge_message::collect_metrics;
    // The round number rides in the pointer field: this kind owns nothing.
    message.pointer = reinterpret_cast<void*>(static_cast<uintptr_t>(round));
    if (!shard_.post(to, message)) {
      // Without that shard's part the numbers would be wrong: say so.
      counters_.mailbox_drops++;
      for (const auto& w : collection_.take_waiters())
        if (w.connection.valid()) admin_server_->respond(w.connection, http::format_document_response(503, "text/plain", "busy\n", w.head_only));
      return;
    }
  }
}

void EdgeShard::on_collect_metrics(uint64_t round) {
  auto snapshot = std::make_unique<MetricsSnapshot>();
  snapshot->round = round;
  snapshot->edge = counters_;
  snapshot->edge.mailbox_drops += shard_.mailbox_drops();
  snapshot->edge.obligations_deferred = shard_.obligations_deferred();
  snapshot->edge.signal_packets_batched = signal_pool_.batched();
  snapshot->edge.signal_packets_returned = signal_pool_.returned();
  snapshot->obligations_waiting = shard_.obligations_waiting();
  snapshot->websocket = server_->counters();
  snapshot->connections = server_->open_websockets();
  if (plain_server_) {
    snapshot->websocket += plain_server_->counters();
    snapshot->connections += plain_server_->open_websockets();
  }
  // The admin listener's own traffic stays out of the client counters;
  // only a response it could not send is reported.
  if (admin_server_) snapshot->websocket.responses_refused += admin_server_->counters().responses_refused;
  snapshot->peers_joined = peers_joined_;
  snapshot->peer_claims = directory_.size();
  snapshot->source_open = sources_.limiter().open_total();
  snapshot->shard = shard_.id();
  snapshot->descriptors_used = shard_.reactor().live_sockets();
  snapshot->descriptor_slots = shard_.reactor().options().max_sockets;
  snapshot->socket_sends = shard_.reactor().counters().sends;
  snapshot->socket_send_buffers = shard_.reactor().counters().send_buffers;
  snapshot->socket_short_sends = shard_.reactor().counters().short_sends;
  if (shard_.id() == 0 && tls_) snapshot->served = tls_->served();
  snapshot->join_to_peers = join_to_peers_;
  snapshot->tracker_swarms = tracker_swarms_.totals();
  snapshot->draining = stopping_;
  if (shard_.id() == 0) snapshot->heap_allocations = collection_heap_allocations_;
  if (cluster_) {
    snapshot->cluster_configured = true;
    snapshot->valkey_up = cluster_ready();
    snapshot->live_edges = static_cast<uint32_t>(live_edges_.size());
    snapshot->cluster = cluster_counters_;
    snapshot->valkey = cluster_->counters();
  }
  streams_.summarize(snapshot->streams);
  signal_counts_.append_to(snapshot->signals);
  send_obligation(0, edge_message::metrics_snapshot, std::move(snapshot));
}

void EdgeShard::on_metrics_snapshot(std::unique_ptr<MetricsSnapshot> m) {
  uint64_t round = m->round;
  if (!collection_.add_part(std::move(m), round, shard_.count())) return;
  auto parts = collection_.take_parts();
  // Each format is rendered once, for every request waiting for it.
  std::string metrics, streams;
  for (const auto& w : collection_.take_waiters()) {
    switch (w.kind) {
      case CollectionKind::history: {
        if (history_) history_->record(history_totals(parts, reactor_now()));
        continue;
      }
      case CollectionKind::summary:
        cluster_publish_summary(format_edge_summary(parts, shared_.settings.edge_id, cluster_valkey_state()));
        continue;
      case CollectionKind::cluster:
        cluster_answer(w.connection, w.head_only,
                       format_edge_summary(parts, shared_.settings.edge_id, cluster_valkey_state()));
        continue;
      case CollectionKind::metrics:
        if (metrics.empty()) metrics = format_prometheus(parts, shared_.metrics_top_streams);
        admin_server_->respond(w.connection, http::format_document_response(
                                                 200, "text/plain; version=0.0.4; charset=utf-8", metrics, w.head_only));
        continue;
      case CollectionKind::streams:
        if (streams.empty())
          streams = format_streams_json(parts, shared_.settings.edge_id, reactor_now(), max_api_streams,
                                        admin_server_->max_response_bytes() - max_response_head_bytes);
        admin_server_->respond(w.connection, http::format_document_response(200, "application/json", streams,
                                                                            w.head_only));
        continue;
    }
  }
}

}  // namespace mf::edge
