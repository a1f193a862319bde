#pragma once
// Per-connection limits of docs/protocol.md section 5: the message rate budget
// (`rate-limited`) and the error budget ("more than 20 errors within 10 s
// closes with 1008"). Pure state machines: the caller passes the time, in
// milliseconds of any monotonic clock, and the configured limits on every
// call, so one connection's state holds no copy of the configuration.
#include <algorithm>
#include <array>
#include <cstdint>

#include "common/net/token_bucket.h"

namespace mf::edge {

using mf::TokenBucket;  // common/net/token_bucket.h

// Counts errors of one connection in a sliding window kept as 16 time
// slots of ceil(window_ms / 15) ms each: the slot of `now` and the 15
// before it. Guarantees, for slot width s = ceil(window_ms / 15):
//   - any limit + 1 errors whose first and last are less than window_ms
//     apart are all counted together (no late close);
//   - errors 16 * s ms or more apart are never counted together (for the
//     default 10 s window: never when 10.672 s or more apart).
//
// Layout (24 bytes): newest_slot (u64) is now_ms / s at the last error;
// counts[k] (u8) holds the errors of slot number k modulo 16. Counts
// saturate at 255; since max_limit is 254, a saturated slot alone already
// exceeds any limit, so the sum never understates an exceeded budget.
class ErrorBudget {
 public:
  static constexpr uint32_t max_limit = 254;
  static constexpr uint32_t slots = 16;

  // Records one error at now_ms. True when more than `limit` errors are now
  // in the window (it stays true for later errors until old ones expire).
  // `limit` above max_limit acts as max_limit; window_ms 0 acts as 1.
  bool record_error(uint64_t now_ms, uint32_t limit, uint64_t window_ms) {
    uint64_t slot_ms = std::max<uint64_t>(1, (window_ms + slots - 2) / (slots - 1));
    uint64_t slot = now_ms / slot_ms;
    if (slot > newest_slot_) {
      // Clear the slots that the window slid past (all of them after a gap
      // of a whole window or more).
      uint64_t advanced = std::min<uint64_t>(slot - newest_slot_, slots);
      for (uint64_t i = 1; i <= advanced; ++i) counts_[(newest_slot_ + i) % slots] = 0;
      newest_slot_ = slot;
    }
    // A clock that steps back counts the error in the newest slot.
    uint8_t& count = counts_[newest_slot_ % slots];
    if (count < 255) ++count;
    uint32_t total = 0;
    for (uint8_t c : counts_) total += c;
    return total > std::min(limit, max_limit);
  }

  // Forgets every error (e.g. when the slot is reused for a new connection).
  void reset() { *this = ErrorBudget{}; }

 private:
  uint64_t newest_slot_ = 0;
  std::array<uint8_t, slots> counts_{};
};
static_assert(sizeof(ErrorBudget) == 24);

}  // namespace mf::edge
