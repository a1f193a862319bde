#include "common/base/json_writer.h"

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

void JsonWriter::string(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  put('"');
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': put('\\'); put('"'); break;
      case '\\': put('\\'); put('\\'); break;
      case '\n': put('\\'); put('n'); break;
      case '\r': put('\\'); put('r'); break;
      case '\t': put('\\'); put('t'); break;
      default:
        if (c < 0x20) {
          put('\\'); put('u'); put('0'); put('0');
          put(hex[c >> 4]); put(hex[c & 15]);
        } else {
          put(ch);
        }
    }
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
