#pragma once
// mf-ingress settings: the TOML file given with --config, then the flags,
// which override it whatever their order on the command line (the rules are
// common/config/config_schema.h's, shared with mf-edge). Everything is validated
// here, at start, and each problem is one line naming the setting (with
// FILE:LINE for a value from the file, the flag for a value from the command
// line). ingress/mf-ingress.example.toml shows every setting with its
// default; the contract is the ingress issue's.
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/config_schema.h"

namespace mf::ingress {

// [[tls.certificate]]: one certificate the TLS listener can serve; the names
// it serves come from the certificate (SAN DNS names, else CN).
struct CertificateSetting {
  std::string certificate = {};  // chain (PEM, leaf first)
  std::string key = {};          // private key (PEM)
  std::string ocsp_response = {};  // DER OCSP response stapled for it; empty: no stapling

  bool operator==(const CertificateSetting&) const = default;
};

// [[backend]]: one edge (its plain listener with proxy_protocol = true).
struct BackendSetting {
  // Every member has an initializer, so designated initializers may omit any.
  std::string address = {};        // HOST:PORT, numeric; unique among the backends
  uint32_t weight = 1;             // 1..256: share of new tunnels
  uint32_t max_connections = 0;    // tunnels to it, process-wide; 0: unlimited
  std::string check_address = {};  // the health probe's HOST:PORT; empty: `address`
  bool drained = false;            // no new tunnels (existing ones stay)

  bool operator==(const BackendSetting&) const = default;
};

struct IngressConfig {
  // [ingress]
  uint32_t shards = 0;  // 0: one per online CPU
  std::string log_level = "info";

  // [listen]
  std::string listen = "127.0.0.1:8445";  // address: the public TLS listener

  // [tls]
  std::string tls_min_version = "1.2";           // min_version: "1.2" or "1.3"
  std::vector<std::string> alpn = {"http/1.1"};  // protocols offered, in preference order; empty: no ALPN
  uint32_t handshake_timeout_ms = 5000;          // TLS handshake deadline
  uint32_t first_bytes_timeout_ms = 3000;        // accept to the first byte (ClientHello); 0: handshake deadline only
  uint32_t handshakes_per_second = 0;            // new TLS handshakes, process-wide; 0: unlimited
  uint32_t ticket_rotation_s = 3600;             // session-ticket key lifetime; 0: never rotated
  std::string unknown_sni = "refuse";            // SNI matching no certificate: "refuse" or "default"
  uint32_t tls_watch_interval_ms = 1000;         // watch_interval_ms: certificate files checked for changes; 0: SIGHUP only

  // [balance]
  std::string balance_mode = "least-connections";  // mode: "least-connections" or "stream-affinity"
  std::string affinity_parameter = "stream";       // the query parameter hashed by stream-affinity
  uint32_t affinity_load_factor_percent = 125;     // bounded load: at most ceil(factor * average) per backend

  // [health]
  std::string health_path = "/healthz";  // path: the probe's "GET <path>"
  uint32_t health_interval_ms = 2000;
  uint32_t health_timeout_ms = 1000;      // below health_interval_ms
  uint32_t health_fall = 3;               // down after this many consecutive failures
  uint32_t health_rise = 2;               // up after this many consecutive successes
  uint32_t health_slow_start_ms = 10000;  // a returning backend's share ramps up over this; 0: at once

  // [limits]
  uint32_t max_connections = 0;         // tunnels process-wide; 0: the descriptor limit
  uint32_t per_source_connections = 256;  // open connections per client address, counted at accept; 0: unlimited
  uint32_t per_source_rate = 50;          // new connections (so TLS handshakes) per second per client address; 0: unlimited
  uint32_t per_source_burst = 100;        // ... of which this many at once; 0: same as the rate
  uint32_t per_source_ipv4_prefix = 32;   // leading bits of an IPv4 address that name one source
  uint32_t per_source_ipv6_prefix = 64;   // ... of an IPv6 address (a /64 is one subscriber)
  uint32_t reserve_percent = 10;          // of each shard's slots, kept for admitted connections; 0: none
  uint32_t buffer_bytes = 65536;        // per direction: reading one side stops while the other has this queued

  // [timeouts]
  uint32_t connect_timeout_ms = 3000;       // connect_ms: TCP connect to a backend, retries included
  uint32_t idle_timeout_ms = 600000;        // idle_ms: a tunnel with no byte either way is closed
  uint32_t half_closed_timeout_ms = 30000;  // half_closed_ms: after one direction ended
  uint32_t drain_deadline_ms = 30000;       // on SIGTERM, tunnels still open then are closed

  // [admin]
  std::string admin_listen = "127.0.0.1:9446";  // listen: /healthz, /metrics, /api; empty: disabled
  std::string admin_token_file;                  // token_file: bearer token of drain/enable; empty: both refused
  std::vector<std::string> admin_allowed_hosts;  // allowed_hosts: Host names besides IP literals and localhost

  std::vector<CertificateSetting> certificates;  // [[tls.certificate]]: 1..16; the first is the default
  std::vector<BackendSetting> backends;          // [[backend]]: at least one

  // Not settings: how the process was asked to run.
  std::string config_file;  // the --config path; empty: none
  bool check_config = false;

  bool operator==(const IngressConfig&) const = default;
};

using ConfigError = config::ConfigError;
using ConfigFileReader = config::ConfigFileReader;

// Reads --config FILE from disk; on --help prints the usage and returns an
// empty message with exit_code 0.
std::expected<IngressConfig, ConfigError> parse_ingress_arguments(int argc, char** argv);

// The pure core of the above: `arguments` without the program name; the file
// is read only through `read_file`; --help returns the usage text as the
// message with exit_code 0.
std::expected<IngressConfig, ConfigError> parse_ingress_arguments(std::span<const std::string_view> arguments,
                                                                  const ConfigFileReader& read_file);

// Validates a TOML text as the --config file would be (`file_name` appears in
// errors), on top of the defaults, with no flags.
std::expected<IngressConfig, ConfigError> parse_ingress_config_file(std::string_view toml_text,
                                                                    std::string_view file_name);

// The effective configuration as TOML, every setting included; reading it
// back with parse_ingress_config_file gives the same settings.
std::string describe(const IngressConfig& config);

// The --help text.
std::string ingress_usage();

}  // namespace mf::ingress
