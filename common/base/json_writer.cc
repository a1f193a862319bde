#include "common/base/json_writer.h"

#include <array>
#include <charconv>
#include <cstring>

#include "common/base/byte_words.h"

namespace mf {

namespace {

// plain_bytes[c]: c is written as it is inside a JSON string (RFC 8259
// escapes only the quote, the backslash and the control characters).
constexpr auto plain_bytes = [] {
  std::array<bool, 256> table{};
  for (int c = 0x20; c < 256; ++c) table[c] = c != '"' && c != '\\';
  return table;
}();

// Some byte of `word` needs an escape: a quote, a backslash, or below 0x20.
inline bool has_escaped_byte(uint64_t word) {
  using namespace byte_words;
  return (bytes_equal(word, '"') | bytes_equal(word, '\\') | bytes_below(word, 0x20)) != 0;
}

// The end of the run of plain bytes that starts at `at`: eight bytes at a
// time while eight are left and none of them needs an escape, then byte by
// byte (an identifier of under 16 bytes is one word and a short tail).
size_t plain_run_end(std::string_view text, size_t at) {
  while (text.size() - at >= sizeof(uint64_t)) {
    uint64_t word;
    std::memcpy(&word, text.data() + at, sizeof word);
    if (has_escaped_byte(word)) break;
    at += sizeof word;
  }
  while (at < text.size() && plain_bytes[static_cast<unsigned char>(text[at])]) ++at;
  return at;
}

}  // namespace

void JsonWriter::string(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  put('"');
  // Runs of plain bytes are copied whole (an identifier is one run); only
  // the bytes between runs are escaped one by one.
  size_t at = 0;
  while (at < text.size()) {
    const size_t run_end = plain_run_end(text, at);
    raw(std::string_view(text.data() + at, run_end - at));
    if (run_end == text.size()) break;
    const auto c = static_cast<unsigned char>(text[run_end]);
    switch (c) {
      case '"': put('\\'); put('"'); break;
      case '\\': put('\\'); put('\\'); break;
      case '\n': put('\\'); put('n'); break;
      case '\r': put('\\'); put('r'); break;
      case '\t': put('\\'); put('t'); break;
      default:
        put('\\'); put('u'); put('0'); put('0');
        put(hex[c >> 4]); put(hex[c & 15]);
    }
    at = run_end + 1;
  }
  put('"');
}

void JsonWriter::number(int64_t value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  raw(std::string_view(digits, static_cast<size_t>(end - digits)));
}

void JsonWriter::unsigned_number(uint64_t value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  raw(std::string_view(digits, static_cast<size_t>(end - digits)));
}

}  // namespace mf
