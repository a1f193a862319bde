#include "edge/edge_config.h"

#include <fmt/core.h>
#include <unistd.h>

#include <charconv>
#include <string_view>

namespace mf::edge {
namespace {

constexpr std::string_view usage =
    "usage: mf-edge [options]\n"
    "  --listen ADDR:PORT        WebSocket listener (default 127.0.0.1:8445)\n"
    "  --tls-cert FILE           certificate chain (PEM); with --tls-key serves wss\n"
    "  --tls-key FILE            private key (PEM); omit both for plain ws\n"
    "  --shards N                shard threads, one per core (default: online CPUs)\n"
    "  --max-connections N       connections per shard (default: RLIMIT_NOFILE)\n"
    "  --heartbeat-ms N          server ping after N ms without traffic; close 4002 at 2.5 N (default 15000)\n"
    "  --handshake-timeout-ms N  TLS + HTTP upgrade deadline (default 10000)\n"
    "  --max-message-bytes N     WebSocket message limit, close 1009 above (default 16384)\n"
    "  --ws-path PATH            WebSocket path (default /ws)\n"
    "  --edge-id ID              this edge's id (default HOSTNAME-PID)\n"
    "  --log-level LEVEL         error|warning|notice|info|debug (default info)\n"
    "  --check-config            validate settings, certificates and kernel features, then exit\n"
    "  --help                    this text\n";

bool parse_u32(std::string_view text, uint32_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && !text.empty();
}

}  // namespace

std::expected<EdgeConfig, ConfigError> parse_edge_arguments(int argc, char** argv) {
  EdgeConfig config;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    size_t eq = arg.find('=');
    bool inline_value = arg.starts_with("--") && eq != std::string_view::npos;
    if (inline_value) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    auto need = [&](std::string_view name) -> std::expected<std::string_view, ConfigError> {
      if (inline_value) return value;
      if (i + 1 >= argc) return std::unexpected(ConfigError{fmt::format("{} needs a value", name)});
      return std::string_view(argv[++i]);
    };
    auto number = [&](std::string_view name, uint32_t& out) -> std::expected<void, ConfigError> {
      auto v = need(name);
      if (!v) return std::unexpected(v.error());
      if (!parse_u32(*v, out)) return std::unexpected(ConfigError{fmt::format("{}: '{}' is not a number", name, *v)});
      return {};
    };
    std::expected<void, ConfigError> ok;
    if (arg == "--help" || arg == "-h") {
      fmt::print("{}", usage);
      return std::unexpected(ConfigError{"", 0});
    } else if (arg == "--listen") {
      auto v = need(arg);
      if (!v) return std::unexpected(v.error());
      config.listen = std::string(*v);
    } else if (arg == "--tls-cert") {
      auto v = need(arg);
      if (!v) return std::unexpected(v.error());
      config.tls_certificate = std::string(*v);
    } else if (arg == "--tls-key") {
      auto v = need(arg);
      if (!v) return std::unexpected(v.error());
      config.tls_key = std::string(*v);
    } else if (arg == "--shards") {
      ok = number(arg, config.shards);
    } else if (arg == "--max-connections") {
      ok = number(arg, config.max_connections_per_shard);
    } else if (arg == "--heartbeat-ms") {
      ok = number(arg, config.heartbeat_ms);
    } else if (arg == "--handshake-timeout-ms") {
      ok = number(arg, config.handshake_timeout_ms);
    } else if (arg == "--max-message-bytes") {
      ok = number(arg, config.max_message_bytes);
    } else if (arg == "--ws-path") {
      auto v = need(arg);
      if (!v) return std::unexpected(v.error());
      config.websocket_path = std::string(*v);
    } else if (arg == "--edge-id") {
      auto v = need(arg);
      if (!v) return std::unexpected(v.error());
      config.edge_id = std::string(*v);
    } else if (arg == "--log-level") {
      auto v = need(arg);
      if (!v) return std::unexpected(v.error());
      config.log_level = std::string(*v);
    } else if (arg == "--check-config") {
      config.check_config = true;
    } else {
      return std::unexpected(ConfigError{fmt::format("unknown option '{}' (see --help)", argv[i])});
    }
    if (!ok) return std::unexpected(ok.error());
  }
  if (config.tls_certificate.empty() != config.tls_key.empty())
    return std::unexpected(ConfigError{"--tls-cert and --tls-key go together"});
  if (config.heartbeat_ms < 100) return std::unexpected(ConfigError{"--heartbeat-ms must be at least 100"});
  if (config.max_message_bytes < 256 || config.max_message_bytes > (1u << 24))
    return std::unexpected(ConfigError{"--max-message-bytes must be 256..16777216"});
  if (config.websocket_path.empty() || config.websocket_path.front() != '/')
    return std::unexpected(ConfigError{"--ws-path must start with '/'"});
  if (config.shards > 256) return std::unexpected(ConfigError{"--shards must be 1..256"});
  if (config.edge_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    config.edge_id = fmt::format("{}-{}", host, getpid());
  }
  return config;
}

}  // namespace mf::edge
