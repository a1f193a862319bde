#include "ingress/ingress_metrics.h"

#include <fmt/format.h>

#include "common/base/prometheus_text.h"

namespace mf::ingress {
namespace {

struct BackendTotals {
  uint64_t active = 0;
  uint64_t total = 0;
  uint64_t connect_failures = 0;
  uint32_t up_shards = 0;  // shards whose own copy of the pool has it up
};

// Sums every shard's local counts per backend index.
std::vector<BackendTotals> backend_totals(const IngressSnapshots& parts) {
  std::vector<BackendTotals> totals(parts.front()->backends.size());
  for (const auto& part : parts) {
    for (size_t i = 0; i < part->backends.size() && i < totals.size(); ++i) {
      totals[i].active += part->backends[i].active;
      totals[i].total += part->backends[i].tunnels_total;
      totals[i].connect_failures += part->backends[i].connect_failures;
      if (part->backends[i].health == HealthState::up) ++totals[i].up_shards;
    }
  }
  return totals;
}

}  // namespace

std::string format_ingress_prometheus(const IngressSnapshots& parts) {
  using namespace prometheus;
  IngressSnapshot total;
  for (const auto& part : parts) {
    total.tunnels += part->tunnels;
    total.clients += part->clients;
    total.ingress.reloads_ok += part->ingress.reloads_ok;
    total.ingress.reloads_failed += part->ingress.reloads_failed;
    total.ingress.mailbox_drops += part->ingress.mailbox_drops;
  }
  const IngressSnapshot& first = *parts.front();
  std::string out;
  out.reserve(8192);
  gauge(out, "mf_ingress_shards", "Shard threads serving.", parts.size());
  gauge(out, "mf_ingress_draining", "1 while the process drains (SIGTERM).", first.draining ? 1 : 0);
  gauge(out, "mf_ingress_connections", "Client connections held, tunnels or not.", total.clients);
  family(out, "mf_ingress_descriptor_table_used", "Slots held in each shard's io_uring direct-descriptor table.", "gauge");
  for (const auto& part : parts)
    sample(out, "mf_ingress_descriptor_table_used", fmt::format("shard=\"{}\"", part->shard), part->descriptors_used);
  family(out, "mf_ingress_descriptor_table_slots", "Size of each shard's io_uring direct-descriptor table.", "gauge");
  for (const auto& part : parts)
    sample(out, "mf_ingress_descriptor_table_slots", fmt::format("shard=\"{}\"", part->shard), part->descriptor_slots);
  gauge(out, "mf_ingress_tunnels_active", "Tunnels open (client and backend connected).", total.tunnels.active());
  counter(out, "mf_ingress_tunnels_total", "Tunnels opened.", total.tunnels.tunnels_opened);
  counter(out, "mf_ingress_accepted_total", "Client connections accepted.", total.tunnels.accepted);
  family(out, "mf_ingress_tls_handshakes_total", "TLS handshakes completed, full or resumed.", "counter");
  sample(out, "mf_ingress_tls_handshakes_total", "kind=\"full\"", total.tunnels.tls_full);
  sample(out, "mf_ingress_tls_handshakes_total", "kind=\"resumed\"", total.tunnels.tls_resumed);
  family(out, "mf_ingress_tls_failures_total", "TLS handshakes that failed, by reason.", "counter");
  for (size_t i = 0; i < total.tunnels.tls_failures.size(); ++i)
    sample(out, "mf_ingress_tls_failures_total",
           fmt::format("reason=\"{}\"", tls_failure_name(static_cast<TlsFailure>(i))), total.tunnels.tls_failures[i]);
  family(out, "mf_ingress_bytes_total", "Bytes relayed, by direction (TLS payload, not records).", "counter");
  sample(out, "mf_ingress_bytes_total", "direction=\"client_to_backend\"", total.tunnels.bytes_to_backend);
  sample(out, "mf_ingress_bytes_total", "direction=\"backend_to_client\"", total.tunnels.bytes_to_client);
  family(out, "mf_ingress_rejects_total", "Connections refused before becoming a tunnel, by reason.", "counter");
  for (size_t i = 0; i < total.tunnels.rejects.size(); ++i)
    sample(out, "mf_ingress_rejects_total",
           fmt::format("reason=\"{}\"", reject_reason_name(static_cast<RejectReason>(i))), total.tunnels.rejects[i]);
  counter(out, "mf_ingress_connect_failures_total", "Connects to a backend that failed or timed out.",
          total.tunnels.connect_failures);
  counter(out, "mf_ingress_connect_retries_total", "Clients retried on another backend after a failed connect.",
          total.tunnels.connect_retries);
  counter(out, "mf_ingress_idle_closes_total", "Tunnels closed after idle_ms without a byte.", total.tunnels.idle_closes);
  counter(out, "mf_ingress_half_close_timeouts_total", "Half-closed tunnels closed after half_closed_ms.",
          total.tunnels.half_close_timeouts);
  counter(out, "mf_ingress_reserve_evictions_total",
          "Clients closed before their handshake to keep the slots reserved for admitted tunnels.",
          total.tunnels.reserve_evictions);
  counter(out, "mf_ingress_flow_pauses_total", "Times one side stopped reading because the other side's queue was full.",
          total.tunnels.flow_pauses);
  family(out, "mf_ingress_reloads_total", "SIGHUP reloads, by result.", "counter");
  sample(out, "mf_ingress_reloads_total", "result=\"ok\"", first.ingress.reloads_ok);
  sample(out, "mf_ingress_reloads_total", "result=\"failed\"", first.ingress.reloads_failed);
  family(out, "mf_ingress_tls_certificate_reloads_total",
         "Reloads of certificate files that changed on disk, by result (failed: the previous ones serve).", "counter");
  sample(out, "mf_ingress_tls_certificate_reloads_total", "result=\"ok\"", first.ingress.certificate_reloads_ok);
  sample(out, "mf_ingress_tls_certificate_reloads_total", "result=\"failed\"", first.ingress.certificate_reloads_failed);
  family(out, "mf_ingress_tls_certificate_expiry_timestamp_seconds", "notAfter of each served certificate (Unix time).",
         "gauge");
  for (const tls::ServedCertificate& served : first.served)
    sample(out, "mf_ingress_tls_certificate_expiry_timestamp_seconds",
           fmt::format("certificate=\"{}\"", escape_label_value(served.certificate_chain_path)), served.not_after_s);
  family(out, "mf_ingress_tls_ocsp_next_update_timestamp_seconds",
         "nextUpdate of each stapled OCSP response (Unix time); absent without a response or a nextUpdate.", "gauge");
  for (const tls::ServedCertificate& served : first.served) {
    if (served.ocsp_response_path.empty() || served.ocsp_next_update_s == 0) continue;
    sample(out, "mf_ingress_tls_ocsp_next_update_timestamp_seconds",
           fmt::format("certificate=\"{}\",response=\"{}\"", escape_label_value(served.certificate_chain_path),
                       escape_label_value(served.ocsp_response_path)),
           served.ocsp_next_update_s);
  }
  counter(out, "mf_ingress_tls_ocsp_stale_total", "OCSP responses found past their nextUpdate (then not stapled).",
          first.ingress.ocsp_stale);
  counter(out, "mf_ingress_admin_refusals_total", "Admin requests refused (Origin, Host or token).",
          first.ingress.admin_refusals);
  counter(out, "mf_ingress_mailbox_drops_total", "Cross-shard messages lost to a full mailbox.", total.ingress.mailbox_drops);

  std::vector<BackendTotals> totals = backend_totals(parts);
  auto per_backend = [&](std::string_view name, std::string_view help, std::string_view type, auto value) {
    family(out, name, help, type);
    for (size_t i = 0; i < first.backends.size(); ++i) {
      const Backend& b = first.backends[i];
      if (b.removed && totals[i].active == 0) continue;
      sample(out, name, fmt::format("backend=\"{}\"", b.address), value(i, b));
    }
  };
  per_backend("mf_ingress_backend_up", "1 when the backend passes its health checks.", "gauge",
              [](size_t, const Backend& b) { return b.health == HealthState::up ? 1 : 0; });
  per_backend("mf_ingress_backend_drained", "1 when the backend takes no new tunnels.", "gauge",
              [](size_t, const Backend& b) { return b.drained || b.removed ? 1 : 0; });
  per_backend("mf_ingress_backend_active", "Tunnels open (or connecting) to the backend.", "gauge",
              [&](size_t i, const Backend&) { return totals[i].active; });
  per_backend("mf_ingress_backend_tunnels_total", "Tunnels begun to the backend.", "counter",
              [&](size_t i, const Backend&) { return totals[i].total; });
  per_backend("mf_ingress_backend_connect_failures_total", "Failed connects to the backend.", "counter",
              [&](size_t i, const Backend&) { return totals[i].connect_failures; });
  family(out, "mf_ingress_health_checks_total", "Active health checks, by backend and result.", "counter");
  for (size_t i = 0; i < first.backends.size() && i < first.health_checks.size(); ++i) {
    const Backend& b = first.backends[i];
    if (b.removed) continue;
    sample(out, "mf_ingress_health_checks_total", fmt::format("backend=\"{}\",result=\"ok\"", b.address),
           first.health_checks[i].first);
    sample(out, "mf_ingress_health_checks_total", fmt::format("backend=\"{}\",result=\"fail\"", b.address),
           first.health_checks[i].second);
  }
  counter(out, "mf_ingress_health_checks_skipped_total",
          "Health checks not started for want of a socket or descriptor here (no verdict on the backend).",
          first.ingress.health_checks_skipped);
  return out;
}

std::string format_backends_json(const IngressSnapshots& parts, uint64_t now_ms, uint64_t slow_start_ms) {
  const IngressSnapshot& first = *parts.front();
  std::vector<BackendTotals> totals = backend_totals(parts);
  std::string out = "{\"backends\":[";
  bool comma = false;
  for (size_t i = 0; i < first.backends.size(); ++i) {
    const Backend& b = first.backends[i];
    if (b.removed && totals[i].active == 0) continue;
    bool slow_start = b.health == HealthState::up && b.up_since_ms && slow_start_ms != 0 &&
                      now_ms < *b.up_since_ms + slow_start_ms;
    fmt::format_to(std::back_inserter(out),
                   "{}{{\"address\":\"{}\",\"state\":\"{}\",\"drained\":{},\"removed\":{},\"weight\":{},"
                   "\"max_connections\":{},\"active\":{},\"total\":{},\"connect_failures\":{},\"slow_start\":{},"
                   "\"up_shards\":{}}}",
                   comma ? "," : "", b.address, b.health == HealthState::up ? "up" : "down", b.drained ? "true" : "false",
                   b.removed ? "true" : "false", b.weight, b.max_connections, totals[i].active, totals[i].total,
                   totals[i].connect_failures, slow_start ? "true" : "false", totals[i].up_shards);
    comma = true;
  }
  out += "]}\n";
  return out;
}

}  // namespace mf::ingress
