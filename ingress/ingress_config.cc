#include "ingress/ingress_config.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstring>

#include "common/net/listen_socket.h"

namespace mf::ingress {
namespace {

using config::field;
using config::Setting;

// An ALPN protocol name as it goes on the wire: 1..255 bytes (its length is
// one byte), and printable so that it can be logged and compared as text.
std::expected<void, std::string> check_alpn_protocol(std::string_view value, const Setting&, bool) {
  bool printable = std::all_of(value.begin(), value.end(), [](char c) { return c > ' ' && c <= '~'; });
  if (value.empty() || value.size() > 255 || !printable)
    return std::unexpected(
        fmt::format("{} must be 1..255 bytes of printable ASCII without spaces", config::printable(value)));
  return {};
}

// A query parameter name as the stream-affinity hash looks for it in the
// request target: RFC 3986 unreserved characters only, so that it never
// needs percent-decoding to match.
std::expected<void, std::string> check_query_parameter(std::string_view value, const Setting&, bool) {
  auto unreserved = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
  };
  if (value.empty() || value.size() > 64 || !std::all_of(value.begin(), value.end(), unreserved))
    return std::unexpected(fmt::format("{} must be 1..64 bytes of [A-Za-z0-9._~-]", config::printable(value)));
  return {};
}

constexpr std::string_view tls_versions[] = {"1.2", "1.3"};
constexpr std::string_view unknown_sni_answers[] = {"refuse", "default"};
constexpr std::string_view balance_modes[] = {"least-connections", "stream-affinity"};

constexpr Setting certificate_keys[] = {
    {.key = "certificate", .flag = "--tls-cert", .metavar = "FILE",
     .help = "certificate chain (PEM); with --tls-key, replaces the file's [[tls.certificate]] list",
     .field = field<&CertificateSetting::certificate>, .check = config::check_file, .required = true},
    {.key = "key", .flag = "--tls-key", .metavar = "FILE", .help = "its private key (PEM)",
     .field = field<&CertificateSetting::key>, .check = config::check_file, .required = true},
    {.key = "ocsp_response", .flag = "--tls-ocsp", .metavar = "FILE",
     .help = "DER OCSP response for it, stapled on status_request (reloaded when it changes)",
     .field = field<&CertificateSetting::ocsp_response>, .check = config::check_file},
};

constexpr Setting backend_keys[] = {
    {.key = "address", .flag = "--backend", .metavar = "HOST:PORT",
     .help = "an edge's plain listener (repeatable; replaces the file's [[backend]] list)",
     .field = field<&BackendSetting::address>, .check = config::check_host_port, .required = true},
    {.key = "weight", .field = field<&BackendSetting::weight>, .low = 1, .high = 256},
    {.key = "max_connections", .field = field<&BackendSetting::max_connections>},
    {.key = "check_address", .field = field<&BackendSetting::check_address>, .check = config::check_host_port},
    {.key = "drained", .field = field<&BackendSetting::drained>},
};

// One operator-facing setting per line: where it lives in the file, its
// flag, how it is checked (common/config/config_schema.h). Ranges the contract
// leaves open are bounded to what an operator could mean.
constexpr Setting settings[] = {
    {.table = "ingress", .key = "shards", .flag = "--shards", .metavar = "N",
     .help = "shard threads, one per core; 0: one per online CPU", .field = field<&IngressConfig::shards>,
     .high = 256},
    {.table = "ingress", .key = "log_level", .flag = "--log-level", .metavar = "LEVEL",
     .help = "error|warning|notice|info|debug", .field = field<&IngressConfig::log_level>,
     .check = config::check_log_level},

    {.table = "listen", .key = "address", .flag = "--listen", .metavar = "ADDR:PORT",
     .help = "the public TLS listener", .field = field<&IngressConfig::listen>,
     .check = config::check_listen_address},

    {.table = "tls", .key = "min_version", .field = field<&IngressConfig::tls_min_version>,
     .check = config::check_choice, .choices = tls_versions},
    {.table = "tls", .key = "alpn", .field = field<&IngressConfig::alpn>, .check = check_alpn_protocol},
    {.table = "tls", .key = "handshake_timeout_ms", .flag = "--handshake-timeout-ms", .metavar = "N",
     .help = "TLS handshake deadline", .field = field<&IngressConfig::handshake_timeout_ms>, .low = 100,
     .high = 600000},
    {.table = "tls", .key = "first_bytes_timeout_ms", .flag = "--first-bytes-timeout-ms", .metavar = "N",
     .help = "accept to the first byte (the ClientHello); 0: handshake deadline only",
     .field = field<&IngressConfig::first_bytes_timeout_ms>, .low = 100, .high = 600000, .zero_allowed = true},
    {.table = "tls", .key = "handshakes_per_second", .flag = "--handshakes-per-second", .metavar = "N",
     .help = "new TLS handshakes per second, process-wide; 0: unlimited",
     .field = field<&IngressConfig::handshakes_per_second>, .high = 1000000},
    {.table = "tls", .key = "ticket_rotation_s", .field = field<&IngressConfig::ticket_rotation_s>, .low = 60,
     .high = 604800, .zero_allowed = true},
    {.table = "tls", .key = "unknown_sni", .field = field<&IngressConfig::unknown_sni>,
     .check = config::check_choice, .choices = unknown_sni_answers},
    {.table = "tls", .key = "watch_interval_ms", .flag = "--tls-watch-interval-ms", .metavar = "N",
     .help = "check the certificate, key and OCSP files for changes this often; 0: on SIGHUP only",
     .field = field<&IngressConfig::tls_watch_interval_ms>, .low = 10, .high = 3600000, .zero_allowed = true},
    {.table = "tls", .key = "certificate", .field = field<&IngressConfig::certificates>, .low = 1, .high = 16,
     .entry_settings = certificate_keys, .one_entry_from_flags = true},

    {.key = "backend", .field = field<&IngressConfig::backends>, .low = 1, .entry_settings = backend_keys},

    {.table = "balance", .key = "mode", .flag = "--balance", .metavar = "MODE",
     .help = "least-connections|stream-affinity", .field = field<&IngressConfig::balance_mode>,
     .check = config::check_choice, .choices = balance_modes},
    {.table = "balance", .key = "affinity_parameter", .field = field<&IngressConfig::affinity_parameter>,
     .check = check_query_parameter},
    {.table = "balance", .key = "affinity_load_factor_percent",
     .field = field<&IngressConfig::affinity_load_factor_percent>, .low = 100, .high = 1000},

    {.table = "health", .key = "path", .field = field<&IngressConfig::health_path>,
     .check = config::check_request_path},
    {.table = "health", .key = "interval_ms", .field = field<&IngressConfig::health_interval_ms>, .low = 100,
     .high = 600000},
    {.table = "health", .key = "timeout_ms", .field = field<&IngressConfig::health_timeout_ms>, .low = 50,
     .high = 60000},
    {.table = "health", .key = "fall", .field = field<&IngressConfig::health_fall>, .low = 1, .high = 100},
    {.table = "health", .key = "rise", .field = field<&IngressConfig::health_rise>, .low = 1, .high = 100},
    {.table = "health", .key = "slow_start_ms", .field = field<&IngressConfig::health_slow_start_ms>,
     .high = 3600000},

    {.table = "limits", .key = "max_connections", .flag = "--max-connections", .metavar = "N",
     .help = "tunnels process-wide; 0: the descriptor limit", .field = field<&IngressConfig::max_connections>},
    {.table = "limits", .key = "per_source_connections", .flag = "--per-source-connections", .metavar = "N",
     .help = "open connections per client address, counted at accept; 0: unlimited",
     .field = field<&IngressConfig::per_source_connections>},
    {.table = "limits", .key = "per_source_rate", .flag = "--per-source-rate", .metavar = "N",
     .help = "new connections per second per client address; 0: unlimited",
     .field = field<&IngressConfig::per_source_rate>, .high = 1000000},
    {.table = "limits", .key = "per_source_burst", .field = field<&IngressConfig::per_source_burst>,
     .high = 1000000},
    {.table = "limits", .key = "per_source_ipv4_prefix", .field = field<&IngressConfig::per_source_ipv4_prefix>,
     .low = 8, .high = 32},
    {.table = "limits", .key = "per_source_ipv6_prefix", .field = field<&IngressConfig::per_source_ipv6_prefix>,
     .low = 16, .high = 128},
    {.table = "limits", .key = "reserve_percent", .flag = "--reserve-percent", .metavar = "N",
     .help = "% of each shard's slots kept for admitted connections; 0: none",
     .field = field<&IngressConfig::reserve_percent>, .high = 50},
    {.table = "limits", .key = "buffer_bytes", .field = field<&IngressConfig::buffer_bytes>, .low = 4096,
     .high = 16777216},

    {.table = "timeouts", .key = "connect_ms", .flag = "--connect-timeout-ms", .metavar = "N",
     .help = "TCP connect to a backend, retries included", .field = field<&IngressConfig::connect_timeout_ms>,
     .low = 10, .high = 60000},
    {.table = "timeouts", .key = "idle_ms", .flag = "--idle-timeout-ms", .metavar = "N",
     .help = "a tunnel with no byte either way for N ms is closed", .field = field<&IngressConfig::idle_timeout_ms>,
     .low = 1000, .high = 86400000},
    {.table = "timeouts", .key = "half_closed_ms", .field = field<&IngressConfig::half_closed_timeout_ms>,
     .low = 100, .high = 3600000},
    {.table = "timeouts", .key = "drain_deadline_ms", .field = field<&IngressConfig::drain_deadline_ms>,
     .low = 1000, .high = 3600000},

    {.table = "admin", .key = "listen", .flag = "--admin", .metavar = "ADDR:PORT",
     .help = "admin listener (/healthz, /metrics, /api/backends); empty: disabled",
     .field = field<&IngressConfig::admin_listen>, .check = config::check_listen_address},
    {.table = "admin", .key = "token_file", .flag = "--admin-token-file", .metavar = "FILE",
     .help = "bearer token for POST drain/enable; none: they are refused",
     .field = field<&IngressConfig::admin_token_file>, .check = config::check_file},
    {.table = "admin", .key = "allowed_hosts", .field = field<&IngressConfig::admin_allowed_hosts>,
     .check = config::check_host_name},

    {.flag = "--check-config", .help = "validate settings and certificates, print the effective configuration, exit",
     .field = field<&IngressConfig::check_config>},
};

constexpr config::Schema schema{.program = "mf-ingress",
                                .settings = settings,
                                .config_file = field<&IngressConfig::config_file>,
                                .record_type = &config::type_tag<IngressConfig>};

bool same_address(const SocketAddress& a, const SocketAddress& b) {
  return a.length == b.length && std::memcmp(&a.storage, &b.storage, a.length) == 0;
}

std::expected<void, ConfigError> check_together(const config::SettingsReader& reader, const IngressConfig& config) {
  if (config.listen.empty())
    return std::unexpected(reader.error_at(&config.listen, "needs an address: it is the ingress's only listener"));
  if (auto ok = reader.check_listeners_apart({&config.listen, &config.admin_listen}); !ok) return ok;

  // Two entries for one backend would double its share and its health checks.
  std::vector<SocketAddress> addresses;
  for (const BackendSetting& backend : config.backends) {
    auto address = parse_socket_address(backend.address);
    if (!address) std::abort();  // checked when read
    for (size_t earlier = 0; earlier < addresses.size(); ++earlier) {
      if (!same_address(addresses[earlier], *address)) continue;
      config::Origin first = reader.origin(&config.backends[earlier].address);
      std::string line = first.kind == config::Origin::Kind::file ? fmt::format(" (line {})", first.line) : "";
      return std::unexpected(reader.error_at(
          &backend.address, fmt::format("{} is already a backend{}", config::printable(backend.address), line)));
    }
    addresses.push_back(*address);
  }

  // A probe still waiting when the next is due would overlap it.
  if (config.health_timeout_ms >= config.health_interval_ms) {
    const void* culprit = reader.blame(&config.health_timeout_ms, &config.health_interval_ms);
    return std::unexpected(reader.error_at(
        culprit, culprit == &config.health_timeout_ms
                     ? fmt::format("must be below {} ({})", reader.name(&config.health_interval_ms),
                                   config.health_interval_ms)
                     : fmt::format("must exceed {} ({})", reader.name(&config.health_timeout_ms),
                                   config.health_timeout_ms)));
  }
  return {};
}

}  // namespace

std::string ingress_usage() {
  const IngressConfig defaults;
  return config::usage(schema, &defaults);
}

std::expected<IngressConfig, ConfigError> parse_ingress_arguments(std::span<const std::string_view> arguments,
                                                                  const ConfigFileReader& read_file) {
  IngressConfig config;
  config::SettingsReader reader(schema, config);
  if (auto ok = reader.read_arguments(arguments, read_file); !ok) return std::unexpected(ok.error());
  if (auto ok = check_together(reader, config); !ok) return std::unexpected(ok.error());
  return config;
}

std::expected<IngressConfig, ConfigError> parse_ingress_config_file(std::string_view toml_text,
                                                                    std::string_view file_name) {
  IngressConfig config;
  config::SettingsReader reader(schema, config);
  if (auto ok = reader.read_file(toml_text, file_name); !ok) return std::unexpected(ok.error());
  if (auto ok = check_together(reader, config); !ok) return std::unexpected(ok.error());
  return config;
}

std::expected<IngressConfig, ConfigError> parse_ingress_arguments(int argc, char** argv) {
  std::expected<IngressConfig, ConfigError> (*parse)(std::span<const std::string_view>, const ConfigFileReader&) =
      parse_ingress_arguments;
  return config::parse_process_arguments(argc, argv, parse);
}

std::string describe(const IngressConfig& config) { return config::describe(schema, &config); }

}  // namespace mf::ingress
