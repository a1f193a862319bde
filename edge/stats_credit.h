#pragma once
// What one peer's `stats` may add to its stream's offload totals
// (docs/protocol.md, "stats"). The client reports cumulative counters since
// its join; the edge credits the increase, bounded by what is plausible for
// the time the peer has been joined, so one peer cannot inflate a stream's
// totals or its offload ratio, whatever it sends:
//   - each byte counter: everything credited since the join is at most
//     max_bytes_per_second (1 Gbit/s) times (time joined + grace_ms);
//   - connectedProposals: at most the candidates this connection was sent.
// What exceeds the bound is dropped (not carried over) and reported as
// clamped. Pure: the caller passes the time.
#include <cstdint>
#include <optional>

#include "edge/stream_table.h"

namespace mf::edge {

struct ReportedStats {
  std::optional<uint64_t> p2p_bytes, cdn_bytes, uploaded_bytes, connected_proposals;
};

class StatsCredit {
 public:
  static constexpr uint64_t max_bytes_per_second = 125'000'000;
  static constexpr uint64_t grace_ms = 1000;

  // A join (or switch): counters start again from zero.
  void start(uint64_t now_ms) {
    *this = StatsCredit{};
    joined_ms_ = now_ms;
  }
  // The increase to add to the stream; `clamped` is set when a value was cut
  // to its bound. `proposals_received`: candidates this connection was sent
  // in `peers` since the join.
  StreamStats credit(const ReportedStats& report, uint64_t now_ms, uint64_t proposals_received, bool& clamped);

  const StreamStats& credited() const { return credited_; }

 private:
  uint64_t joined_ms_ = 0;
  StreamStats reported_;  // the last cumulative values seen
  StreamStats credited_;  // what was credited since the join
};

}  // namespace mf::edge
