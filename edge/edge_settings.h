#pragma once
// mf-edge's settings as the shards use them, built from the configuration
// record (edge/edge_config.h) in one place, edge_shared_from(): the
// addresses parsed, the files read (JWT secret, Valkey password, policy),
// the certificate loaded once, so that every problem stops the start with
// one line. docs/edge.md lists every setting; the numbers that are not
// settings are constants beside the code that uses them, with their reason.
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/listen_socket.h"
#include "common/source_limits.h"
#include "common/tls_context.h"
#include "common/tls_ticket_keys.h"
#include "edge/edge_config.h"
#include "edge/jwt.h"
#include "edge/origin_allow_list.h"
#include "edge/policy.h"
#include "edge/tracker_swarms.h"

namespace mf::edge {

// The numbers the protocol layer needs, resolved from EdgeConfig at start.
struct EdgeSettings {
  std::string edge_id;
  std::string websocket_path = "/ws";
  uint32_t heartbeat_ms = 15000;
  uint32_t handshake_timeout_ms = 10000;
  uint32_t first_bytes_timeout_ms = 3000;  // accept to the first byte; 0: handshake_timeout_ms only
  uint32_t reserve_percent = 10;           // of each shard's slots, kept for admitted connections
  uint32_t max_message_bytes = 16 * 1024;
  uint32_t max_connections = 0;        // edge-wide; 0 = unlimited
  uint32_t messages_per_second = 50;   // per connection
  uint32_t message_burst = 100;
  uint32_t error_limit = 20;           // errors within error_window_ms before 1008
  uint32_t error_window_ms = 10000;
  uint32_t rate_limit_close_after = 20;  // rate-limited drops within error_window_ms before 4003
  uint32_t drain_ms = 10000;           // `reconnect` afterMs spread over [0, drain_ms)
  uint32_t drain_deadline_ms = 30000;  // the process is gone by then
  uint32_t stream_full_retry_ms = 5000;
  std::string policy_file;             // empty: built-in defaults
  bool policy_watch = true;
  // The WebTorrent tracker protocol (docs/tracker.md); path empty: off.
  std::string tracker_path = "/announce";
  uint32_t tracker_max_message_bytes = 64 * 1024;
  TrackerLimits tracker;
  uint32_t tls_watch_interval_ms = 0;  // shard 0 checks the certificate files this often; 0: SIGHUP only
};

// The cluster of edges sharing one Valkey (docs/cluster.md); address empty:
// this edge runs alone and nothing below is used.
struct ClusterSettings {
  std::string address;  // HOST:PORT of one server
  // Or some nodes of a Valkey Cluster (common/valkey_cluster_client.h):
  // sharded pub/sub (SPUBLISH) on the signal channels.
  std::vector<std::string> cluster_seeds;
  bool enabled() const { return !address.empty() || !cluster_seeds.empty(); }
  std::string username, password;
  std::string key_prefix = "mf:";
  uint32_t presence_ttl_ms = 15000;
  uint32_t refresh_ms = 5000;         // already at most presence_ttl_ms / 3
  uint32_t alive_ttl_ms = 3000;       // the edge's liveness key, refreshed every alive_refresh_ms
  uint32_t alive_refresh_ms = 1000;
  uint32_t peers_timeout_ms = 500;    // a `peers` waiting for Valkey goes out with the local candidates then
};

// Built at start-up from the configuration (edge_shared_from), read-only
// afterwards; each shard keeps its own copy, in which a SIGHUP reload
// replaces what take_reloadable() names.
struct EdgeShared {
  EdgeSettings settings;
  std::optional<SocketAddress> listen_address;  // public listener (wss or ws); empty: plain only
  tls::ServerContextConfig tls;  // certificates empty: plain
  uint32_t ticket_rotation_s = 3600;  // tls.ticket_keys' lifetime (shard 0 rotates); 0: never
  std::shared_ptr<const JwtVerifier> jwt;  // empty: no token required
  std::shared_ptr<const OriginAllowList> origins;  // empty: any origin
  std::shared_ptr<const PolicyDocument> initial_policy;
  std::optional<SocketAddress> admin_address;  // served by shard 0
  std::vector<std::string> admin_allowed_hosts;  // Host names of the admin listener besides IP literals, localhost
  std::optional<SocketAddress> plain_address;  // second listener, always plain (behind the ingress)
  // Listening sockets handed over by systemd (socket activation), used
  // instead of binding the matching address; -1: none. Every shard accepts
  // on the same socket (its own dup), the kernel spreading the connections.
  int inherited_public_fd = -1;
  int inherited_plain_fd = -1;
  int inherited_admin_fd = -1;
  bool plain_proxy_protocol = false;           // a PROXY v2 header opens every connection on it
  // Per source (address cut to its prefix), counted at accept: open
  // connections, and new connections (so TLS handshakes) per second.
  SourceLimitSettings per_source;
  size_t metrics_top_streams = 20;
  uint32_t history_period_ms = 10000;  // shard 0 with an admin listener: the history (edge_history.h)
  uint32_t history_samples = 360;
  ClusterSettings cluster;
  // Shard 0 on SIGHUP: the same command line and file read again, checked as
  // at start (edge_shared_from); a problem leaves the running settings.
  std::function<std::expected<std::shared_ptr<const EdgeShared>, std::string>()> reload;
};


// The listening sockets systemd handed over (socket activation), used
// instead of binding the matching address; -1: none.
struct InheritedListeners {
  int public_fd = -1;
  int plain_fd = -1;
  int admin_fd = -1;
};

// Everything the shards need from a validated configuration; the first
// problem as one line naming the setting. `ticket_keys`: the process's
// session-ticket keys (kept across reloads, so resumed sessions survive).
std::expected<EdgeShared, std::string> edge_shared_from(const EdgeConfig& config, const InheritedListeners& inherited,
                                                        std::shared_ptr<TicketKeys> ticket_keys);

// What a SIGHUP reload changes in a running shard's settings: the
// certificate, the limits (edge-wide, per source, per connection), the
// admission checks (origins, JWT) and the drain times (docs/edge.md,
// "Reload"). The rest (listeners, shards, paths, timeouts and sizes the
// servers were built with, the cluster) takes a restart.
void take_reloadable(EdgeShared& running, const EdgeShared& loaded);

}  // namespace mf::edge
