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
// time while eight are left and none of them needs an escape; then the
// text's last eight bytes at once (they hold what is left, and bytes before
// `at` only make the test fail, never pass wrongly); then byte by byte.
// An identifier of 8 to 16 bytes is two loads.
size_t plain_run_end(std::string_view text, size_t at) {
  const auto word_at = [&text](size_t i) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, sizeof word);
    return word;
  };
  while (text.size() - at >= sizeof(uint64_t)) {
    if (has_escaped_byte(word_at(at))) break;
    at += sizeof(uint64_t);
  }
  if (at == text.size()) return at;
  if (text.size() - at < sizeof(uint64_t) && text.size() >= sizeof(uint64_t) &&
      !has_escaped_byte(word_at(text.size() - sizeof(uint64_t))))
    return text.size();
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
