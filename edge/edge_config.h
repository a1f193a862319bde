#pragma once
// mf-edge settings: defaults serve a development setup with no file at all;
// flags override. Validation happens here, at start, with one clear line.
#include <cstdint>
#include <expected>
#include <string>
#include <vector>

namespace mf::edge {

struct EdgeConfig {
  std::string listen = "127.0.0.1:8445";
  std::string tls_certificate;  // empty with tls_key empty: plain WebSocket
  std::string tls_key;
  uint32_t shards = 0;          // 0: one per online CPU
  uint32_t max_connections_per_shard = 0;  // 0: the per-ring maximum (RLIMIT_NOFILE)
  uint32_t heartbeat_ms = 15000;
  uint32_t handshake_timeout_ms = 10000;
  uint32_t max_message_bytes = 16 * 1024;
  std::string websocket_path = "/ws";
  std::string edge_id;          // default: hostname-pid
  std::string log_level = "info";
  bool check_config = false;
};

// Parses argv. On --help prints usage and returns an empty error with
// exit_code 0; otherwise the error is one line.
struct ConfigError {
  std::string message;
  int exit_code = 2;
};
std::expected<EdgeConfig, ConfigError> parse_edge_arguments(int argc, char** argv);

}  // namespace mf::edge
