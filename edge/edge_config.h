#pragma once
// mf-edge settings: the TOML file given with --config, then the flags, which
// override it whatever their order on the command line. The defaults serve a
// development set-up with no file at all. Everything is validated here, at
// start, and each problem is one line naming the setting (with FILE:LINE for
// a value from the file, the flag for a value from the command line).
// edge/mf-edge.example.toml shows every setting with its default.
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/config_schema.h"

namespace mf::edge {

struct EdgeConfig {
  // [edge]
  std::string edge_id;          // id; empty: HOSTNAME-PID (filled by parse_edge_arguments(argc, argv))
  uint32_t shards = 0;          // shards; 0: one per online CPU
  std::string log_level = "info";

  // [listen]
  std::string listen = "127.0.0.1:8445";  // public: TLS when [tls] is set, else plain; empty: none
  std::string plain_listen;               // plain: a second, always plain listener (behind the ingress); empty: none
  bool proxy_protocol = false;            // proxy_protocol: a PROXY v2 header opens every connection on `plain`
  std::string websocket_path = "/ws";

  // [tls] both or neither
  std::string tls_certificate;  // certificate: chain (PEM, leaf first)
  std::string tls_key;          // key: private key (PEM)
  uint32_t tls_watch_interval_ms = 1000;  // watch_interval_ms: both files checked for changes; 0: SIGHUP only
  uint32_t ticket_rotation_s = 3600;  // session-ticket key lifetime; 0: never rotated

  // [limits]; for every cap and rate below, 0 means unlimited only where noted
  uint32_t max_connections_per_shard = 0;  // 0: the per-ring maximum (RLIMIT_NOFILE)
  uint32_t max_connections = 0;            // edge-wide; 0: unlimited; at the cap: 503 with Retry-After
  uint32_t max_message_bytes = 16 * 1024;  // after reassembly; above: close 1009
  uint32_t per_source_connections = 256;   // open connections per source address; 0: unlimited; above: 429
  uint32_t per_source_rate = 50;           // new connections per second per source address; 0: unlimited
  uint32_t per_source_burst = 100;         // ... of which this many at once
  uint32_t per_source_ipv4_prefix = 32;    // leading bits of an IPv4 address that name one source
  uint32_t per_source_ipv6_prefix = 64;    // ... of an IPv6 address (a /64 is one subscriber)
  uint32_t reserve_percent = 10;           // of each shard's slots, kept for admitted connections; 0: none
  uint32_t messages_per_second = 50;       // per connection; above: `rate-limited`
  uint32_t message_burst = 100;
  uint32_t error_limit = 20;               // more errors than this within error_window_ms: close 1008
  uint32_t error_window_ms = 10000;
  uint32_t send_queue_bytes = 256 * 1024;  // bytes queued to a client that is not reading; above: dropped

  // [timeouts]
  uint32_t handshake_timeout_ms = 10000;  // handshake_ms: TLS + HTTP upgrade
  uint32_t first_bytes_timeout_ms = 3000; // first_bytes_ms: accept to the first byte; 0: handshake_ms only
  uint32_t heartbeat_ms = 15000;          // ping after this much silence, close 4002 at 2.5x
  uint32_t drain_ms = 10000;              // `reconnect` afterMs values are spread over [0, drain_ms)
  uint32_t drain_deadline_ms = 30000;     // the process exits by then, connections or not

  // [admission]
  std::vector<std::string> allowed_origins;  // exact origins ("https://example.com"); empty: any
  bool require_origin = false;               // refuse (403) an upgrade without an Origin header
  std::string jwt_secret_file;               // HS256 key for ?token=; empty: no JWT required
  uint32_t jwt_leeway_s = 30;                // clock skew allowed on exp and nbf

  // [policy]
  std::string policy_file;    // file: the JSON policy document; empty: built-in defaults
  bool policy_watch = true;   // watch: reload when the file changes (SIGHUP reloads too)

  // [admin]
  std::string admin_listen = "127.0.0.1:9445";  // listen: /metrics and admin; empty: disabled
  std::vector<std::string> admin_allowed_hosts;  // allowed_hosts: Host names besides IP literals and localhost
  uint32_t history_period_ms = 10000;  // history_period_ms: one /api/history sample per period
  uint32_t history_samples = 360;      // history_samples: samples kept (360 x 10 s: the last hour)

  // [tracker] the WebTorrent tracker protocol beside the SDK's (docs/tracker.md)
  std::string tracker_path = "/announce";    // path: its WebSocket path on the same listeners; empty: off
  uint32_t tracker_max_offers = 10;          // max_offers: offers relayed per announce
  uint32_t tracker_interval_s = 120;         // interval_s: `interval` in replies; silent 1.5 intervals: gone
  uint32_t tracker_offer_ttl_s = 120;        // offer_ttl_s: an offer may be answered this long
  uint32_t tracker_max_message_bytes = 64 * 1024;  // max_message_bytes: above: close 1009

  // [valkey] the cluster of edges sharing one Valkey (docs/cluster.md)
  std::string valkey_address;        // address HOST:PORT; empty: this edge runs alone
  // cluster_seeds: HOST:PORT of some nodes of a Valkey Cluster (instead of
  // address): the edges share the cluster (docs/cluster.md, "Valkey Cluster")
  std::vector<std::string> valkey_cluster_seeds;
  std::string valkey_username;       // username: ACL user (with password_file)
  std::string valkey_password_file;  // password_file: AUTH password; empty: no AUTH
  std::string valkey_key_prefix = "mf:";  // key_prefix: of every key and channel
  uint32_t valkey_presence_ttl_ms = 15000;  // presence_ttl_ms: a peer's records expire this long after the last refresh
  uint32_t valkey_refresh_ms = 5000;        // refresh_ms: refresh period (at most a third of the TTL is used)

  // Not settings: how the process was asked to run.
  std::string config_file;  // the --config path; empty: none
  bool check_config = false;

  bool operator==(const EdgeConfig&) const = default;
};

// One line (the usage text for --help). exit_code: 0 for --help, 2 for a bad
// flag, 1 for a bad file or value from the file.
using ConfigError = config::ConfigError;

// Reads --config FILE from disk, fills edge_id with HOSTNAME-PID when it is
// not set, and on --help prints the usage and returns an empty message with
// exit_code 0.
std::expected<EdgeConfig, ConfigError> parse_edge_arguments(int argc, char** argv);

// The whole content of a file, or a one-line reason it could not be read.
using ConfigFileReader = config::ConfigFileReader;

// The pure core of the above: `arguments` without the program name; the file
// is read only through `read_file`; edge_id stays empty unless set; --help
// returns the usage text as the message with exit_code 0.
std::expected<EdgeConfig, ConfigError> parse_edge_arguments(std::span<const std::string_view> arguments,
                                                            const ConfigFileReader& read_file);

// Validates a TOML text as the --config file would be (`file_name` appears in
// errors), on top of the defaults, with no flags.
std::expected<EdgeConfig, ConfigError> parse_edge_config_file(std::string_view toml_text, std::string_view file_name);

// The effective configuration as TOML, every setting included; reading it
// back with parse_edge_config_file gives the same settings.
std::string describe(const EdgeConfig& config);

// The --help text.
std::string edge_usage();

}  // namespace mf::edge
