#pragma once
// The edge's recent past for the operator page: a fixed ring of samples, one
// per sample period (docs/edge.md, "History"), kept by shard 0 in memory and
// served as JSON at GET /api/history. Each sample holds what happened during
// its period (rates and byte deltas computed from the cumulative counters of
// two consecutive collections) and the gauges at its end. The ring never
// grows: `capacity` samples of sizeof(HistorySample) bytes, allocated once.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mf::edge {

// The error codes counted per sample, in SdkErrorCode order (sdk_message.h).
inline constexpr size_t history_error_codes = 9;

// Cumulative totals and gauges of the whole edge at one instant, merged from
// every shard's snapshot.
struct HistoryTotals {
  uint64_t time_ms = 0;  // the edge's monotonic clock
  uint64_t peers = 0;
  uint64_t connections = 0;
  uint64_t joins = 0;
  uint64_t signals = 0;  // relayed to their target
  uint64_t p2p_bytes = 0;
  uint64_t cdn_bytes = 0;
  uint64_t errors[history_error_codes] = {};
};

struct HistorySample {
  uint64_t time_ms = 0;     // end of the period
  uint32_t period_ms = 0;   // its length (the first one starts at start-up)
  uint32_t peers = 0;       // at its end
  uint32_t connections = 0;
  uint32_t joins = 0;       // during the period
  uint32_t signals = 0;
  uint32_t errors[history_error_codes] = {};
  uint64_t p2p_bytes = 0;
  uint64_t cdn_bytes = 0;
};

class EdgeHistory {
 public:
  // `start` is the edge at start-up (every counter zero, its clock).
  EdgeHistory(size_t capacity, const HistoryTotals& start);

  // Closes the period since the previous record. A counter lower than
  // before (it cannot be: they are cumulative) counts as no change; a
  // period of zero milliseconds is skipped.
  void record(const HistoryTotals& now);

  size_t size() const { return size_; }
  size_t capacity() const { return ring_.size(); }
  // i = 0 is the oldest sample kept.
  const HistorySample& at(size_t i) const { return ring_[(next_ + ring_.size() - size_ + i) % ring_.size()]; }
  size_t memory_bytes() const { return ring_.size() * sizeof(HistorySample); }

 private:
  std::vector<HistorySample> ring_;
  size_t next_ = 0;
  size_t size_ = 0;
  HistoryTotals last_;
};

// The /api/history document (schema in docs/edge.md): at most `max_bytes`
// long; the oldest samples are left out when they do not all fit
// ("truncated" says so).
std::string format_history_json(const EdgeHistory& history, std::string_view edge_id, uint64_t now_ms,
                                uint32_t period_ms, size_t max_bytes);

}  // namespace mf::edge
