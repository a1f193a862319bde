#pragma once
// A token bucket for rates the caller checks itself (messages per second of
// a connection, new connections per second of an address). Pure: the caller
// passes the time, in milliseconds of any monotonic clock, and the
// configured limits on every call, so the state holds no configuration.
#include <algorithm>
#include <cstdint>

namespace mf {

// A token bucket: `burst` messages at once, refilled at `rate_per_second`.
//
// Layout (16 bytes): milli_tokens (u64) is the fill in thousandths of a
// token; last_ms (u64) is the time of the last refill. Thousandths make the
// refill exact in integers: rate tokens/s is rate milli-tokens/ms, so every
// elapsed millisecond adds exactly `rate` and no remainder is lost between
// calls. A bucket that was full at last_ms gains nothing from the time it
// spent full.
struct TokenBucket {
  uint64_t milli_tokens = 0;
  uint64_t last_ms = 0;

  // Starts full.
  void init(uint32_t burst, uint64_t now_ms) {
    milli_tokens = uint64_t{burst} * 1000;
    last_ms = now_ms;
  }

  // Refills for the time since the last call, then takes one token if there
  // is one. A clock that stands still or steps back refills nothing (and
  // last_ms never moves back); any gap, however long, refills to `burst`
  // and no further. A smaller `burst` than before caps the fill at once.
  // rate_per_second 0 never refills; burst 0 refuses everything.
  bool take(uint32_t rate_per_second, uint32_t burst, uint64_t now_ms) {
    uint64_t capacity = uint64_t{burst} * 1000;
    if (now_ms > last_ms) {
      uint64_t elapsed = now_ms - last_ms;
      uint64_t missing = capacity > milli_tokens ? capacity - milli_tokens : 0;
      // elapsed * rate > missing, without overflow: below 2^32 ms the
      // product of two 32-bit numbers fits, and it is a multiplication, not
      // a division (this runs for a connection's every message, and a
      // 64-bit divide costs tens of cycles); a longer gap divides.
      const bool fills = (elapsed >> 32) == 0 ? elapsed * rate_per_second > missing
                                              : rate_per_second != 0 && elapsed > missing / rate_per_second;
      if (fills) {
        milli_tokens = capacity;
      } else {
        milli_tokens += elapsed * rate_per_second;
      }
      last_ms = now_ms;
    }
    milli_tokens = std::min(milli_tokens, capacity);
    if (milli_tokens < 1000) return false;
    milli_tokens -= 1000;
    return true;
  }
};
static_assert(sizeof(TokenBucket) == 16);

}  // namespace mf
