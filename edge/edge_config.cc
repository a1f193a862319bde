#include "edge/edge_config.h"

#include <fmt/core.h>
#include <unistd.h>

#include "edge/sdk_message.h"
#include "edge/tracker_message.h"

namespace mf::edge {
namespace {

using config::field;
using config::Setting;

// An edge id: docs/protocol.md section 2 characters; empty in the file: HOSTNAME-PID.
std::expected<void, std::string> check_edge_id(std::string_view value, const Setting&, bool from_flag) {
  if (value.empty()) {
    if (from_flag) return std::unexpected("needs a value");
    return {};
  }
  if (!is_valid_identifier(value))
    return std::unexpected(fmt::format("{} must be 1..128 bytes of [A-Za-z0-9._:-]", config::printable(value)));
  return {};
}

// The WebSocket path: a request path other than the health check's.
std::expected<void, std::string> check_websocket_path(std::string_view value, const Setting& setting, bool from_flag) {
  if (auto ok = config::check_request_path(value, setting, from_flag); !ok) return ok;
  if (value == "/healthz") return std::unexpected("'/healthz' is the health check's path");
  return {};
}

// The tracker's WebSocket path: empty (off), or a request path other than
// the health check's.
std::expected<void, std::string> check_tracker_path(std::string_view value, const Setting& setting, bool from_flag) {
  if (value.empty()) return {};
  return check_websocket_path(value, setting, from_flag);
}

// A Valkey key prefix: printable ASCII without space, braces (the hash tags
// are the edge's) or quotes, at most 64 bytes; may be empty.
std::expected<void, std::string> check_key_prefix(std::string_view value, const Setting&, bool) {
  if (value.size() > 64) return std::unexpected("must be at most 64 bytes");
  for (char c : value)
    if (c <= ' ' || c > '~' || c == '{' || c == '}' || c == '"')
      return std::unexpected(fmt::format("{}: printable ASCII without space, braces or quotes",
                                         config::printable(value)));
  return {};
}

// One operator-facing setting per line: where it lives in the file, its
// flag, how it is checked (common/config/config_schema.h).
constexpr Setting settings[] = {
    {.table = "edge", .key = "id", .flag = "--edge-id", .metavar = "ID",
     .help = "this edge's id, sent in `joined` (default HOSTNAME-PID)", .field = field<&EdgeConfig::edge_id>,
     .check = check_edge_id},
    {.table = "edge", .key = "shards", .flag = "--shards", .metavar = "N",
     .help = "shard threads, one per core; 0: one per online CPU", .field = field<&EdgeConfig::shards>, .high = 256},
    {.table = "edge", .key = "log_level", .flag = "--log-level", .metavar = "LEVEL",
     .help = "error|warning|notice|info|debug", .field = field<&EdgeConfig::log_level>, .check = config::check_log_level},

    {.table = "listen", .key = "public", .flag = "--listen", .metavar = "ADDR:PORT",
     .help = "public WebSocket listener, wss when [tls] is set; empty: none", .field = field<&EdgeConfig::listen>,
     .check = config::check_listen_address},
    {.table = "listen", .key = "plain", .flag = "--plain-listen", .metavar = "ADDR:PORT",
     .help = "second listener, always plain ws (behind the ingress); empty: none",
     .field = field<&EdgeConfig::plain_listen>, .check = config::check_listen_address},
    {.table = "listen", .key = "proxy_protocol", .flag = "--proxy-protocol", .metavar = "",
     .help = "expect a PROXY v2 header on the plain listener", .field = field<&EdgeConfig::proxy_protocol>},
    {.table = "listen", .key = "websocket_path", .flag = "--ws-path", .metavar = "PATH",
     .help = "the WebSocket path", .field = field<&EdgeConfig::websocket_path>, .check = check_websocket_path},

    {.table = "tls", .key = "certificate", .flag = "--tls-cert", .metavar = "FILE",
     .help = "certificate chain (PEM); with the key, the public listener serves wss",
     .field = field<&EdgeConfig::tls_certificate>, .check = config::check_file},
    {.table = "tls", .key = "key", .flag = "--tls-key", .metavar = "FILE",
     .help = "private key (PEM); omit both for plain ws", .field = field<&EdgeConfig::tls_key>, .check = config::check_file},
    {.table = "tls", .key = "watch_interval_ms", .flag = "--tls-watch-interval-ms", .metavar = "N",
     .help = "check the certificate and key files for changes this often; 0: on SIGHUP only",
     .field = field<&EdgeConfig::tls_watch_interval_ms>, .low = 10, .high = 3600000, .zero_allowed = true},
    {.table = "tls", .key = "ticket_rotation_s", .field = field<&EdgeConfig::ticket_rotation_s>, .low = 60,
     .high = 604800, .zero_allowed = true},

    {.table = "limits", .key = "max_connections_per_shard", .flag = "--max-connections-per-shard", .metavar = "N",
     .help = "connections per shard; 0: the descriptor table the kernel allows (RLIMIT_NOFILE)",
     .field = field<&EdgeConfig::max_connections_per_shard>, .low = 16, .high = 1u << 20, .zero_allowed = true},
    {.table = "limits", .key = "max_connections", .flag = "--max-connections", .metavar = "N",
     .help = "connections edge-wide, then 503; 0: unlimited", .field = field<&EdgeConfig::max_connections>},
    {.table = "limits", .key = "max_message_bytes", .flag = "--max-message-bytes", .metavar = "N",
     .help = "WebSocket message limit, close 1009 above", .field = field<&EdgeConfig::max_message_bytes>, .low = 256,
     .high = 1u << 24},
    {.table = "limits", .key = "per_source_connections", .flag = "--per-source-connections", .metavar = "N",
     .help = "open connections per client address, then 429; 0: unlimited",
     .field = field<&EdgeConfig::per_source_connections>},
    {.table = "limits", .key = "per_source_rate", .flag = "--per-source-rate", .metavar = "N",
     .help = "new connections per second per client address, then 429; 0: unlimited",
     .field = field<&EdgeConfig::per_source_rate>, .high = 1000000},
    {.table = "limits", .key = "per_source_burst", .field = field<&EdgeConfig::per_source_burst>, .low = 1,
     .high = 1000000},
    {.table = "limits", .key = "per_source_ipv4_prefix", .field = field<&EdgeConfig::per_source_ipv4_prefix>,
     .low = 8, .high = 32},
    {.table = "limits", .key = "per_source_ipv6_prefix", .field = field<&EdgeConfig::per_source_ipv6_prefix>,
     .low = 16, .high = 128},
    {.table = "limits", .key = "reserve_percent", .flag = "--reserve-percent", .metavar = "N",
     .help = "% of each shard's slots kept for admitted connections; 0: none",
     .field = field<&EdgeConfig::reserve_percent>, .high = 50},
    {.table = "limits", .key = "messages_per_second", .flag = "--messages-per-second", .metavar = "N",
     .help = "messages per second per connection, then rate-limited", .field = field<&EdgeConfig::messages_per_second>,
     .low = 1, .high = 1000000},
    {.table = "limits", .key = "message_burst", .flag = "--message-burst", .metavar = "N",
     .help = "messages a connection may send at once", .field = field<&EdgeConfig::message_burst>, .low = 1,
     .high = 1000000},
    // ErrorBudget counts in bytes: at most 254 errors per window.
    {.table = "limits", .key = "error_limit", .field = field<&EdgeConfig::error_limit>, .low = 1, .high = 254},
    {.table = "limits", .key = "error_window_ms", .field = field<&EdgeConfig::error_window_ms>, .low = 100,
     .high = 3600000},
    {.table = "limits", .key = "send_queue_bytes", .field = field<&EdgeConfig::send_queue_bytes>, .low = 4096,
     .high = 1u << 30},

    {.table = "timeouts", .key = "handshake_ms", .flag = "--handshake-timeout-ms", .metavar = "N",
     .help = "TLS + HTTP upgrade deadline", .field = field<&EdgeConfig::handshake_timeout_ms>, .low = 100,
     .high = 600000},
    {.table = "timeouts", .key = "first_bytes_ms", .flag = "--first-bytes-timeout-ms", .metavar = "N",
     .help = "accept to the first byte (ClientHello, head); 0: handshake deadline only",
     .field = field<&EdgeConfig::first_bytes_timeout_ms>, .low = 100, .high = 600000, .zero_allowed = true},
    {.table = "timeouts", .key = "heartbeat_ms", .flag = "--heartbeat-ms", .metavar = "N",
     .help = "ping after N ms without traffic; close 4002 at 2.5 N", .field = field<&EdgeConfig::heartbeat_ms>,
     .low = 100, .high = 600000},
    {.table = "timeouts", .key = "drain_ms", .flag = "--drain-ms", .metavar = "N",
     .help = "on drain, clients are told to reconnect spread over N ms", .field = field<&EdgeConfig::drain_ms>,
     .high = 600000},
    {.table = "timeouts", .key = "drain_deadline_ms", .field = field<&EdgeConfig::drain_deadline_ms>, .low = 1000,
     .high = 3600000},

    {.table = "admission", .key = "allowed_origins", .flag = "--allowed-origin", .metavar = "ORIGIN",
     .help = "accepted Origin, exactly (repeatable; replaces the file's list); none: any",
     .field = field<&EdgeConfig::allowed_origins>, .check = config::check_origin},
    {.table = "admission", .key = "require_origin", .field = field<&EdgeConfig::require_origin>},
    {.table = "admission", .key = "jwt_secret_file", .flag = "--jwt-secret-file", .metavar = "FILE",
     .help = "HS256 key; when set, ?token= must be a valid JWT", .field = field<&EdgeConfig::jwt_secret_file>,
     .check = config::check_file},

    {.table = "admission", .key = "jwt_leeway_s", .field = field<&EdgeConfig::jwt_leeway_s>, .high = 86400},

    {.table = "policy", .key = "file", .flag = "--policy", .metavar = "FILE",
     .help = "JSON policy document; none: built-in defaults", .field = field<&EdgeConfig::policy_file>,
     .check = config::check_file},
    {.table = "policy", .key = "watch", .field = field<&EdgeConfig::policy_watch>},

    {.table = "admin", .key = "listen", .flag = "--admin", .metavar = "ADDR:PORT",
     .help = "admin listener (/metrics); empty: disabled", .field = field<&EdgeConfig::admin_listen>,
     .check = config::check_listen_address},
    {.table = "admin", .key = "allowed_hosts", .field = field<&EdgeConfig::admin_allowed_hosts>,
     .check = config::check_host_name},
    {.table = "admin", .key = "history_period_ms", .flag = "--history-period-ms", .metavar = "MS",
     .help = "one sample of the operator page's history per period", .field = field<&EdgeConfig::history_period_ms>,
     .low = 100, .high = 3600000},
    {.table = "admin", .key = "history_samples", .field = field<&EdgeConfig::history_samples>, .low = 2, .high = 8640},

    {.table = "valkey", .key = "address", .flag = "--valkey", .metavar = "HOST:PORT",
     .help = "Valkey (or Redis 7) shared by the edges of a cluster; empty: run alone",
     .field = field<&EdgeConfig::valkey_address>, .check = config::check_host_port},
    {.table = "valkey", .key = "cluster_seeds", .flag = "--valkey-cluster", .metavar = "HOST:PORT",
     .help = "a node of the Valkey Cluster shared by the edges (repeat for more seeds); instead of --valkey",
     .field = field<&EdgeConfig::valkey_cluster_seeds>, .check = config::check_host_port},
    {.table = "valkey", .key = "username", .field = field<&EdgeConfig::valkey_username>},
    {.table = "valkey", .key = "password_file", .field = field<&EdgeConfig::valkey_password_file>,
     .check = config::check_file},
    {.table = "valkey", .key = "key_prefix", .flag = "--valkey-prefix", .metavar = "PREFIX",
     .help = "prefix of every Valkey key and channel", .field = field<&EdgeConfig::valkey_key_prefix>,
     .check = check_key_prefix},
    {.table = "valkey", .key = "presence_ttl_ms", .flag = "--valkey-ttl-ms", .metavar = "N",
     .help = "presence records expire N ms after their last refresh",
     .field = field<&EdgeConfig::valkey_presence_ttl_ms>, .low = 300, .high = 3600000},
    {.table = "valkey", .key = "refresh_ms", .field = field<&EdgeConfig::valkey_refresh_ms>, .low = 100,
     .high = 3600000},

    {.table = "tracker", .key = "path", .flag = "--tracker-path", .metavar = "PATH",
     .help = "WebSocket path of the WebTorrent tracker protocol; empty: off", .field = field<&EdgeConfig::tracker_path>,
     .check = check_tracker_path},
    {.table = "tracker", .key = "max_offers", .field = field<&EdgeConfig::tracker_max_offers>, .low = 1,
     .high = max_tracker_offers_parsed},
    {.table = "tracker", .key = "interval_s", .flag = "--tracker-interval-s", .metavar = "N",
     .help = "announce interval given to tracker clients; silent 1.5 N: gone",
     .field = field<&EdgeConfig::tracker_interval_s>, .low = 1, .high = 86400},
    {.table = "tracker", .key = "offer_ttl_s", .field = field<&EdgeConfig::tracker_offer_ttl_s>, .low = 1,
     .high = 3600},
    {.table = "tracker", .key = "max_message_bytes", .field = field<&EdgeConfig::tracker_max_message_bytes>,
     .low = 256, .high = 1u << 24},

    {.flag = "--check-config", .help = "validate settings, certificates and kernel features, print the "
                                       "effective configuration, exit",
     .field = field<&EdgeConfig::check_config>},
};

constexpr config::Schema schema{.program = "mf-edge",
                                .settings = settings,
                                .config_file = field<&EdgeConfig::config_file>,
                                .record_type = &config::type_tag<EdgeConfig>};

std::expected<void, ConfigError> check_together(const config::SettingsReader& reader, const EdgeConfig& config) {
  const std::string& certificate = config.tls_certificate;
  const std::string& key = config.tls_key;
  if (certificate.empty() != key.empty()) {
    const std::string& given = certificate.empty() ? key : certificate;
    const std::string& missing = certificate.empty() ? certificate : key;
    return std::unexpected(
        reader.error_at(&given, fmt::format("{} is missing: give both or neither", reader.name(&missing))));
  }
  if (config.listen.empty() && config.plain_listen.empty())
    return std::unexpected(reader.error_at(reader.blame(&config.listen, &config.plain_listen),
                                           fmt::format("no listener: {} and {} are both empty",
                                                       reader.name(&config.listen), reader.name(&config.plain_listen))));
  if (!certificate.empty() && config.listen.empty())
    return std::unexpected(reader.error_at(reader.blame(&certificate, &config.listen),
                                           fmt::format("TLS serves {}, which is empty", reader.name(&config.listen))));
  if (config.proxy_protocol && config.plain_listen.empty())
    return std::unexpected(reader.error_at(reader.blame(&config.proxy_protocol, &config.plain_listen),
                                           fmt::format("{} needs {}: only that listener expects the header",
                                                       reader.name(&config.proxy_protocol),
                                                       reader.name(&config.plain_listen))));
  if (!config.valkey_address.empty() && !config.valkey_cluster_seeds.empty())
    return std::unexpected(reader.error_at(
        reader.blame(&config.valkey_address, &config.valkey_cluster_seeds),
        fmt::format("{} and {} exclude each other: one server or a cluster", reader.name(&config.valkey_address),
                    reader.name(&config.valkey_cluster_seeds))));
  if (!config.valkey_password_file.empty() && config.valkey_address.empty() && config.valkey_cluster_seeds.empty())
    return std::unexpected(reader.error_at(&config.valkey_password_file,
                                           fmt::format("needs {} or {}", reader.name(&config.valkey_address),
                                                       reader.name(&config.valkey_cluster_seeds))));
  if (auto ok = reader.check_listeners_apart({&config.listen, &config.plain_listen, &config.admin_listen}); !ok)
    return ok;

  // A relayed signal carries up to a whole client message plus its envelope:
  // the queue must take one while another is still leaving.
  if (static_cast<uint64_t>(config.send_queue_bytes) < 2ull * config.max_message_bytes) {
    const void* culprit = reader.blame(&config.send_queue_bytes, &config.max_message_bytes);
    return std::unexpected(reader.error_at(
        culprit, culprit == &config.send_queue_bytes
                     ? fmt::format("must be at least twice {} ({})", reader.name(&config.max_message_bytes),
                                   2ull * config.max_message_bytes)
                     : fmt::format("twice this ({}) exceeds {} ({})", 2ull * config.max_message_bytes,
                                   reader.name(&config.send_queue_bytes), config.send_queue_bytes)));
  }
  if (!config.tracker_path.empty() && config.tracker_path == config.websocket_path)
    return std::unexpected(reader.error_at(reader.blame(&config.tracker_path, &config.websocket_path),
                                           fmt::format("{} and {} must differ", reader.name(&config.tracker_path),
                                                       reader.name(&config.websocket_path))));
  if (!config.tracker_path.empty() &&
      static_cast<uint64_t>(config.send_queue_bytes) < 2ull * config.tracker_max_message_bytes) {
    const void* culprit = reader.blame(&config.send_queue_bytes, &config.tracker_max_message_bytes);
    return std::unexpected(reader.error_at(
        culprit, culprit == &config.send_queue_bytes
                     ? fmt::format("must be at least twice {} ({})", reader.name(&config.tracker_max_message_bytes),
                                   2ull * config.tracker_max_message_bytes)
                     : fmt::format("twice this ({}) exceeds {} ({})", 2ull * config.tracker_max_message_bytes,
                                   reader.name(&config.send_queue_bytes), config.send_queue_bytes)));
  }
  if (config.drain_deadline_ms <= config.drain_ms) {
    const void* culprit = reader.blame(&config.drain_deadline_ms, &config.drain_ms);
    return std::unexpected(reader.error_at(
        culprit, culprit == &config.drain_deadline_ms
                     ? fmt::format("must exceed {} ({}): the last client told to reconnect needs time to go",
                                   reader.name(&config.drain_ms), config.drain_ms)
                     : fmt::format("must be below {} ({}): the last client told to reconnect needs time to go",
                                   reader.name(&config.drain_deadline_ms), config.drain_deadline_ms)));
  }
  return {};
}

}  // namespace

std::string edge_usage() {
  const EdgeConfig defaults;
  return config::usage(schema, &defaults);
}

std::expected<EdgeConfig, ConfigError> parse_edge_arguments(std::span<const std::string_view> arguments,
                                                            const ConfigFileReader& read_file) {
  EdgeConfig config;
  config::SettingsReader reader(schema, config);
  if (auto ok = reader.read_arguments(arguments, read_file); !ok) return std::unexpected(ok.error());
  if (auto ok = check_together(reader, config); !ok) return std::unexpected(ok.error());
  return config;
}

std::expected<EdgeConfig, ConfigError> parse_edge_config_file(std::string_view toml_text, std::string_view file_name) {
  EdgeConfig config;
  config::SettingsReader reader(schema, config);
  if (auto ok = reader.read_file(toml_text, file_name); !ok) return std::unexpected(ok.error());
  if (auto ok = check_together(reader, config); !ok) return std::unexpected(ok.error());
  return config;
}

std::expected<EdgeConfig, ConfigError> parse_edge_arguments(int argc, char** argv) {
  std::expected<EdgeConfig, ConfigError> (*parse)(std::span<const std::string_view>, const ConfigFileReader&) =
      parse_edge_arguments;
  auto config = config::parse_process_arguments(argc, argv, parse);
  if (config && config->edge_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    config->edge_id = fmt::format("{}-{}", host, getpid());
  }
  return config;
}

std::string describe(const EdgeConfig& config) { return config::describe(schema, &config); }

}  // namespace mf::edge
