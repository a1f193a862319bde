#pragma once
// GET /api/streams on the admin listener: every stream of this edge with its
// peers per rendition, its cumulative activity counters and its offload
// totals, merged from the shards' snapshots (the same collection as
// /metrics). The schema is documented in docs/edge.md; the operator page (/)
// reads it every second and computes rates from consecutive answers.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "edge/edge_metrics.h"

namespace mf::edge {

// Streams ordered by peers (most first), then by id; at most `max_streams`
// of them, and only as many as keep the whole document within `max_bytes`
// ("truncated" says when some were left out, "streamCount" counts all).
// `now_ms` is the edge's monotonic clock, for rates.
std::string format_streams_json(const std::vector<std::unique_ptr<MetricsSnapshot>>& shards, std::string_view edge_id,
                                uint64_t now_ms, size_t max_streams, size_t max_bytes);

}  // namespace mf::edge
