#pragma once
// Whether two short texts (peerIds, stream ids: at most a few dozen bytes)
// hold the same bytes, inline: a word of 8 bytes at a time and the last
// word overlapping, never a byte past either end. The relay compares ids
// several times per signal; a call into the C library's memcmp cost more
// than the comparison itself (docs/benchmarks.md, "One signal's instructions").
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

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
  if (n >= 8) {
    uint64_t differ = word(x + n - 8, uint64_t{}) ^ word(y + n - 8, uint64_t{});
    for (size_t k = 0; k + 8 < n; k += 8) differ |= word(x + k, uint64_t{}) ^ word(y + k, uint64_t{});
    return differ == 0;
  }
  if (n >= 4)
    return ((word(x, uint32_t{}) ^ word(y, uint32_t{})) | (word(x + n - 4, uint32_t{}) ^ word(y + n - 4, uint32_t{}))) == 0;
  bool same = true;
  for (size_t k = 0; k < n; ++k) same &= x[k] == y[k];
  return same;
}

}  // namespace mf
