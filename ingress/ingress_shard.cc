#include "ingress/ingress_shard.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "common/codec/http_response.h"
#include "common/base/log.h"
#include "ingress/ingress_page.h"

namespace mf::ingress {

IngressShard::IngressShard(Shard& shard, const IngressShared& shared)
    : shard_(shard), shared_(shared), clients_(shard.reactor().options().max_sockets) {}

std::expected<std::unique_ptr<ShardService>, std::string> IngressShard::create(Shard& shard, const IngressShared& shared) {
  std::unique_ptr<IngressShard> self(new IngressShard(shard, shared));
  Reactor& reactor = shard.reactor();
  auto router = SniRouter::create(shared.initial->tls);
  if (!router) return std::unexpected(router.error());
  self->router_ = std::move(*router);
  self->tunnels_ = std::make_unique<TunnelServer>(reactor, shared.initial->tunnel, *self);
  self->tunnels_->set_router(self->router_);
  IngressShard* raw = self.get();
  if (shard.id() == 0) {
    self->checker_ = std::make_unique<HealthChecker>(
        reactor, [raw](uint32_t index, bool ok, std::string_view reason) { raw->on_health_result(index, ok, reason); });
  }
  self->apply_runtime(shared.initial);


  auto fd = shard_listener(shared.inherited_listen_fd, shared.listen_address ? &*shared.listen_address : nullptr, 4096);
  if (!fd) return std::unexpected("listen.address: " + fd.error());
  self->listen_fd_ = *fd;
  // Always with addresses: the PROXY header names the client.
  reactor.add_listener(*fd, self->tunnels_.get(), true);

  reactor.add_periodic(10000, [raw] { raw->sources_.sweep(raw->shard_.reactor().now_ms()); });
  reactor.add_periodic(100, [raw] { raw->check_drain_deadline(); });
  if (shard.id() == 0) {
    if (shared.inherited_admin_fd >= 0 || shared.admin_address) {
      self->admin_app_ = std::make_unique<AdminApp>(*self);
      self->admin_guard_.emplace(shared.admin_token, shared.admin_allowed_hosts);
      WebSocketServerConfig admin;
      admin.routes.websocket_path = "/ws";  // refused by AdminApp::admit
      admin.handshake_timeout_ms = 5000;
      self->admin_server_ = std::make_unique<WebSocketServer>(reactor, admin, *self->admin_app_);
      auto admin_fd = shard_listener(shared.inherited_admin_fd, shared.admin_address ? &*shared.admin_address : nullptr, 64);
      if (!admin_fd) return std::unexpected("admin.listen: " + admin_fd.error());
      self->admin_fd_ = *admin_fd;
      reactor.add_listener(*admin_fd, self->admin_server_.get(), false, Reactor::accepts_per_admin_listener);
    }
    self->ticket_rotation_.emplace(shared.ticket_keys, reactor.now_ms());
    reactor.add_periodic(1000, [raw] {
      raw->ticket_rotation_->tick(raw->shard_.reactor().now_ms(), raw->runtime_->ticket_rotation_s);
    });
    raw->report_stale_ocsp_responses();  // a response already stale at start
    if (shared.tls_watch_interval_ms != 0) {
      self->certificate_files_.emplace(tls::source_files(shared.initial->tls.certificates));
      reactor.add_periodic(shared.tls_watch_interval_ms, [raw] { raw->check_certificate_files(); });
    }
  }
  return std::unique_ptr<ShardService>(std::move(self));
}

IngressShard::~IngressShard() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (admin_fd_ >= 0) ::close(admin_fd_);
}

void IngressShard::dispose(const ShardMessage& message) { IngressMessages::dispose(message); }

void IngressShard::on_message(const ShardMessage& message) {
  if (!IngressMessages::dispatch(message, *this))
    MF_LOG_ERROR("shard {}: unknown shard message kind {}", shard_.id(), message.kind);
}

void IngressShard::on(SourceAcquire request) {
  sources_.on_acquire(request.take(), runtime_->per_source, shard_.reactor().now_ms());
}

void IngressShard::on(SourceAnswer answer) {
  std::unique_ptr<SourceRequest> request = answer.take();
  SocketHandle client{request->slot, request->generation};
  ClientState* c = client.slot < clients_.created() ? &clients_[client.slot] : nullptr;
  bool waiting = c != nullptr && c->socket == client && c->source_pending;
  // A client that left meanwhile: its place granted goes back to the owner.
  std::optional<SourceVerdict> verdict = sources_.on_verdict(std::move(request), waiting);
  if (!verdict) return;
  bool admitted = *verdict == SourceVerdict::admitted;
  c->source_pending = false;
  c->source_acquired = admitted;
  tunnels_->complete_admission(client, admitted,
                               *verdict == SourceVerdict::over_rate ? RejectReason::per_source_rate
                                                                    : RejectReason::per_source_connections);
}

void IngressShard::on(SourceRelease request) { sources_.on_release(request.take(), shard_.reactor().now_ms()); }

void IngressShard::on(BackendHealth m) {
  if (m.index < pool_.backends().size()) pool_.set_health(m.index, m.up, shard_.reactor().now_ms());
}

void IngressShard::on(BackendEject m) {
  if (m.index >= pool_.backends().size()) return;
  if (pool_.eject(m.index, shard_.reactor().now_ms()) == HealthTransition::went_down)
    MF_LOG_WARN("backend {} is down: a connect to it failed", pool_.backends()[m.index].address);
  set_health_everywhere(m.index, pool_.backends()[m.index].health == HealthState::up);
}

void IngressShard::on(BackendDrain m) {
  if (m.index < pool_.backends().size()) pool_.set_drained(m.index, m.drained);
}

void IngressShard::on(RuntimeChanged runtime) {
  if (shard_.id() != 0) {
    auto router = SniRouter::create((*runtime)->tls);
    if (!router) {
      // Shard 0 loaded the same files a moment ago: they changed since.
      MF_LOG_ERROR("shard {}: reload: {} (keeping the previous certificates)", shard_.id(), router.error());
    } else {
      use_router(std::move(*router));
    }
  }
  apply_runtime(*runtime);
}

void IngressShard::on(CertificatesChanged runtime) {
  if (shard_.id() == 0 || *runtime != runtime_) return;  // shard 0 built its own; a reload came since
  auto router = SniRouter::create((*runtime)->tls);
  if (!router) {
    // Shard 0 loaded the same files a moment ago: they changed since,
    // and its next check sends them again once they load.
    MF_LOG_ERROR("shard {}: certificate reload: {} (keeping the previous certificates)", shard_.id(), router.error());
    return;
  }
  use_router(std::move(*router));
}

void IngressShard::on(CollectSnapshot m) { send(0, SnapshotReady(snapshot(m.round))); }

void IngressShard::on(SnapshotReady part) { on_snapshot(part.take()); }

void IngressShard::apply_runtime(std::shared_ptr<const IngressRuntime> runtime) {
  runtime_ = std::move(runtime);
  std::vector<BackendSpec> specs;
  specs.reserve(runtime_->backends.size());
  for (const auto& entry : runtime_->backends) specs.push_back(entry.spec);
  pool_.set_settings(runtime_->pool);
  if (auto applied = pool_.apply(specs); !applied) {
    // The loader validated the list; nothing changed in the pool.
    MF_LOG_ERROR("shard {}: backend list refused ({})", shard_.id(), static_cast<int>(applied.error()));
  }
  entries_.assign(pool_.backends().size(), nullptr);
  global_active_view_.assign(pool_.backends().size(), 0);
  for (const auto& entry : runtime_->backends) {
    if (auto index = pool_.find(entry.spec.address)) entries_[*index] = &entry;
  }
  any_backend_capped_ = false;
  for (const auto& entry : runtime_->backends) any_backend_capped_ |= entry.spec.max_connections != 0;
  tunnels_->set_settings(runtime_->tunnel);
  // The process-wide handshake rate, split evenly: the kernel spreads
  // connections evenly over the shards' listeners.
  handshake_share_ = runtime_->handshakes_per_second == 0
                         ? 0
                         : std::max<uint32_t>(1, (runtime_->handshakes_per_second + shard_.count() - 1) / shard_.count());
  handshake_bucket_.init(handshake_share_, shard_.reactor().now_ms());
  if (checker_) {
    std::vector<HealthTarget> targets;
    for (uint32_t i = 0; i < entries_.size(); ++i)
      if (entries_[i] != nullptr) targets.push_back(HealthTarget{i, entries_[i]->check});
    health_checks_.resize(entries_.size());
    checker_->configure(runtime_->health, std::move(targets));
  }
}

void IngressShard::on_reload() {
  if (shard_.id() != 0 || stopping_) return;
  auto loaded = shared_.reload();
  if (loaded) {
    size_t fresh = 0;
    for (const auto& entry : (*loaded)->backends)
      if (!pool_.find(entry.spec.address)) ++fresh;
    if (pool_.backends().size() + fresh > IngressShared::max_backend_indices)
      loaded = std::unexpected("more than " + std::to_string(IngressShared::max_backend_indices) +
                               " distinct backend addresses since start: restart the process");
  }
  std::unique_ptr<SniRouter> router;
  if (loaded) {
    auto built = SniRouter::create((*loaded)->tls);
    if (!built) loaded = std::unexpected(built.error());
    else router = std::move(*built);
  }
  if (!loaded) {
    counters_.reloads_failed++;
    MF_LOG_ERROR("reload failed, the running configuration stays: {}", loaded.error());
    return;
  }
  counters_.reloads_ok++;
  use_router(std::move(router));
  if (certificate_files_) certificate_files_.emplace(tls::source_files((*loaded)->tls.certificates));
  for (uint32_t to = 0; to < shard_.count(); ++to) send(to, RuntimeChanged(new RuntimePointer(*loaded)));
  MF_LOG_NOTICE("reloaded: {} backends, {} certificate names", (*loaded)->backends.size(), router_->names().size());
  report_stale_ocsp_responses();
}

void IngressShard::use_router(std::unique_ptr<SniRouter> router) {
  // Handshakes under way keep the old router alive (TunnelServer), and
  // established tunnels their SSL_CTX: nothing open is dropped.
  router_ = std::move(router);
  tunnels_->set_router(router_);
}

void IngressShard::check_certificate_files() {
  if (stopping_) return;
  report_stale_ocsp_responses();
  // Stats a few local files and, when they changed, reads and parses them
  // here: the same accepted exception to "no blocking call on a shard
  // thread" as the SIGHUP reload (rare, tiny, control plane).
  if (certificate_files_->check() == WatchedFiles::Step::nothing) return;
  auto router = SniRouter::create(runtime_->tls);
  switch (certificate_files_->attempted(router.has_value())) {
    case WatchedFiles::Verdict::waiting:
      MF_LOG_DEBUG("certificate files changed but do not load yet (retried at the next check): {}", router.error());
      return;
    case WatchedFiles::Verdict::refused:
      counters_.certificate_reloads_failed++;
      MF_LOG_ERROR("certificate reload refused, the previous certificates stay: {}", router.error());
      return;
    case WatchedFiles::Verdict::accepted:
      break;
  }
  counters_.certificate_reloads_ok++;
  use_router(std::move(*router));
  for (uint32_t to = 1; to < shard_.count(); ++to) send(to, CertificatesChanged(new RuntimePointer(runtime_)));
  for (const tls::ServedCertificate& served : router_->served())
    MF_LOG_NOTICE("certificate reloaded: {} (valid until {}{}{})", served.certificate_chain_path, served.not_after_s,
                  served.ocsp_response_path.empty() ? "" : ", OCSP response ", served.ocsp_response_path);
  report_stale_ocsp_responses();
}

void IngressShard::report_stale_ocsp_responses() {
  const int64_t now_s = static_cast<int64_t>(std::time(nullptr));
  std::vector<tls::ServedCertificate> all = router_->served();
  // Forget responses no longer served: the list stays as long as the certificates'.
  std::erase_if(stale_ocsp_reported_, [&](const auto& key) {
    return std::none_of(all.begin(), all.end(), [&](const tls::ServedCertificate& s) {
      return s.ocsp_response_path == key.first && s.ocsp_next_update_s == key.second;
    });
  });
  for (const tls::ServedCertificate& served : all) {
    if (served.ocsp_response_path.empty() || served.ocsp_next_update_s == 0 || now_s < served.ocsp_next_update_s)
      continue;
    std::pair<std::string, int64_t> key{served.ocsp_response_path, served.ocsp_next_update_s};
    if (std::find(stale_ocsp_reported_.begin(), stale_ocsp_reported_.end(), key) != stale_ocsp_reported_.end()) continue;
    stale_ocsp_reported_.push_back(std::move(key));
    counters_.ocsp_stale++;
    MF_LOG_WARN("OCSP response {} for {} is past its nextUpdate (unix {}): not stapled until the file is renewed",
                served.ocsp_response_path, served.certificate_chain_path, served.ocsp_next_update_s);
  }
}

// ---- TunnelHost ------------------------------------------------------------

TunnelHost::Verdict IngressShard::admit_client(SocketHandle client, const proxy::Endpoint* peer, RejectReason& reason) {
  ClientState& c = clients_.ensure(client.slot);
  c = ClientState{};
  c.socket = client;
  uint64_t now = shard_.reactor().now_ms();
  if (handshake_share_ != 0) {
    if (!handshake_bucket_.take(handshake_share_, handshake_share_, now)) {
      reason = RejectReason::handshake_rate;
      return Verdict::refuse;
    }
  }
  uint32_t before = shared_.clients.fetch_add(1, std::memory_order_relaxed);
  c.counted = true;
  if (runtime_->max_connections != 0 && before >= runtime_->max_connections) {
    reason = RejectReason::max_connections;
    return Verdict::refuse;  // uncounted in on_client_released
  }
  if (!runtime_->per_source.enabled() || peer == nullptr) return Verdict::admit;
  c.source = SourceKey::of(*peer, runtime_->per_source.prefixes);
  SourceAdmission::Start start = sources_.acquire(c.source, client.slot, client.generation, runtime_->per_source, now);
  switch (start.step) {
    case SourceAdmission::Step::admitted:
      c.source_acquired = true;
      return Verdict::admit;
    case SourceAdmission::Step::refused:
      reason = start.verdict == SourceVerdict::over_rate ? RejectReason::per_source_rate
                                                         : RejectReason::per_source_connections;
      return Verdict::refuse;
    case SourceAdmission::Step::pending:
      c.source_pending = true;
      return Verdict::pending;
    case SourceAdmission::Step::busy:
      break;
  }
  reason = RejectReason::per_source_connections;
  return Verdict::refuse;
}

void IngressShard::on_client_released(SocketHandle client) {
  if (client.slot >= clients_.created()) return;
  ClientState& c = clients_[client.slot];
  if (c.socket != client) return;
  if (c.counted) shared_.clients.fetch_sub(1, std::memory_order_relaxed);
  if (c.source_acquired) sources_.release(c.source, shard_.reactor().now_ms());
  c = ClientState{};
}

std::expected<BackendTarget, RejectReason> IngressShard::select_backend(std::optional<uint64_t> key_hash,
                                                                        std::span<const uint32_t> exclude) {
  ExcludeSet excluded;
  for (uint32_t index : exclude) excluded.add(index);
  GlobalActive view;
  if (any_backend_capped_) {
    for (uint32_t i = 0; i < global_active_view_.size(); ++i)
      global_active_view_[i] = shared_.backend_active[i].load(std::memory_order_relaxed);
    view = global_active_view_;
  }
  uint64_t now = shard_.reactor().now_ms();
  std::optional<uint32_t> pick =
      key_hash ? pool_.pick_by_key(*key_hash, now, excluded, view) : pool_.pick_least_connections(now, excluded, view);
  if (!pick || *pick >= entries_.size() || entries_[*pick] == nullptr)
    return std::unexpected(pool_.any_up() && any_backend_capped_ ? RejectReason::backend_full : RejectReason::no_backend);
  pool_.on_tunnel_opened(*pick);
  shared_.backend_active[*pick].fetch_add(1, std::memory_order_relaxed);
  const IngressRuntime::BackendEntry& entry = *entries_[*pick];
  return BackendTarget{*pick, &entry.address.storage, entry.address.length};
}

void IngressShard::release_backend(uint32_t backend) {
  pool_.on_tunnel_closed(backend);
  shared_.backend_active[backend].fetch_sub(1, std::memory_order_relaxed);
}

void IngressShard::on_connect_failed(uint32_t backend, int error) {
  pool_.on_connect_failed(backend);
  if (pool_.eject(backend, shard_.reactor().now_ms()) == HealthTransition::went_down)
    MF_LOG_WARN("shard {}: backend {} ejected: connect failed: {}", shard_.id(), pool_.backends()[backend].address,
                std::strerror(-error));
  send(0, BackendEject{backend});
}

// ---- health (shard 0) --------------------------------------------------------

void IngressShard::on_health_result(uint32_t index, bool ok, std::string_view reason) {
  if (index >= pool_.backends().size()) return;
  if (index < health_checks_.size()) (ok ? health_checks_[index].first : health_checks_[index].second)++;
  (ok ? counters_.health_checks_ok : counters_.health_checks_failed)++;
  const Backend& b = pool_.backends()[index];
  switch (pool_.record_check(index, ok, shard_.reactor().now_ms())) {
    case HealthTransition::went_down: MF_LOG_WARN("backend {} is down: {}", b.address, reason); break;
    case HealthTransition::went_up: MF_LOG_NOTICE("backend {} is up", b.address); break;
    case HealthTransition::none: break;
  }
  // Every result is broadcast, changed or not: a shard that missed a
  // message (full mailbox) converges at the next check.
  set_health_everywhere(index, b.health == HealthState::up);
}

void IngressShard::set_health_everywhere(uint32_t index, bool up) {
  for (uint32_t to = 1; to < shard_.count(); ++to) send(to, BackendHealth{index, up});
}

// ---- stop ------------------------------------------------------------------

void IngressShard::on_stop_requested() {
  stopping_ = true;
  stop_deadline_ms_ = shard_.reactor().now_ms() + runtime_->drain_deadline_ms;
  // Closing the listener (not only cancelling its accept) lets the kernel
  // hand new connections to another process on the same SO_REUSEPORT port
  // (and, with net.ipv4.tcp_migrate_req=1, the ones queued here too).
  shard_.reactor().stop_accepting();
  if (listen_fd_ >= 0) {
    // shutdown() takes the socket out of LISTEN at once, whatever still
    // references it (an accept being cancelled). Not on a socket systemd
    // handed over: that one is shared with systemd, which keeps it open
    // for the next instance.
    if (shared_.inherited_listen_fd < 0) ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
  tunnels_->close_all(false);
  if (checker_) checker_->stop();
  MF_LOG_INFO("shard {}: draining {} tunnels (deadline {} ms)", shard_.id(), tunnels_->clients(),
              runtime_->drain_deadline_ms);
}

void IngressShard::check_drain_deadline() {
  if (!stopping_) return;
  if (shard_.reactor().now_ms() >= stop_deadline_ms_) tunnels_->close_all(true);
  if (tunnels_->clients() == 0 && admin_server_) admin_server_->close_all(1001, "stopping");
}

bool IngressShard::stopped() const {
  return stopping_ && tunnels_->clients() == 0 && (!checker_ || checker_->sockets() == 0) &&
         shard_.reactor().live_sockets() == 0;
}

// ---- admin (shard 0) -----------------------------------------------------------

bool IngressShard::AdminApp::on_http_request(SocketHandle connection, const http::RequestHead& head) {
  if (auto refused = ingress_.admin_guard_->check_request(head)) {
    ingress_.refuse_admin(connection, *refused);
    return true;
  }
  bool get = head.method == "GET" || head.method == "HEAD";
  bool head_only = head.method == "HEAD";
  if (head.path == "/metrics" && get) {
    ingress_.start_collection(connection, CollectionKind::metrics, head_only);
    return true;
  }
  if (head.path == "/api/backends" && get) {
    ingress_.start_collection(connection, CollectionKind::backends, head_only);
    return true;
  }
  if (head.path == "/api/backends/drain" || head.path == "/api/backends/enable") {
    ingress_.handle_backend_admin(connection, head, head.path == "/api/backends/drain");
    return true;
  }
  if (head.path == "/" && get) {
    // Static: the page fetches /api/backends and /metrics itself.
    static const std::string page = http::format_document_response(200, "text/html; charset=utf-8", ingress_page_html());
    static const std::string page_head =
        http::format_document_response(200, "text/html; charset=utf-8", ingress_page_html(), true);
    ingress_.admin_server_->respond(connection, head_only ? page_head : page);
    return true;
  }
  return false;
}

void IngressShard::handle_backend_admin(SocketHandle connection, const http::RequestHead& head, bool drain) {
  auto answer = [&](uint16_t status, std::string_view body) {
    admin_server_->respond(connection, http::format_document_response(status, "application/json", body));
  };
  if (head.method != "POST") return answer(405, "{\"error\":\"use POST\"}\n");
  // Drain and enable change what every client gets: a credential, and no
  // web page (docs/security.md, "The admin surface").
  if (auto refused = admin_guard_->check_state_change(head)) {
    return refuse_admin(connection, *refused);
  }
  auto address = http::query_param(head.query, "address");
  std::optional<uint32_t> index = address ? pool_.find(*address) : std::nullopt;
  if (!index || pool_.backends()[*index].removed) return answer(404, "{\"error\":\"no such backend\"}\n");
  // Answered "done" below: every shard, this one included, must get it.
  for (uint32_t to = 0; to < shard_.count(); ++to) send(to, BackendDrain{*index, drain});
  MF_LOG_NOTICE("admin: backend {} {}", pool_.backends()[*index].address, drain ? "drained" : "enabled");
  answer(200, "{\"address\":\"" + pool_.backends()[*index].address + "\",\"drained\":" + (drain ? "true" : "false") +
                  "}\n");
}

void IngressShard::refuse_admin(SocketHandle connection, const AdminRefusal& refusal) {
  counters_.admin_refusals++;
  MF_LOG_NOTICE("admin: request refused with {}: {}", refusal.status,
                std::string_view(refusal.body).substr(0, refusal.body.size() - 1));
  admin_server_->respond(connection, http::format_document_response(refusal.status, "text/plain", refusal.body, false,
                                                                    refusal.extra_headers));
}

std::unique_ptr<IngressSnapshot> IngressShard::snapshot(uint64_t round) {
  auto part = std::make_unique<IngressSnapshot>();
  part->shard = shard_.id();
  part->round = round;
  part->tunnels = tunnels_->counters();
  part->ingress = counters_;
  part->ingress.mailbox_drops += shard_.mailbox_drops();
  part->clients = tunnels_->clients();
  part->descriptors_used = shard_.reactor().live_sockets();
  part->descriptor_slots = shard_.reactor().options().max_sockets;
  part->backends.assign(pool_.backends().begin(), pool_.backends().end());
  part->health_checks = health_checks_;
  if (checker_) part->ingress.health_checks_skipped = checker_->skipped();
  part->draining = stopping_;
  if (shard_.id() == 0) part->served = router_->served();
  return part;
}

void IngressShard::start_collection(SocketHandle waiter, CollectionKind kind, bool head_only) {
  if (!collection_.add_waiter({waiter, kind, head_only})) return;  // a collection is under way: share it
  for (uint32_t to = 0; to < shard_.count(); ++to) {
    if (!send(to, CollectSnapshot{collection_.round()})) {
      // Without that shard's part the numbers would be wrong: say so.
      for (const auto& w : collection_.take_waiters())
        admin_server_->respond(w.connection, http::format_document_response(503, "text/plain", "busy\n", w.head_only));
      return;
    }
  }
}

void IngressShard::on_snapshot(std::unique_ptr<IngressSnapshot> part) {
  uint64_t round = part->round;
  if (!collection_.add_part(std::move(part), round, shard_.count())) return;
  IngressSnapshots parts = collection_.take_parts();
  std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a->shard < b->shard; });
  // Each format is rendered once, for every request waiting for it.
  std::string metrics, backends;
  for (const auto& w : collection_.take_waiters()) {
    bool is_metrics = w.kind == CollectionKind::metrics;
    std::string& body = is_metrics ? metrics : backends;
    if (body.empty()) body = is_metrics ? format_ingress_prometheus(parts) : format_backends_json(parts, shard_.reactor().now_ms(), pool_.settings().health.slow_start_ms);
    admin_server_->respond(w.connection,
                           http::format_document_response(
                               200, is_metrics ? "text/plain; version=0.0.4; charset=utf-8" : "application/json", body,
                               w.head_only));
  }
}

}  // namespace mf::ingress
