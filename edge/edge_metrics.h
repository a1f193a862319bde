#pragma once
// What one shard reports for /metrics and /api/streams, and the Prometheus
// text of all shards merged (the JSON is in streams_json.h). Each shard fills a snapshot of its own counters on request (shard
// 0 asks every shard by message: no counter is read across threads); shard 0
// merges them and renders. Stream series are limited to the top streams by
// bytes so the label cardinality stays bounded.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/tls/tls_context.h"
#include "common/http/websocket_server.h"
#include "edge/edge_history.h"
#include "edge/stream_signal_counts.h"
#include "edge/stream_table.h"
#include "edge/tracker_swarms.h"

namespace mf::edge {

// The WebTorrent tracker protocol (docs/tracker.md), per shard.
struct TrackerCounters {
  uint64_t announces = 0;          // announces handled by the swarm's shard
  uint64_t offers_relayed = 0;     // offers delivered to a peer's connection
  uint64_t answers_relayed = 0;    // answers delivered to the offer's sender
  uint64_t scrapes = 0;
  uint64_t failures = 0;           // failure reasons sent (all causes below included)
  uint64_t peer_id_taken = 0;      // announces refused: the peer_id is bound to another connection
  uint64_t answers_refused = 0;    // answers without a matching outstanding offer
  uint64_t full_scrapes_refused = 0;
  uint64_t oversized_closed = 0;   // connections closed 1009 (SDK messages above the SDK limit included)
  uint64_t offers_to_edges = 0;    // offers published to a member on another edge
  uint64_t answers_to_edges = 0;   // answers published back to the offerer's edge
};

struct EdgeCounters {
  uint64_t joins = 0;
  uint64_t leaves = 0;
  uint64_t signals_relayed = 0;  // delivered by this shard to its connection
  uint64_t signals_failed = 0;   // answered with peer-not-found
  uint64_t signals_dropped = 0;  // lost to a full mailbox
  uint64_t proposals = 0;        // candidates sent in `peers`
  uint64_t policy_pushes = 0;
  uint64_t takeovers = 0;
  uint64_t errors[9] = {};       // by SdkErrorCode
  uint64_t mailbox_drops = 0;
  uint64_t rejected_origin = 0;
  uint64_t rejected_token = 0;
  uint64_t rejected_capacity = 0;
  uint64_t rejected_per_source = 0;
  uint64_t late_grants_undone = 0;    // claims and seats given back by the reply of an abandoned join
  uint64_t obligation_anomalies = 0;  // something held that no path gave back (logged; then given back)
  uint64_t replies_unsent = 0;        // replies that could not be written (logged)
  uint64_t sessions_refused = 0;      // joins refused: no cryptographic randomness for a session
  uint64_t stats_clamped = 0;         // `stats` messages with a value cut to its plausible bound
  StreamStats offload;                // every credited `stats` increase (this shard's streams), saturating
  uint64_t obligations_deferred = 0;  // releases, leaves and replies that waited for a full mailbox (none lost)
  uint64_t certificate_reloads_ok = 0;      // shard 0: changed certificate files loaded
  uint64_t certificate_reloads_failed = 0;  // shard 0: changed certificate files refused (the old pair serves)
  uint64_t reloads_ok = 0;                  // shard 0: SIGHUP reloads applied
  uint64_t reloads_failed = 0;              // shard 0: SIGHUP reloads refused (the running settings stay)
  uint64_t error_limit_closes = 0;    // connections closed 1008: more errors than error_limit in error_window_ms
  // Signal packets (edge/signal_packet_pool.h): finished here but of another
  // shard, put in a batch for home; taken home from a batch; and the runs of
  // the timer that sends batches not yet full home (armed only while one waits).
  uint64_t signal_packets_batched = 0;
  uint64_t signal_packets_returned = 0;
  uint64_t signal_return_timer_runs = 0;
  TrackerCounters tracker;
};

// The cluster of edges through Valkey (docs/cluster.md), per shard.
// What /metrics shows of a shard's Valkey client (its valkey::Counters,
// copied by the cluster sync: the edge's core does not include the client).
struct ValkeyLinkCounters {
  uint64_t commands_sent = 0, dropped = 0, failed_disconnected = 0, error_replies = 0, reconnects = 0, timeouts = 0;
  uint64_t redirects_moved = 0, redirects_ask = 0, map_refreshes = 0;  // Valkey Cluster only
};

struct ClusterCounters {
  uint64_t signals_sent = 0;      // signals published to another edge
  uint64_t signals_received = 0;  // signals from another edge delivered here
  uint64_t remote_proposals = 0;  // candidates from other edges sent in `peers`
  uint64_t peers_timeouts = 0;    // `peers` sent with local candidates only: Valkey too slow
  uint64_t skipped = 0;           // writes not sent while Valkey was down (redone when it is back)
  uint64_t takeovers = 0;         // claims that took over a holder on another edge (it gets 4001)
  uint64_t claims_refused = 0;    // joins refused peer-id-taken because another edge holds the peerId
  uint64_t superseded = 0;        // local connections closed 4001: their owner key names another holder
  uint64_t viewers_full = 0;      // joins refused stream-full by the cluster-wide viewer count
  uint64_t policy_loads = 0;      // policy documents applied from Valkey
  uint64_t location_hits = 0;     // cross-edge signals published from the peer-location cache (no lookup)
  uint64_t location_lookups = 0;  // cross-edge signals that looked their target up in Valkey
  uint64_t signals_bounced = 0;   // signals sent to a cached location that had moved: looked up again
};

// Join-to-peers latency: from the `join` message read to its `peers` sent.
struct LatencyHistogram {
  static constexpr std::array<double, 11> bounds_seconds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                            0.05,   0.1,   0.25,   0.5,   1.0};
  std::array<uint64_t, bounds_seconds.size() + 1> buckets{};  // per bucket (not cumulative); last is +Inf
  uint64_t count = 0;
  double sum_seconds = 0;

  void record(double seconds);
  void merge(const LatencyHistogram& other);
};

struct MetricsSnapshot {
  uint64_t round = 0;  // the collection round it answers (ShardCollection)
  EdgeCounters edge;
  WebSocketServerCounters websocket;
  uint64_t connections = 0;   // open WebSocket connections
  uint64_t peers_joined = 0;
  uint64_t peer_claims = 0;     // peerIds held in this shard's directory
  uint64_t obligations_waiting = 0;  // of those, waiting right now
  uint64_t source_open = 0;  // connections counted open by this shard's per-source limits
  uint32_t shard = 0;
  // This shard's io_uring direct-descriptor table: slots held (open,
  // closing and Valkey sockets) and its size (limits.max_connections_per_shard).
  uint64_t descriptors_used = 0;
  uint64_t descriptor_slots = 0;
  // This shard's socket sends (Reactor: one submission carries every
  // queued block, up to Reactor::max_send_vectors).
  uint64_t socket_sends = 0;
  uint64_t socket_send_buffers = 0;
  uint64_t socket_short_sends = 0;
  LatencyHistogram join_to_peers;
  TrackerTotals tracker_swarms;  // the tracker swarms this shard owns
  std::vector<StreamSummary> streams;  // the streams this shard owns
  std::vector<StreamSignals> signals;  // signals delivered to this shard's connections, by stream
  bool draining = false;
  // Test builds (common/base/heap_allocation_counter.h): the process's heap
  // allocations when the /metrics request arrived, before the collection
  // allocated anything; set in shard 0's snapshot.
  uint64_t heap_allocations = 0;
  // Cluster (only with [valkey] address).
  bool cluster_configured = false;
  bool valkey_up = false;  // the command link of this shard is ready
  uint32_t live_edges = 0; // edges this shard last read as alive (itself included)
  ClusterCounters cluster;
  ValkeyLinkCounters valkey;
  std::vector<tls::ServedCertificate> served;  // shard 0, with [tls]: the certificate of the public listener
};

// The edge's totals for a history sample (the same sums as /metrics).
HistoryTotals history_totals(const std::vector<std::unique_ptr<MetricsSnapshot>>& shards, uint64_t now_ms);

// Prometheus text exposition format 0.0.4 of the merged snapshots.
std::string format_prometheus(const std::vector<std::unique_ptr<MetricsSnapshot>>& shards, size_t top_streams);

}  // namespace mf::edge
