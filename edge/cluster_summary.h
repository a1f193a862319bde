#pragma once
// The cluster view of the operator page (docs/edge.md, "Cluster view"):
// each edge's summary, a small JSON object of bounded size (its totals and
// its busiest streams), which shard 0 writes to Valkey every second
// (Psummaries, edge/cluster_keys.h); and GET /api/cluster, this edge's fresh
// summary and the unexpired summaries of the others. Pure: no IO, no clock.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edge/edge_metrics.h"

namespace mf::edge {

// The busiest streams (by peers) a summary lists, and the most edges
// /api/cluster shows: with ids of at most 128 bytes a summary stays near
// 3 KB and the document under 200 KB.
inline constexpr size_t summary_top_streams = 10;
inline constexpr size_t cluster_max_edges = 64;

enum class ValkeyState : uint8_t { off, up, down };

// One edge: {"edge","draining","valkey","shards","connections","peers",
// "joins","signals","errors","p2pBytes","cdnBytes","uploadedBytes",
// "offloadRatio","streamCount","streams":[{"streamId","peers","p2pBytes",
// "cdnBytes","offloadRatio"}]}; the numbers are those of /metrics.
std::string format_edge_summary(const std::vector<std::unique_ptr<MetricsSnapshot>>& shards, std::string_view edge_id,
                                ValkeyState valkey);

// What Valkey holds for an edge: its expiry (Unix ms) and its summary.
std::string encode_summary_record(uint64_t expires_unix_ms, std::string_view summary);
struct SummaryRecord {
  uint64_t expires_unix_ms = 0;
  std::string_view summary;
};
std::optional<SummaryRecord> decode_summary_record(std::string_view record);

// {"edge":<this edge>,"valkey":"off|up|down","edgeCount":N,"truncated":b,
// "edges":[<own summary>, <others, in the given order>]}: at most
// cluster_max_edges edges and `max_bytes` bytes.
std::string format_cluster_json(std::string_view edge_id, ValkeyState valkey, std::string_view own_summary,
                                std::span<const std::string_view> other_summaries, size_t max_bytes);

}  // namespace mf::edge
