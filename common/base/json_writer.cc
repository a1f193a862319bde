#include "common/base/json_writer.h"

#include <array>
#include <charconv>
#include <cstring>

namespace mf {

void JsonWriter::raw(std::string_view text) {
  if (out_.size() - size_ < text.size()) {
    ok_ = false;
    return;
  }
  std::memcpy(out_.data() + size_, text.data(), text.size());
  size_ += text.size();
}

namespace {

// plain_bytes[c]: c is written as it is inside a JSON string (RFC 8259
// escapes only the quote, the backslash and the control characters).
constexpr auto plain_bytes = [] {
  std::array<bool, 256> table{};
  for (int c = 0x20; c < 256; ++c) table[c] = c != '"' && c != '\\';
  return table;
}();

}  // namespace

void JsonWriter::string(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  put('"');
  // Runs of plain bytes are copied whole (an identifier is one run); only
  // the bytes between runs are escaped one by one.
  size_t at = 0;
  while (at < text.size()) {
    size_t run_end = at;
    while (run_end < text.size() && plain_bytes[static_cast<unsigned char>(text[run_end])]) ++run_end;
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
