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

#include "common/net/listen_socket.h"
#include "common/net/source_limits.h"
#include "common/tls/tls_context.h"
#include "common/tls/tls_ticket_keys.h"
#include "edge/edge_config.h"
#include "edge/jwt.h"
#include "edge/origin_allow_list.h"
#include "edge/policy.h"
#include "edge/tracker_swarms.h"

namespace mf::edge {

// The settings the shards read: the configuration record itself (every
// operator setting, as edge/edge_config.h's schema reads and checks it)
// plus what is derived from it, and the constants that are not settings,
// each with its reason (docs/edge.md, "Constants").
struct EdgeSettings : EdgeConfig {
  TrackerLimits tracker;  // from the [tracker] settings
  // A client that keeps sending past its budget is broken or hostile: this
  // many rate-limited drops within error_window_ms close it with 4003.
  static constexpr uint32_t rate_limit_close_after = 20;
  // The retry hint a join refused with stream-full carries: long enough for
  // a seat to free, short for a viewer.
  static constexpr uint32_t stream_full_retry_ms = 5000;
};

// The cluster of edges sharing one Valkey (docs/cluster.md); address empty:
// this edge runs alone and nothing below is used.
struct ClusterSettings {
  std::string address;  // HOST:PORT of one server
  // Or some nodes of a Valkey Cluster (common/valkey/valkey_cluster_client.h):
  // sharded pub/sub (SPUBLISH) on the signal channels.
  std::vector<std::string> cluster_seeds;
  bool enabled() const { return !address.empty() || !cluster_seeds.empty(); }
  std::string username, password;
  std::string key_prefix = "mf:";
  uint32_t presence_ttl_ms = 15000;
  uint32_t refresh_ms = 5000;         // already at most presence_ttl_ms / 3
  // Constants (docs/edge.md, "Constants"): other edges see a dead edge
  // within alive_ttl_ms; a claim, a seat or a `peers` waits for Valkey at
  // most peers_timeout_ms, then this edge decides alone, as when Valkey is
  // down.
  static constexpr uint32_t alive_ttl_ms = 3000;  // the edge's liveness key, refreshed every alive_refresh_ms
  static constexpr uint32_t alive_refresh_ms = 1000;
  static constexpr uint32_t peers_timeout_ms = 500;
};

class ClusterSync;
class ClusterHost;
struct ClusterSyncContext;
// Makes a shard's cluster sync (edge/cluster_sync.h); set by the program that
// links an implementation (edge/cluster_sync_valkey.h).
using ClusterSyncFactory = std::expected<std::unique_ptr<ClusterSync>, std::string> (*)(const ClusterSyncContext&,
                                                                                       ClusterHost&);

// Built at start-up from the configuration (edge_shared_from), read-only
// afterwards; each shard keeps its own copy, in which a SIGHUP reload
// replaces what take_reloadable() names.
struct EdgeShared {
  EdgeSettings settings;
  std::optional<SocketAddress> listen_address;  // public listener (wss or ws); empty: plain only
  tls::ServerContextConfig tls;  // certificates empty: plain
  std::shared_ptr<const JwtVerifier> jwt;  // empty: no token required
  std::shared_ptr<const OriginAllowList> origins;  // empty: any origin
  std::shared_ptr<const PolicyDocument> initial_policy;
  std::optional<SocketAddress> admin_address;  // served by shard 0
  std::optional<SocketAddress> plain_address;  // second listener, always plain (behind the ingress)
  // Listening sockets handed over by systemd (socket activation), used
  // instead of binding the matching address; -1: none. Every shard accepts
  // on the same socket (its own dup), the kernel spreading the connections.
  int inherited_public_fd = -1;
  int inherited_plain_fd = -1;
  int inherited_admin_fd = -1;
  // Per source (address cut to its prefix), counted at accept: open
  // connections, and new connections (so TLS handshakes) per second.
  SourceLimitSettings per_source;
  // Per-stream series on /metrics are bounded (Prometheus cardinality).
  static constexpr size_t metrics_top_streams = 20;
  ClusterSettings cluster;
  ClusterSyncFactory cluster_sync = nullptr;  // used only with [valkey] address
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
