#pragma once
// A validating pull reader of one JSON text (RFC 8259) in a single walk over
// its bytes, for the edge's SDK messages (docs/protocol.md, "Errors"). The
// caller pulls the members of an object one by one and reads each value;
// a value it does not look into (a signal's `data`, an unknown field) is
// validated whole while it is stepped over, and its exact text is handed
// out. Nothing is validated twice and nothing is copied.
//
// What it accepts: the RFC 8259 grammar; JSON white space only; strings of
// valid UTF-8 (RFC 3629: shortest forms, no surrogates, at most U+10FFFF)
// without control characters below 0x20, with the escapes of RFC 8259
// (`\uD800`..`\uDBFF` only as the first half of a surrogate pair, a lone
// second half refused); numbers of any range; nesting to max_json_depth.
// Once it fails it stays failed, and every call returns false.
//
// The reader decides only on the bytes of the text, but it loads up to
// json_reader_padding bytes past the end (32 bytes of a string at a time),
// so the text must be followed by that many readable bytes. No allocation,
// no exceptions.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "edge/json_string_scan.h"

namespace mf::edge {

// Deepest nesting accepted in a client message: the root is at depth 0, its
// values at 1, and a value (of any type) deeper than this is refused. A
// ping's `t`, a signal's `data` or an SDP object may nest; nothing a client
// sends needs more.
inline constexpr size_t max_json_depth = 64;

inline constexpr size_t json_reader_padding = 32;

enum class JsonType : uint8_t { object, array, string, number, boolean, null };

// A string as written: the bytes between its quotes, already validated.
struct JsonString {
  std::string_view body;
  bool escaped = false;  // the body holds a backslash escape: unescape it to read the text
};

struct JsonValue {
  JsonType type = JsonType::null;
  std::string_view text;  // the value's exact text (a string with its quotes)
  JsonString string;      // type string
  bool boolean = false;   // type boolean
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) noexcept
      : p_(text.data()), end_(text.data() + text.size()) {}
  // A text that is a value nested `depth` containers deep in a larger
  // document (the depth its own containers count from against
  // max_json_depth, as if the walk had entered them).
  JsonReader(std::string_view text, size_t depth) noexcept
      : p_(text.data()), end_(text.data() + text.size()), depth_(depth) {}

  // Skips white space; true when nothing else is left.
  bool at_end() noexcept {
    skip_spaces();
    return p_ >= end_;
  }
  // Skips white space; the next byte, or '\0' at the end.
  char peek() noexcept {
    skip_spaces();
    return p_ < end_ ? *p_ : '\0';
  }
  // The text from the current position on.
  std::string_view rest() const noexcept { return {p_, static_cast<size_t>(end_ - p_)}; }
  bool failed() const noexcept { return failed_; }

  // At '{' (see peek()): enters the object, whose members next_member()
  // then yields: it reads the separator, the key and the colon and stops at
  // the member's value, which the caller must read (read_value(), or
  // enter_object()/enter_array() and their loops). It returns false at the
  // closing brace (consumed) or on an error.
  bool enter_object() noexcept;
  bool next_member(JsonString& key) noexcept {
    // Inline, the member of compact JSON: the separator (none before the
    // first), a key of plain bytes shorter than a scan block, the colon
    // right after it. Anything else is the general walk's, from the start.
    // The scan loads a block from the key's body, which starts inside the
    // text (3 bytes are left): within the padding.
    if (!failed_ && end_ - p_ > 2 && (first_ || *p_ == ',')) [[likely]] {
      const char* const quote = p_ + (first_ ? 0 : 1);
      const char* const close = *quote == '"' ? json_scan::short_plain_string_close(quote, end_) : nullptr;
      if (close != nullptr && close + 1 < end_ && close[1] == ':') [[likely]] {
        key = JsonString{std::string_view(quote + 1, static_cast<size_t>(close - quote - 1)), false};
        p_ = close + 2;
        first_ = false;
        return true;
      }
    }
    return next_member_general(key);
  }
  // Likewise for an array: next_element() stops at each element.
  bool enter_array() noexcept;
  bool next_element() noexcept;
  // The value at the current position, validated whole (with everything
  // nested in it) and stepped over.
  bool read_value(JsonValue& out) noexcept {
    // Inline, a string of plain bytes shorter than a scan block (the load
    // starts at most at the end: within the padding).
    if (!failed_ && p_ < end_ && *p_ == '"' && depth_ <= max_json_depth) {
      if (const char* const close = json_scan::short_plain_string_close(p_, end_)) [[likely]] {
        out.type = JsonType::string;
        out.text = std::string_view(p_, static_cast<size_t>(close + 1 - p_));
        out.string = JsonString{std::string_view(p_ + 1, static_cast<size_t>(close - p_ - 1)), false};
        p_ = close + 1;
        first_ = false;
        return true;
      }
    }
    return read_value_general(out);
  }

 private:
  bool fail() noexcept {
    failed_ = true;
    p_ = end_;
    return false;
  }
  bool next_member_general(JsonString& key) noexcept;
  bool read_value_general(JsonValue& out) noexcept;
  bool close_container() noexcept;
  // Compact JSON has no white space between tokens: one test, inline.
  void skip_spaces() noexcept {
    if (p_ < end_ && static_cast<unsigned char>(*p_) > ' ') return;
    skip_spaces_run();
  }
  void skip_spaces_run() noexcept;
  const char* skip_container(const char* p) noexcept;

  const char* p_;
  const char* end_;
  size_t depth_ = 0;   // containers open around the current position
  bool first_ = true;  // no member or element of the innermost container read yet
  bool failed_ = false;
};

// The text of a string body that JsonReader validated, escapes resolved,
// written to `out` (at most body.size() bytes); returns its size.
size_t unescape_json_string(std::string_view body, char* out) noexcept;

// The end of the RFC 8259 number that starts at `p`, or nullptr when none
// starts there: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
const char* scan_json_number(const char* p, const char* end) noexcept;

// A JSON number written as an integer (no fraction, no exponent) whose
// magnitude fits in 64 bits: its sign and magnitude. "-0" is negative zero.
bool json_integer(std::string_view number, bool& negative, uint64_t& magnitude) noexcept;

}  // namespace mf::edge
