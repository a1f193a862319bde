#include "edge/edge_metrics.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/base/heap_allocation_counter.h"
#include "common/base/prometheus_text.h"
#include "edge/sdk_message.h"

namespace mf::edge {

void LatencyHistogram::record(double seconds) {
  size_t i = 0;
  while (i < bounds_seconds.size() && seconds > bounds_seconds[i]) ++i;
  buckets[i]++;
  count++;
  sum_seconds += seconds;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += other.buckets[i];
  count += other.count;
  sum_seconds += other.sum_seconds;
}

namespace {

using prometheus::counter;
using prometheus::gauge;
using prometheus::escape_label_value;
using prometheus::family;
using prometheus::sample;

// Stream ids are [A-Za-z0-9._:-] (docs/protocol.md section 2): nothing to escape in a
// label value.
}  // namespace

HistoryTotals history_totals(const std::vector<std::unique_ptr<MetricsSnapshot>>& shards, uint64_t now_ms) {
  HistoryTotals t;
  t.time_ms = now_ms;
  static_assert(std::size(EdgeCounters{}.errors) == history_error_codes);
  for (const auto& s : shards) {
    t.peers += s->peers_joined;
    t.connections += s->connections;
    t.joins += s->edge.joins;
    t.signals += s->edge.signals_relayed;
    t.p2p_bytes += s->edge.offload.p2p_bytes;
    t.cdn_bytes += s->edge.offload.cdn_bytes;
    for (size_t i = 0; i < history_error_codes; ++i) t.errors[i] += s->edge.errors[i];
  }
  return t;
}

std::string format_prometheus(const std::vector<std::unique_ptr<MetricsSnapshot>>& shards, size_t top_streams) {
  MetricsSnapshot total;
  std::vector<StreamSummary> streams;
  for (const auto& s : shards) {
    const EdgeCounters& e = s->edge;
    EdgeCounters& t = total.edge;
    t.joins += e.joins;
    t.leaves += e.leaves;
    t.signals_relayed += e.signals_relayed;
    t.signals_failed += e.signals_failed;
    t.signals_dropped += e.signals_dropped;
    t.signal_packets_batched += e.signal_packets_batched;
    t.signal_packets_returned += e.signal_packets_returned;
    t.signal_return_timer_runs += e.signal_return_timer_runs;
    total.socket_sends += s->socket_sends;
    total.socket_send_buffers += s->socket_send_buffers;
    total.socket_short_sends += s->socket_short_sends;
    t.proposals += e.proposals;
    t.policy_pushes += e.policy_pushes;
    t.takeovers += e.takeovers;
    for (size_t i = 0; i < std::size(t.errors); ++i) t.errors[i] += e.errors[i];
    t.mailbox_drops += e.mailbox_drops;
    t.rejected_origin += e.rejected_origin;
    t.rejected_token += e.rejected_token;
    t.rejected_capacity += e.rejected_capacity;
    t.rejected_per_source += e.rejected_per_source;
    t.late_grants_undone += e.late_grants_undone;
    t.obligation_anomalies += e.obligation_anomalies;
    t.replies_unsent += e.replies_unsent;
    t.sessions_refused += e.sessions_refused;
    t.obligations_deferred += e.obligations_deferred;
    t.stats_clamped += e.stats_clamped;
    t.certificate_reloads_ok += e.certificate_reloads_ok;
    t.certificate_reloads_failed += e.certificate_reloads_failed;
    t.reloads_ok += e.reloads_ok;
    t.reloads_failed += e.reloads_failed;
    total.served.insert(total.served.end(), s->served.begin(), s->served.end());
    t.error_limit_closes += e.error_limit_closes;
    t.offload.add(e.offload);
    t.tracker.announces += e.tracker.announces;
    t.tracker.offers_relayed += e.tracker.offers_relayed;
    t.tracker.answers_relayed += e.tracker.answers_relayed;
    t.tracker.scrapes += e.tracker.scrapes;
    t.tracker.failures += e.tracker.failures;
    t.tracker.peer_id_taken += e.tracker.peer_id_taken;
    t.tracker.answers_refused += e.tracker.answers_refused;
    t.tracker.full_scrapes_refused += e.tracker.full_scrapes_refused;
    t.tracker.oversized_closed += e.tracker.oversized_closed;
    t.tracker.offers_to_edges += e.tracker.offers_to_edges;
    t.tracker.answers_to_edges += e.tracker.answers_to_edges;
    total.tracker_swarms.swarms += s->tracker_swarms.swarms;
    total.tracker_swarms.peers += s->tracker_swarms.peers;
    total.tracker_swarms.seeders += s->tracker_swarms.seeders;
    total.tracker_swarms.outstanding_offers += s->tracker_swarms.outstanding_offers;
    total.obligations_waiting += s->obligations_waiting;
    total.peer_claims += s->peer_claims;
    total.source_open += s->source_open;
    total.websocket += s->websocket;
    total.connections += s->connections;
    total.peers_joined += s->peers_joined;
    total.join_to_peers.merge(s->join_to_peers);
    total.draining = total.draining || s->draining;
    streams.insert(streams.end(), s->streams.begin(), s->streams.end());
  }
  std::string out;
  out.reserve(8192);
  const EdgeCounters& t = total.edge;
  gauge(out, "mf_edge_connections", "Open WebSocket connections.", total.connections);
  gauge(out, "mf_edge_peers_joined", "Peers joined to a swarm.", total.peers_joined);
  gauge(out, "mf_edge_draining", "1 while the edge drains.", total.draining ? 1 : 0);
  gauge(out, "mf_edge_peer_claims", "peerIds held in the edge's directory (joined or joining).", total.peer_claims);
  gauge(out, "mf_edge_source_open_connections", "Connections counted open by the per-source limits.", total.source_open);
  // Test builds only (common/base/heap_allocation_counter.h): what proves the
  // relay path allocates nothing per signal (tests/system/test_relay_allocations.py).
  if (heap_allocations_counted()) {
    uint64_t allocations = 0;
    for (const auto& s : shards) allocations = std::max(allocations, s->heap_allocations);
    counter(out, "mf_edge_test_heap_allocations_total",
            "Heap allocations by the whole process before this scrape (test builds).", allocations);
  }
  counter(out, "mf_edge_joins_total", "Successful joins (switches included).", t.joins);
  counter(out, "mf_edge_leaves_total", "Peers that left a swarm (leave or close).", t.leaves);
  counter(out, "mf_edge_signals_relayed_total", "Signals delivered to their target.", t.signals_relayed);
  counter(out, "mf_edge_signals_failed_total", "Signals answered with peer-not-found.", t.signals_failed);
  counter(out, "mf_edge_signals_dropped_total", "Signals dropped because a shard mailbox was full.", t.signals_dropped);
  counter(out, "mf_edge_signal_packets_batched_total",
          "Signal packets finished on a shard other than their home, batched to go home.", t.signal_packets_batched);
  counter(out, "mf_edge_signal_packets_returned_total", "Signal packets back on their home shard from a batch.",
          t.signal_packets_returned);
  counter(out, "mf_edge_signal_return_timer_runs_total",
          "Runs of the timer that sends batches of signal packets not yet full home (armed only while one waits).",
          t.signal_return_timer_runs);
  counter(out, "mf_edge_proposals_total", "Candidates sent in peers messages.", t.proposals);
  counter(out, "mf_edge_policy_pushes_total", "policy messages pushed to peers.", t.policy_pushes);
  counter(out, "mf_edge_takeovers_total", "Identities taken over with their session (old connection closed 4001).", t.takeovers);
  counter(out, "mf_edge_mailbox_drops_total", "Cross-shard messages dropped on a full mailbox.", t.mailbox_drops);
  counter(out, "mf_edge_late_grants_undone_total",
          "peerId claims and swarm seats given back by the reply of a join abandoned in flight.", t.late_grants_undone);
  counter(out, "mf_edge_obligation_anomalies_total", "Claims or seats found held where none should be (logged).",
          t.obligation_anomalies);
  counter(out, "mf_edge_replies_unsent_total", "Replies that could not be written (logged).", t.replies_unsent);
  counter(out, "mf_edge_obligations_deferred_total",
          "Releases, leaves and replies that waited for room in a full mailbox (delivered later, never dropped).",
          t.obligations_deferred);
  gauge(out, "mf_edge_obligations_waiting", "Of those, waiting for room right now.", total.obligations_waiting);
  const TrackerCounters& k = t.tracker;
  gauge(out, "mf_edge_tracker_swarms", "WebTorrent tracker swarms (info_hashes with peers).", total.tracker_swarms.swarms);
  gauge(out, "mf_edge_tracker_peers", "Peers in tracker swarms.", total.tracker_swarms.peers);
  gauge(out, "mf_edge_tracker_seeders", "Of those, seeders (left 0 or completed).", total.tracker_swarms.seeders);
  gauge(out, "mf_edge_tracker_outstanding_offers", "Relayed offers that may still be answered.",
        total.tracker_swarms.outstanding_offers);
  counter(out, "mf_edge_tracker_announces_total", "Tracker announces handled.", k.announces);
  counter(out, "mf_edge_tracker_offers_relayed_total", "Tracker offers delivered to a peer.", k.offers_relayed);
  counter(out, "mf_edge_tracker_answers_relayed_total", "Tracker answers delivered to the offer's sender.",
          k.answers_relayed);
  counter(out, "mf_edge_tracker_offers_to_edges_total", "Tracker offers published to a peer on another edge.",
          k.offers_to_edges);
  counter(out, "mf_edge_tracker_answers_to_edges_total", "Tracker answers published back to the offerer's edge.",
          k.answers_to_edges);
  counter(out, "mf_edge_tracker_scrapes_total", "Tracker scrapes answered.", k.scrapes);
  counter(out, "mf_edge_tracker_failures_total", "Tracker failure reasons sent.", k.failures);
  counter(out, "mf_edge_tracker_peer_id_taken_total", "Announces refused: peer_id bound to another connection.",
          k.peer_id_taken);
  counter(out, "mf_edge_tracker_answers_refused_total", "Answers refused: no matching outstanding offer.",
          k.answers_refused);
  counter(out, "mf_edge_tracker_full_scrapes_refused_total", "Scrapes without info_hash refused.",
          k.full_scrapes_refused);
  counter(out, "mf_edge_oversized_messages_closed_total", "Connections closed 1009: a message above the limit.",
          k.oversized_closed);
  counter(out, "mf_edge_sessions_refused_total", "Joins refused for want of cryptographic randomness.", t.sessions_refused);
  out += "# HELP mf_edge_errors_total Error replies sent, by code.\n# TYPE mf_edge_errors_total counter\n";
  static constexpr SdkErrorCode codes[] = {SdkErrorCode::bad_json,      SdkErrorCode::bad_request,   SdkErrorCode::unknown_type,
                                           SdkErrorCode::not_joined,    SdkErrorCode::peer_not_found, SdkErrorCode::peer_id_taken,
                                           SdkErrorCode::stream_full,   SdkErrorCode::mesh_disabled, SdkErrorCode::rate_limited};
  for (SdkErrorCode code : codes)
    fmt::format_to(std::back_inserter(out), "mf_edge_errors_total{{code=\"{}\"}} {}\n", error_code_text(code),
                   t.errors[static_cast<size_t>(code)]);
  out += "# HELP mf_edge_rejected_upgrades_total Upgrades refused by admission, by reason.\n"
         "# TYPE mf_edge_rejected_upgrades_total counter\n";
  fmt::format_to(std::back_inserter(out),
                 "mf_edge_rejected_upgrades_total{{reason=\"origin\"}} {}\n"
                 "mf_edge_rejected_upgrades_total{{reason=\"token\"}} {}\n"
                 "mf_edge_rejected_upgrades_total{{reason=\"capacity\"}} {}\n"
                 "mf_edge_rejected_upgrades_total{{reason=\"per_source\"}} {}\n",
                 t.rejected_origin, t.rejected_token, t.rejected_capacity, t.rejected_per_source);
  const WebSocketServerCounters& w = total.websocket;
  counter(out, "mf_edge_accepted_total", "Connections accepted on the client listeners.", w.accepted);
  counter(out, "mf_edge_tls_handshakes_total", "Completed TLS handshakes.", w.tls_handshakes);
  counter(out, "mf_edge_tls_resumed_total", "TLS handshakes that resumed a session.", w.tls_resumed);
  counter(out, "mf_edge_tls_handshake_failures_total", "TLS sessions that failed.", w.tls_failures);
  family(out, "mf_edge_tls_certificate_reloads_total",
         "Reloads of certificate files that changed on disk or on SIGHUP, by result (failed: the previous pair serves).",
         "counter");
  sample(out, "mf_edge_tls_certificate_reloads_total", "result=\"ok\"", t.certificate_reloads_ok);
  sample(out, "mf_edge_tls_certificate_reloads_total", "result=\"failed\"", t.certificate_reloads_failed);
  family(out, "mf_edge_reloads_total",
         "SIGHUP reloads of the configuration, by result (failed: the running settings stay).", "counter");
  sample(out, "mf_edge_reloads_total", "result=\"ok\"", t.reloads_ok);
  sample(out, "mf_edge_reloads_total", "result=\"failed\"", t.reloads_failed);
  if (!total.served.empty()) {
    family(out, "mf_edge_tls_certificate_expiry_timestamp_seconds", "notAfter of the served certificate (Unix time).",
           "gauge");
    for (const tls::ServedCertificate& served : total.served)
      sample(out, "mf_edge_tls_certificate_expiry_timestamp_seconds",
             fmt::format("certificate=\"{}\"", escape_label_value(served.certificate_chain_path)), served.not_after_s);
  }
  counter(out, "mf_edge_handshake_timeouts_total", "Connections cut at the handshake deadline.", w.handshake_timeouts);
  counter(out, "mf_edge_first_bytes_timeouts_total", "Connections cut for sending no byte before the first-bytes deadline.",
          w.first_bytes_timeouts);
  counter(out, "mf_edge_reserve_evictions_total",
          "Connections not yet upgraded closed to keep the slots reserved for admitted ones.", w.reserve_evictions);
  counter(out, "mf_edge_http_responses_refused_total", "Admin responses larger than the send queue (not sent).",
          w.responses_refused);
  counter(out, "mf_edge_upgrades_total", "WebSocket upgrades accepted.", w.upgrades);
  counter(out, "mf_edge_http_rejections_total", "HTTP requests answered with an error status.", w.http_rejections);
  counter(out, "mf_edge_messages_received_total", "WebSocket messages received.", w.messages_in);
  counter(out, "mf_edge_messages_sent_total", "WebSocket messages sent.", w.messages_out);
  counter(out, "mf_edge_socket_sends_total", "Socket send submissions (each carries every queued block, up to 16).",
          total.socket_sends);
  counter(out, "mf_edge_socket_send_buffers_total", "Send-queue blocks those submissions carried.",
          total.socket_send_buffers);
  counter(out, "mf_edge_socket_short_sends_total", "Sends the kernel took only part of (the rest went next).",
          total.socket_short_sends);
  counter(out, "mf_edge_protocol_closes_total", "Connections closed for a protocol violation (1002/1003/1007/1009).", w.protocol_closes);
  counter(out, "mf_edge_idle_closes_total", "Connections closed idle (4002).", w.idle_closes);
  counter(out, "mf_edge_pings_sent_total", "Liveness pings sent to silent connections.", w.pings_sent);
  counter(out, "mf_edge_pongs_received_total", "Pongs received (answers to liveness pings, or unsolicited).", w.pongs_received);
  counter(out, "mf_edge_slow_consumer_closes_total", "Connections closed because they did not read.", w.slow_consumer_closes);
  out += "# HELP mf_edge_policy_closes_total Connections closed 1008 (policy violation), by reason.\n"
         "# TYPE mf_edge_policy_closes_total counter\n";
  fmt::format_to(std::back_inserter(out),
                 "mf_edge_policy_closes_total{{reason=\"error_limit\"}} {}\n"
                 "mf_edge_policy_closes_total{{reason=\"token_expired\"}} {}\n",
                 t.error_limit_closes, w.deadline_policy_closes);
  out += "# HELP mf_edge_descriptor_table_used Slots held in each shard's io_uring direct-descriptor table.\n"
         "# TYPE mf_edge_descriptor_table_used gauge\n";
  for (const auto& s : shards)
    fmt::format_to(std::back_inserter(out), "mf_edge_descriptor_table_used{{shard=\"{}\"}} {}\n", s->shard,
                   s->descriptors_used);
  out += "# HELP mf_edge_descriptor_table_slots Size of each shard's io_uring direct-descriptor table.\n"
         "# TYPE mf_edge_descriptor_table_slots gauge\n";
  for (const auto& s : shards)
    fmt::format_to(std::back_inserter(out), "mf_edge_descriptor_table_slots{{shard=\"{}\"}} {}\n", s->shard,
                   s->descriptor_slots);

  const LatencyHistogram& h = total.join_to_peers;
  out += "# HELP mf_edge_join_to_peers_seconds From a join read to its peers sent.\n"
         "# TYPE mf_edge_join_to_peers_seconds histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < LatencyHistogram::bounds_seconds.size(); ++i) {
    cumulative += h.buckets[i];
    fmt::format_to(std::back_inserter(out), "mf_edge_join_to_peers_seconds_bucket{{le=\"{}\"}} {}\n",
                   LatencyHistogram::bounds_seconds[i], cumulative);
  }
  cumulative += h.buckets.back();
  fmt::format_to(std::back_inserter(out),
                 "mf_edge_join_to_peers_seconds_bucket{{le=\"+Inf\"}} {}\nmf_edge_join_to_peers_seconds_sum {}\n"
                 "mf_edge_join_to_peers_seconds_count {}\n",
                 cumulative, h.sum_seconds, h.count);

  if (!shards.empty() && shards.front()->cluster_configured) {
    // Only in a cluster ([valkey] address): an edge alone shows none of these.
    bool up = true;
    uint32_t live_edges = UINT32_MAX;
    ClusterCounters c;
    ValkeyLinkCounters v;
    for (const auto& s : shards) {
      up = up && s->valkey_up;
      live_edges = std::min(live_edges, s->live_edges);
      c.signals_sent += s->cluster.signals_sent;
      c.signals_received += s->cluster.signals_received;
      c.remote_proposals += s->cluster.remote_proposals;
      c.peers_timeouts += s->cluster.peers_timeouts;
      c.skipped += s->cluster.skipped;
      c.takeovers += s->cluster.takeovers;
      c.claims_refused += s->cluster.claims_refused;
      c.superseded += s->cluster.superseded;
      c.viewers_full += s->cluster.viewers_full;
      c.policy_loads += s->cluster.policy_loads;
      c.location_hits += s->cluster.location_hits;
      c.location_lookups += s->cluster.location_lookups;
      c.signals_bounced += s->cluster.signals_bounced;
      v.commands_sent += s->valkey.commands_sent;
      v.dropped += s->valkey.dropped;
      v.failed_disconnected += s->valkey.failed_disconnected;
      v.error_replies += s->valkey.error_replies;
      v.reconnects += s->valkey.reconnects;
      v.timeouts += s->valkey.timeouts;
      v.redirects_moved += s->valkey.redirects_moved;
      v.redirects_ask += s->valkey.redirects_ask;
      v.map_refreshes += s->valkey.map_refreshes;
    }
    gauge(out, "mf_edge_valkey_up", "1 when every shard's Valkey command link is ready.", up ? 1 : 0);
    gauge(out, "mf_edge_valkey_live_edges",
          "Edges alive in the cluster (this one included), as read by the shard that last saw the fewest.", live_edges);
    counter(out, "mf_edge_valkey_commands_total", "Commands sent to Valkey.", v.commands_sent);
    counter(out, "mf_edge_valkey_dropped_total", "Commands refused by the client's queue bounds.", v.dropped);
    counter(out, "mf_edge_valkey_failed_total", "Commands that failed (link lost in flight, or an error reply).",
            v.failed_disconnected + v.error_replies);
    counter(out, "mf_edge_valkey_skipped_total", "Writes not sent while Valkey was down (redone when it is back).",
            c.skipped);
    counter(out, "mf_edge_cluster_takeovers_total", "Joins that took over a holder on another edge (it got 4001).",
            c.takeovers);
    counter(out, "mf_edge_cluster_claims_refused_total", "Joins refused peer-id-taken: another edge holds the peerId.",
            c.claims_refused);
    counter(out, "mf_edge_cluster_superseded_total",
            "Connections closed 4001 because their owner key names a holder elsewhere.", c.superseded);
    counter(out, "mf_edge_cluster_viewers_full_total", "Joins refused stream-full by the cluster-wide viewer count.",
            c.viewers_full);
    counter(out, "mf_edge_cluster_policy_loads_total", "Policy documents applied from Valkey.", c.policy_loads);
    counter(out, "mf_edge_valkey_reconnects_total", "Valkey reconnections after a failure.", v.reconnects);
    counter(out, "mf_edge_valkey_timeouts_total", "Valkey connect and command timeouts.", v.timeouts);
    // Valkey Cluster only (0 with one server): docs/cluster.md, "Valkey Cluster".
    counter(out, "mf_edge_valkey_redirects_total",
            "Valkey Cluster MOVED and ASK redirections followed (a slot moved or moving).",
            v.redirects_moved + v.redirects_ask);
    counter(out, "mf_edge_valkey_slot_maps_total", "Valkey Cluster slot maps read (CLUSTER SHARDS).", v.map_refreshes);
    counter(out, "mf_edge_cluster_signals_sent_total", "Signals published to another edge.", c.signals_sent);
    counter(out, "mf_edge_cluster_location_hits_total",
            "Signals to another edge published from the peer-location cache, without a lookup.", c.location_hits);
    counter(out, "mf_edge_cluster_location_lookups_total", "Signals to another edge that looked their target up.",
            c.location_lookups);
    counter(out, "mf_edge_cluster_signals_bounced_total",
            "Signals sent to a cached location the peer had left: looked up again and resent.", c.signals_bounced);
    counter(out, "mf_edge_cluster_signals_received_total", "Signals from another edge delivered here.",
            c.signals_received);
    counter(out, "mf_edge_cluster_proposals_total", "Candidates from other edges sent in peers messages.",
            c.remote_proposals);
    counter(out, "mf_edge_cluster_peers_timeouts_total", "peers sent with local candidates only: Valkey too slow.",
            c.peers_timeouts);
  }
  // Cumulative since start, saturating: these never go down (streams that
  // ended still count), unlike the per-stream series below.
  const StreamStats& all = total.edge.offload;
  counter(out, "mf_edge_p2p_bytes_total", "Bytes players got from peers (stats), since start.", all.p2p_bytes);
  counter(out, "mf_edge_cdn_bytes_total", "Bytes players got from the CDN (stats), since start.", all.cdn_bytes);
  counter(out, "mf_edge_uploaded_bytes_total", "Bytes players uploaded to peers (stats), since start.", all.uploaded_bytes);
  counter(out, "mf_edge_stats_clamped_total", "stats messages with a value cut to what the peer's time joined allows.",
          t.stats_clamped);
  size_t keep = std::min(top_streams, streams.size());
  std::partial_sort(streams.begin(), streams.begin() + static_cast<long>(keep), streams.end(),
                    [](const StreamSummary& a, const StreamSummary& b) {
                      uint64_t ta = a.stats.p2p_bytes + a.stats.cdn_bytes, tb = b.stats.p2p_bytes + b.stats.cdn_bytes;
                      if (ta != tb) return ta > tb;
                      if (a.viewers != b.viewers) return a.viewers > b.viewers;
                      return a.stream_id < b.stream_id;
                    });
  out += "# HELP mf_edge_stream_viewers Peers joined, top streams by bytes.\n# TYPE mf_edge_stream_viewers gauge\n";
  for (size_t i = 0; i < keep; ++i)
    fmt::format_to(std::back_inserter(out), "mf_edge_stream_viewers{{stream=\"{}\"}} {}\n", streams[i].stream_id, streams[i].viewers);
  out += "# HELP mf_edge_stream_p2p_bytes_total Bytes from peers, top streams.\n# TYPE mf_edge_stream_p2p_bytes_total counter\n";
  for (size_t i = 0; i < keep; ++i)
    fmt::format_to(std::back_inserter(out), "mf_edge_stream_p2p_bytes_total{{stream=\"{}\"}} {}\n", streams[i].stream_id,
                   streams[i].stats.p2p_bytes);
  out += "# HELP mf_edge_stream_cdn_bytes_total Bytes from the CDN, top streams.\n# TYPE mf_edge_stream_cdn_bytes_total counter\n";
  for (size_t i = 0; i < keep; ++i)
    fmt::format_to(std::back_inserter(out), "mf_edge_stream_cdn_bytes_total{{stream=\"{}\"}} {}\n", streams[i].stream_id,
                   streams[i].stats.cdn_bytes);
  out += "# HELP mf_edge_stream_uploaded_bytes_total Bytes uploaded to peers, top streams.\n"
         "# TYPE mf_edge_stream_uploaded_bytes_total counter\n";
  for (size_t i = 0; i < keep; ++i)
    fmt::format_to(std::back_inserter(out), "mf_edge_stream_uploaded_bytes_total{{stream=\"{}\"}} {}\n",
                   streams[i].stream_id, streams[i].stats.uploaded_bytes);
  return out;
}

}  // namespace mf::edge
