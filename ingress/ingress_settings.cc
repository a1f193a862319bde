#include "ingress/ingress_settings.h"

#include <openssl/ssl.h>

namespace mf::ingress {

std::expected<std::shared_ptr<const IngressRuntime>, std::string> ingress_runtime_from(
    const IngressConfig& config, const std::shared_ptr<TicketKeys>& ticket_keys, const SocketAddress& listen) {
  auto runtime = std::make_shared<IngressRuntime>();
  TunnelSettings& tunnel = runtime->tunnel;
  tunnel.handshake_timeout_ms = config.handshake_timeout_ms;
  tunnel.first_bytes_timeout_ms = config.first_bytes_timeout_ms;
  tunnel.reserve_percent = config.reserve_percent;
  tunnel.connect_timeout_ms = config.connect_timeout_ms;
  tunnel.idle_timeout_ms = config.idle_timeout_ms;
  tunnel.half_closed_ms = config.half_closed_timeout_ms;
  tunnel.buffer_bytes = config.buffer_bytes;
  tunnel.stream_affinity = config.balance_mode == "stream-affinity";
  tunnel.affinity_parameter = config.affinity_parameter;
  auto endpoint = proxy::endpoint_from_sockaddr(reinterpret_cast<const sockaddr*>(&listen.storage), listen.length);
  if (endpoint) tunnel.listen_endpoint = *endpoint;

  SniRouterOptions& tls = runtime->tls;
  for (const CertificateSetting& c : config.certificates)
    tls.certificates.push_back({c.certificate, c.key, c.ocsp_response});
  tls.alpn = config.alpn;
  tls.min_version = config.tls_min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  tls.ticket_keys = ticket_keys;
  tls.refuse_unknown_names = config.unknown_sni == "refuse";

  for (const BackendSetting& b : config.backends) {
    IngressRuntime::BackendEntry entry;
    entry.spec = BackendSpec{b.address, b.weight, b.max_connections, b.drained};
    auto address = parse_socket_address(b.address);
    if (!address) return std::unexpected("backend " + b.address + ": " + address.error());
    entry.address = *address;
    auto check = parse_socket_address(b.check_address.empty() ? b.address : b.check_address);
    if (!check) return std::unexpected("backend " + b.address + " check_address: " + check.error());
    entry.check = *check;
    runtime->backends.push_back(std::move(entry));
  }
  runtime->pool.health = HealthSettings{config.health_fall, config.health_rise, config.health_slow_start_ms};
  runtime->pool.affinity_load_factor_percent = config.affinity_load_factor_percent;
  runtime->health = HealthCheckSettings{config.health_interval_ms, config.health_timeout_ms, config.health_path};
  runtime->max_connections = config.max_connections;
  runtime->per_source = SourceLimitSettings{config.per_source_connections, config.per_source_rate, config.per_source_burst,
                                            SourcePrefixes{static_cast<uint8_t>(config.per_source_ipv4_prefix),
                                                           static_cast<uint8_t>(config.per_source_ipv6_prefix)}};
  runtime->handshakes_per_second = config.handshakes_per_second;
  runtime->drain_deadline_ms = config.drain_deadline_ms;
  runtime->ticket_rotation_s = config.ticket_rotation_s;
  return std::shared_ptr<const IngressRuntime>(std::move(runtime));
}

}  // namespace mf::ingress
