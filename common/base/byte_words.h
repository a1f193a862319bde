#pragma once
// Tests on the eight bytes of a 64-bit word at once (SWAR), for scans that
// run where no vector instructions are at hand or the text is too short
// for them.
#include <cstdint>

namespace mf::byte_words {

inline constexpr uint64_t ones = 0x0101010101010101ull;
inline constexpr uint64_t high_bits = 0x8080808080808080ull;

// The bytes of `v` below `n` (n <= 0x80) have their high bit set in the
// result. The lowest byte flagged is exact; a borrow out of it may flag
// bytes above it as well. So "no byte flagged" and "the lowest byte
// flagged" are exact answers, and nothing else is.
constexpr uint64_t bytes_below(uint64_t v, uint8_t n) { return (v - ones * n) & ~v & high_bits; }

// The bytes of `v` equal to `c`, flagged as bytes_below() flags them.
constexpr uint64_t bytes_equal(uint64_t v, char c) {
  return bytes_below(v ^ (ones * static_cast<uint8_t>(c)), 1);
}

}  // namespace mf::byte_words
