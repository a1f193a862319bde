// EdgeShard, the operator's side: the policy's sources and its push to every
// shard, certificate reload, and shard 0's admin listener with the metrics
// collection across shards (docs/edge.md).
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
#include "common/base/log.h"
#include "edge/cluster_keys.h"
#include "edge/operator_page.h"
#include "edge/streams_json.h"

#include <fmt/format.h>

namespace mf::edge {

using namespace shard_support;

// ---- policy -------------------------------------------------------------------

void EdgeShard::on_reload() {
  if (shard_.id() != 0 || stopping_) return;
  reload_settings();  // the certificate with the rest (edge/edge_shard_reload.cc)
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
    send(to, CertificatesChanged{});
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
  policy_source_.file_loaded(std::make_shared<const PolicyDocument>(std::move(*document)));
  if (policy_source_.valkey_wins()) {
    MF_LOG_NOTICE("policy: loaded {} (not applied: the policy in Valkey wins while its key exists)", path);
    return;
  }
  MF_LOG_NOTICE("policy: loaded {}", path);
  apply_policy_sources();
}

void EdgeShard::apply_policy_sources() {
  std::shared_ptr<const PolicyDocument> document = policy_source_.effective();
  if (document == policy_) return;
  broadcast_policy(std::move(document));
}

void EdgeShard::broadcast_policy(std::shared_ptr<const PolicyDocument> document) {
  for (uint32_t to = 0; to < shard_.count(); ++to) {
    auto change = std::make_unique<PolicyChanged>();
    change->document = document;
    send(to, std::move(change));
  }
}

void EdgeShard::on(std::unique_ptr<PolicyChanged> m) {
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
    if (!send(to, CollectMetrics{round})) {
      // Without that shard's part the numbers would be wrong: say so.
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
  if (cluster_) cluster_->add_metrics(*snapshot);
  stream_owner_.summarize(snapshot->streams);
  signal_counts_.append_to(snapshot->signals);
  send(0, MetricsSnapshotReady(std::move(snapshot)));
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
        if (cluster_) cluster_->publish_summary(format_edge_summary(parts, shared_.settings.edge_id, cluster_state()));
        continue;
      case CollectionKind::cluster:
        cluster_answer(w.connection, w.head_only,
                       format_edge_summary(parts, shared_.settings.edge_id, cluster_state()));
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
