#include "edge/stats_credit.h"

#include <algorithm>

namespace mf::edge {
namespace {

// Bytes a peer may have moved in `ms` at max_bytes_per_second (saturating).
uint64_t plausible_bytes(uint64_t ms) {
  uint64_t seconds = ms / 1000, rest = ms % 1000;
  if (seconds > UINT64_MAX / StatsCredit::max_bytes_per_second) return UINT64_MAX;
  return seconds * StatsCredit::max_bytes_per_second + rest * (StatsCredit::max_bytes_per_second / 1000);
}

// The increase of one cumulative counter: a value below the last one means
// the client restarted that counter, so the whole value is new. Then bounded
// so that credited + increase <= cap.
uint64_t credit_one(const std::optional<uint64_t>& value, uint64_t& last, uint64_t& credited, uint64_t cap,
                    bool& clamped) {
  if (!value) return 0;
  uint64_t increase = *value >= last ? *value - last : *value;
  last = *value;
  uint64_t room = cap > credited ? cap - credited : 0;
  if (increase > room) {
    clamped = true;
    increase = room;
  }
  credited += increase;
  return increase;
}

}  // namespace

StreamStats StatsCredit::credit(const ReportedStats& report, uint64_t now_ms, uint64_t proposals_received,
                                bool& clamped) {
  uint64_t joined_for = now_ms > joined_ms_ ? now_ms - joined_ms_ : 0;
  uint64_t byte_cap = plausible_bytes(joined_for + grace_ms);
  StreamStats delta;
  delta.p2p_bytes = credit_one(report.p2p_bytes, reported_.p2p_bytes, credited_.p2p_bytes, byte_cap, clamped);
  delta.cdn_bytes = credit_one(report.cdn_bytes, reported_.cdn_bytes, credited_.cdn_bytes, byte_cap, clamped);
  delta.uploaded_bytes =
      credit_one(report.uploaded_bytes, reported_.uploaded_bytes, credited_.uploaded_bytes, byte_cap, clamped);
  delta.connected_proposals = credit_one(report.connected_proposals, reported_.connected_proposals,
                                         credited_.connected_proposals, proposals_received, clamped);
  return delta;
}

}  // namespace mf::edge
