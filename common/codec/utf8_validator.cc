#include "common/codec/utf8_validator.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace mf {
namespace {

constexpr uint64_t kHighBits = 0x8080808080808080ull;

inline uint64_t load_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Returns the first non-ASCII byte of [p, end), or end. Long ASCII runs go
// 16 bytes per step.
inline const uint8_t* skip_ascii(const uint8_t* p, const uint8_t* end) {
  while (end - p >= 16 && ((load_u64(p) | load_u64(p + 8)) & kHighBits) == 0) p += 16;
  while (end - p >= 8) {
    const uint64_t high = load_u64(p) & kHighBits;
    if (high != 0) {
      if constexpr (std::endian::native == std::endian::little) {
        return p + std::countr_zero(high) / 8;
      }
      break;
    }
    p += 8;
  }
  while (p != end && *p < 0x80) ++p;
  return p;
}

}  // namespace

bool Utf8Validator::feed(std::span<const uint8_t> bytes) {
  if (pending_ == kFailed) return false;
  const uint8_t* p = bytes.data();
  const uint8_t* const end = p + bytes.size();
  uint8_t pending = pending_;
  uint8_t lo = next_lo_;
  uint8_t hi = next_hi_;

  // Finish a sequence left open by the previous feed().
  for (; pending != 0 && p != end; --pending, ++p) {
    if (*p < lo || *p > hi) {
      pending_ = kFailed;
      return false;
    }
    lo = 0x80;
    hi = 0xBF;
  }

  while (p != end) {
    p = skip_ascii(p, end);
    if (p == end) break;
    const uint8_t c = *p++;
    if (c < 0xC2) {  // stray continuation byte, or overlong 2-byte lead
      pending_ = kFailed;
      return false;
    }
    if (c < 0xE0) {
      pending = 1;
      lo = 0x80;
      hi = 0xBF;
    } else if (c < 0xF0) {
      pending = 2;
      lo = c == 0xE0 ? 0xA0 : 0x80;  // E0 80..9F would be overlong
      hi = c == 0xED ? 0x9F : 0xBF;  // ED A0..BF would be a surrogate
    } else if (c < 0xF5) {
      pending = 3;
      lo = c == 0xF0 ? 0x90 : 0x80;  // F0 80..8F would be overlong
      hi = c == 0xF4 ? 0x8F : 0xBF;  // F4 90.. would exceed U+10FFFF
    } else {
      pending_ = kFailed;
      return false;
    }
    const size_t have = std::min<size_t>(pending, static_cast<size_t>(end - p));
    for (size_t k = 0; k < have; ++k, --pending) {
      if (p[k] < lo || p[k] > hi) {
        pending_ = kFailed;
        return false;
      }
      lo = 0x80;
      hi = 0xBF;
    }
    p += have;
  }
  pending_ = pending;
  next_lo_ = lo;
  next_hi_ = hi;
  return true;
}

bool is_valid_utf8(std::span<const uint8_t> bytes) {
  Utf8Validator v;
  return v.feed(bytes) && v.at_boundary();
}

}  // namespace mf
