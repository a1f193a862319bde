#pragma once
// The scan of a JSON string's plain bytes, for edge/json_reader.h: the
// bytes from `p` up to the first that a string's walk must look at (the
// closing quote, a backslash, a control character, the lead byte of a
// multi-byte character), at most one block (string_block bytes); and the
// same for an identifier's bytes (identifier_run).
// One vector load where the target has SSE2 or AVX2. It loads a whole
// block from `p` whatever the text's length: the caller guarantees the
// padding (json_reader_padding) and decides only on what is inside the text.
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/base/byte_words.h"

#if defined(__AVX2__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mf::edge::json_scan {

// A string's scan stops at the closing quote, a backslash, a control
// character (refused) and the lead byte of a multi-byte character.
// plain_bytes(p): the bytes at p before the first stop, at most
// string_block (the load reads string_block bytes).
#if defined(__AVX2__)
inline constexpr size_t string_block = 32;

// A byte repeated over a vector, kept in memory (json_string_scan.cc): a
// comparison takes it as its memory operand, where _mm256_set1_epi8 was
// rebuilt in registers (three instructions) at every inlined use. Defined
// out of line so that the compiler cannot see the value and rebuild it.
struct alignas(32) SplatBytes {
  char bytes[32];
};
inline __m256i vector_of(const SplatBytes& s) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(s.bytes)); }
extern const SplatBytes quote_splat, backslash_splat, space_splat;
// identifier_run()'s: the bounds (exclusive) of '-'..'.', '0'..':', 'A'..'Z',
// 'a'..'z', then '_'.
extern const SplatBytes identifier_splats[9];

// The stops in the block at p, one bit per byte.
inline uint32_t stop_mask(const char* p) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i quote = _mm256_cmpeq_epi8(v, vector_of(quote_splat));
  const __m256i backslash = _mm256_cmpeq_epi8(v, vector_of(backslash_splat));
  // Signed: below 0x20 are the control characters and 0x80..0xFF.
  const __m256i control_or_lead = _mm256_cmpgt_epi8(vector_of(space_splat), v);
  const __m256i stops = _mm256_or_si256(_mm256_or_si256(quote, backslash), control_or_lead);
  return static_cast<uint32_t>(_mm256_movemask_epi8(stops));
}

inline size_t plain_bytes(const char* p) {
  const uint32_t stops = stop_mask(p);
  return stops == 0 ? string_block : static_cast<size_t>(std::countr_zero(stops));
}
#elif defined(__SSE2__)
inline constexpr size_t string_block = 16;

inline size_t plain_bytes(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
  const __m128i backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
  // Signed: below 0x20 are the control characters and 0x80..0xFF.
  const __m128i control_or_lead = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
  const auto stops = static_cast<uint32_t>(_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control_or_lead)));
  return stops == 0 ? string_block : static_cast<size_t>(std::countr_zero(stops));
}
#else
inline constexpr size_t string_block = 8;

inline bool is_string_stop(char c) {
  const auto u = static_cast<uint8_t>(c);
  return c == '"' || c == '\\' || u < 0x20 || u >= 0x80;
}

inline size_t plain_bytes(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  using namespace byte_words;
  const uint64_t stops = bytes_equal(v, '"') | bytes_equal(v, '\\') | bytes_below(v, 0x20) | (v & high_bits);
  if (stops == 0) return string_block;
  if constexpr (std::endian::native == std::endian::little) return static_cast<size_t>(std::countr_zero(stops)) / 8;
  size_t i = 0;
  while (!is_string_stop(p[i])) ++i;
  return i;
}
#endif

// plain_bytes_wide(p): plain_bytes() over two blocks, at most
// 2 * string_block; one test for both. It reads 2 * string_block bytes from
// p: the caller calls it only where the text itself holds them (a long
// string's middle), not relying on the padding.
#if defined(__AVX2__)
inline size_t plain_bytes_wide(const char* p) {
  const uint64_t stops = uint64_t{stop_mask(p)} | uint64_t{stop_mask(p + string_block)} << 32;
  return stops == 0 ? 2 * string_block : static_cast<size_t>(std::countr_zero(stops));
}
#else
inline size_t plain_bytes_wide(const char* p) {
  const size_t first = plain_bytes(p);
  return first < string_block ? first : first + plain_bytes(p + string_block);
}
#endif

// Whether c belongs to a peerId or stream id: [A-Za-z0-9._:-]
// (docs/protocol.md section 2), one table load per byte. The vector forms
// of identifier_run below test the same class as byte ranges.
inline constexpr auto identifier_byte_table = [] {
  std::array<bool, 256> table{};
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (const char c : {'.', '_', ':', '-'}) table[static_cast<uint8_t>(c)] = true;
  return table;
}();
inline bool is_identifier_byte(char c) { return identifier_byte_table[static_cast<uint8_t>(c)]; }

// identifier_run(p): the bytes at p that belong to a peerId or stream id
// ([A-Za-z0-9._:-], docs/protocol.md section 2) before the first that does
// not, at most string_block (the load reads string_block bytes). In signed
// bytes every range below is positive, so no byte above 0x7F is in one.
#if defined(__AVX2__)
inline size_t identifier_run(const char* p) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  // Within (below, above), both exclusive.
  const auto in = [&v](const SplatBytes& below, const SplatBytes& above) {
    return _mm256_and_si256(_mm256_cmpgt_epi8(v, vector_of(below)), _mm256_cmpgt_epi8(vector_of(above), v));
  };
  const __m256i ok = _mm256_or_si256(
      _mm256_or_si256(in(identifier_splats[0], identifier_splats[1]), in(identifier_splats[2], identifier_splats[3])),
      _mm256_or_si256(_mm256_or_si256(in(identifier_splats[4], identifier_splats[5]),
                                      in(identifier_splats[6], identifier_splats[7])),
                      _mm256_cmpeq_epi8(v, vector_of(identifier_splats[8]))));
  const auto stops = ~static_cast<uint32_t>(_mm256_movemask_epi8(ok));
  return stops == 0 ? string_block : static_cast<size_t>(std::countr_zero(stops));
}
#elif defined(__SSE2__)
inline size_t identifier_run(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const auto in = [&v](char lo, char hi) {
    return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(static_cast<char>(lo - 1))),
                         _mm_cmplt_epi8(v, _mm_set1_epi8(static_cast<char>(hi + 1))));
  };
  const __m128i ok = _mm_or_si128(_mm_or_si128(in('-', '.'), in('0', ':')),
                                  _mm_or_si128(_mm_or_si128(in('A', 'Z'), in('a', 'z')),
                                               _mm_cmpeq_epi8(v, _mm_set1_epi8('_'))));
  const auto stops = ~static_cast<uint32_t>(_mm_movemask_epi8(ok)) & 0xFFFFu;
  return stops == 0 ? string_block : static_cast<size_t>(std::countr_zero(stops));
}
#else
inline size_t identifier_run(const char* p) {
  size_t i = 0;
  while (i < string_block && is_identifier_byte(p[i])) ++i;
  return i;
}
#endif

// The first block of the string whose opening quote is at `quote`: where
// its plain bytes stop, and whether that stop is its closing quote (a body
// of plain bytes shorter than a block). The body must start at or before
// `end`.
struct FirstBlock {
  const char* stop;
  bool closes;
};
inline FirstBlock scan_first_block(const char* quote, const char* end) {
  const size_t plain = plain_bytes(quote + 1);
  const char* const stop = quote + 1 + plain;
  return {stop, plain < string_block && stop < end && *stop == '"'};
}

// The closing quote of the string whose opening quote is at `quote`, when
// its body is plain bytes shorter than a block (a key, an identifier, most
// values: decided by one load); nullptr for any other string, which the
// caller then walks in full. The body must start at or before `end`.
inline const char* short_plain_string_close(const char* quote, const char* end) {
  const FirstBlock first = scan_first_block(quote, end);
  return first.closes ? first.stop : nullptr;
}

}  // namespace mf::edge::json_scan
