#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace mf {

// Incremental UTF-8 (RFC 3629) validator for text that arrives in pieces.
//
// Accepts exactly the shortest-form encodings of U+0000..U+10FFFF excluding
// the surrogates U+D800..U+DFFF. feed() fails as soon as the bytes seen so far
// cannot be the prefix of any valid text (fail fast: a WebSocket peer must be
// closed with 1007 at the first bad byte, not at the end of the message).
// Failure is sticky until reset().
//
// The state is three bytes because it lives in every connection: the number
// of continuation bytes still expected and the allowed range of the next one.
// Only the byte right after a lead byte has a narrowed range; that is how
// overlong forms (E0, F0), surrogates (ED) and code points above U+10FFFF (F4)
// are rejected without decoding the code point.
class Utf8Validator {
 public:
  // Returns false when the text seen so far (since construction or reset)
  // cannot be a prefix of valid UTF-8.
  bool feed(std::span<const uint8_t> bytes);

  // True when the text seen so far is complete, valid UTF-8 (not inside a
  // multi-byte sequence and not failed).
  bool at_boundary() const { return pending_ == 0; }

  void reset() { *this = Utf8Validator{}; }

 private:
  static constexpr uint8_t kFailed = 0xFF;

  uint8_t pending_ = 0;  // continuation bytes still expected, or kFailed
  uint8_t next_lo_ = 0x80;  // inclusive range of the next continuation byte
  uint8_t next_hi_ = 0xBF;
};

// One-shot check that `bytes` is complete, valid UTF-8.
bool is_valid_utf8(std::span<const uint8_t> bytes);

// The longest prefix of `text` of at most `max_bytes` that does not end
// inside a character: the cut moves back over continuation bytes (10xxxxxx).
// Valid UTF-8 in, valid UTF-8 out (a truncated quote in an error message
// must not make the message invalid JSON).
inline std::string_view utf8_prefix(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<uint8_t>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

}  // namespace mf
