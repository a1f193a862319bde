#pragma once
// Writes JSON text into a caller-owned fixed buffer: no allocation, and an
// overflow is reported (ok() false) instead of truncating silently into
// invalid JSON.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace mf {

class JsonWriter {
 public:
  explicit JsonWriter(std::span<char> out) : out_(out) {}

  // Verbatim text (punctuation, keys we control, already-valid JSON values
  // such as a client's raw `t` or `data`).
  // Inline: most replies are a handful of these, each a few bytes.
  void raw(std::string_view text) {
    if (out_.size() - size_ < text.size()) [[unlikely]] {
      ok_ = false;
      return;
    }
    std::memcpy(out_.data() + size_, text.data(), text.size());
    size_ += text.size();
  }
  // A JSON string literal with quotes, escaping what RFC 8259 requires and
  // control characters.
  void string(std::string_view text);
  void number(int64_t value);
  void unsigned_number(uint64_t value);

  bool ok() const { return ok_; }
  std::string_view text() const { return {out_.data(), size_}; }
  size_t size() const { return size_; }

 private:
  void put(char c) {
    if (size_ < out_.size()) out_[size_++] = c;
    else ok_ = false;
  }
  std::span<char> out_;
  size_t size_ = 0;
  bool ok_ = true;
};

}  // namespace mf
