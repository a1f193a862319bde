#pragma once
// Whether two short texts (peerIds, stream ids: at most a few dozen bytes)
// hold the same bytes, inline: 16 bytes at a time (SSE2), else a word of 8,
// the last piece overlapping the one before, never a byte past either end.
// The relay compares ids several times per signal; a call into the C
// library's memcmp cost more than the comparison itself (docs/benchmarks.md,
// "One signal's instructions").
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mf {

inline bool same_bytes(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  if (n != b.size()) return false;
  const char* const x = a.data();
  const char* const y = b.data();
  const auto word = [](const char* p, auto type) {
    decltype(type) w;
    std::memcpy(&w, p, sizeof w);
    return w;
  };
#if defined(__SSE2__)
  if (n >= 16) {
    // 16 bytes at a time, the last 16 overlapping.
    const auto differ = [](const char* p, const char* q) {
      const __m128i a16 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      const __m128i b16 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
      return _mm_movemask_epi8(_mm_cmpeq_epi8(a16, b16)) != 0xFFFF;
    };
    bool different = differ(x + n - 16, y + n - 16);
    for (size_t k = 0; k + 16 < n; k += 16) different |= differ(x + k, y + k);
    return !different;
  }
#endif
  if (n >= 8) {
    uint64_t differ = word(x + n - 8, uint64_t{}) ^ word(y + n - 8, uint64_t{});
    for (size_t k = 0; k + 8 < n; k += 8) differ |= word(x + k, uint64_t{}) ^ word(y + k, uint64_t{});
    return differ == 0;
  }
  if (n >= 4) {
    const uint32_t differ = (word(x, uint32_t{}) ^ word(y, uint32_t{})) |
                            (word(x + n - 4, uint32_t{}) ^ word(y + n - 4, uint32_t{}));
    return differ == 0;
  }
  bool same = true;
  for (size_t k = 0; k < n; ++k) same &= x[k] == y[k];
  return same;
}

}  // namespace mf
