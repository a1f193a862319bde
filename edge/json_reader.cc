#include "edge/json_reader.h"

#include <cstring>

#include "edge/json_string_scan.h"

namespace mf::edge {
namespace {

using json_scan::plain_bytes;
using json_scan::plain_bytes_wide;
using json_scan::string_block;

inline bool is_white_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// Compact JSON has no white space between tokens: a byte above the space
// is not white space, one test for the common case.
inline const char* skip_white_space(const char* p, const char* end) {
  if (p < end && static_cast<unsigned char>(*p) > ' ') [[likely]] return p;
  while (p < end && is_white_space(*p)) ++p;
  return p;
}

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Four hex digits at p, or -1.
inline int32_t hex4(const char* p) {
  const int a = hex_digit(p[0]), b = hex_digit(p[1]), c = hex_digit(p[2]), d = hex_digit(p[3]);
  if ((a | b | c | d) < 0) return -1;
  return (a << 12) | (b << 8) | (c << 4) | d;
}

// The escape at p (a backslash): past it, or nullptr when it is not one of
// RFC 8259's. A high surrogate must be followed by an escaped low one.
// Reads at most 12 bytes from p (the padding covers an escape cut by the
// end: the caller then finds p beyond the end and fails).
inline const char* skip_escape(const char* p) {
  switch (p[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
      return p + 2;
    case 'u': {
      const int32_t unit = hex4(p + 2);
      if (unit < 0) return nullptr;
      if (unit >= 0xDC00 && unit <= 0xDFFF) return nullptr;
      if (unit < 0xD800 || unit > 0xDBFF) return p + 6;
      if (p[6] != '\\' || p[7] != 'u') return nullptr;
      const int32_t low = hex4(p + 8);
      if (low < 0xDC00 || low > 0xDFFF) return nullptr;
      return p + 12;
    }
    default:
      return nullptr;
  }
}

// The UTF-8 character whose lead byte (>= 0x80) is at p: past it, or
// nullptr. The byte after the lead has a narrowed range for E0 (overlong),
// ED (surrogates), F0 (overlong) and F4 (above U+10FFFF), as in
// common/codec/utf8_validator.h. Reads at most 4 bytes from p.
inline const char* skip_utf8_character(const char* p) {
  const auto lead = static_cast<uint8_t>(p[0]);
  const auto in = [](char c, uint8_t lo, uint8_t hi) {
    const auto u = static_cast<uint8_t>(c);
    return u >= lo && u <= hi;
  };
  if (lead < 0xC2) return nullptr;
  if (lead < 0xE0) return in(p[1], 0x80, 0xBF) ? p + 2 : nullptr;
  if (lead < 0xF0) {
    const uint8_t lo = lead == 0xE0 ? 0xA0 : 0x80, hi = lead == 0xED ? 0x9F : 0xBF;
    return in(p[1], lo, hi) && in(p[2], 0x80, 0xBF) ? p + 3 : nullptr;
  }
  if (lead < 0xF5) {
    const uint8_t lo = lead == 0xF0 ? 0x90 : 0x80, hi = lead == 0xF4 ? 0x8F : 0xBF;
    return in(p[1], lo, hi) && in(p[2], 0x80, 0xBF) && in(p[3], 0x80, 0xBF) ? p + 4 : nullptr;
  }
  return nullptr;
}

// skip_string's general case: a string longer than one block, or one with
// an escape or a multi-byte character, whose body starts at `body` and whose
// plain bytes are known up to `p` (the first block's scan is not repeated).
const char* skip_any_string(const char* body, const char* p, const char* end, JsonString& out) {
  bool escaped = false;
  for (;;) {
    // Plain bytes: two blocks at a time while the text holds them, then a
    // block at a time (that load may reach into the padding; a stop found
    // there is beyond the end and fails below).
    for (;;) {
      if (p >= end) return nullptr;
      if (static_cast<size_t>(end - p) >= 2 * string_block) {
        const size_t plain = plain_bytes_wide(p);
        p += plain;
        if (plain < 2 * string_block) break;
      } else {
        const size_t plain = plain_bytes(p);
        p += plain;
        if (plain < string_block) break;
      }
    }
    if (p >= end) return nullptr;
    const auto c = static_cast<uint8_t>(*p);
    if (c == '"') break;
    if (c == '\\') {
      escaped = true;
      p = skip_escape(p);
    } else if (c < 0x20) {
      return nullptr;
    } else {
      p = skip_utf8_character(p);
    }
    if (p == nullptr) return nullptr;
  }
  out = JsonString{std::string_view(body, static_cast<size_t>(p - body)), escaped};
  return p + 1;
}

// The string whose opening quote is at p: past its closing quote, or
// nullptr. `out` gets its body. Keys and most values are short plain
// strings, whose closing quote is the first stop in the first block: that
// case is decided here, inline, and the rest is skip_any_string's, from
// where this scan stopped.
inline const char* skip_string(const char* p, const char* end, JsonString& out) {
  const json_scan::FirstBlock first = json_scan::scan_first_block(p, end);
  if (first.closes) [[likely]] {
    out = JsonString{std::string_view(p + 1, static_cast<size_t>(first.stop - p - 1)), false};
    return first.stop + 1;
  }
  return skip_any_string(p + 1, first.stop, end, out);
}

// A scalar (string, number, true, false, null) at p: past it, or nullptr.
inline const char* skip_scalar(const char* p, const char* end, JsonValue& out) {
  const auto literal = [&](std::string_view word, JsonType type, bool flag) -> const char* {
    if (static_cast<size_t>(end - p) < word.size() || std::memcmp(p, word.data(), word.size()) != 0) return nullptr;
    out.type = type;
    out.boolean = flag;
    return p + word.size();
  };
  switch (*p) {
    case '"':
      out.type = JsonType::string;
      return skip_string(p, end, out.string);
    case 't': return literal("true", JsonType::boolean, true);
    case 'f': return literal("false", JsonType::boolean, false);
    case 'n': return literal("null", JsonType::null, false);
    case '-': case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
      out.type = JsonType::number;
      return scan_json_number(p, end);
    default:
      return nullptr;
  }
}

}  // namespace

const char* scan_json_number(const char* p, const char* end) noexcept {
  const auto digit = [&](const char* q) { return q < end && is_digit(*q); };
  if (p < end && *p == '-') ++p;
  if (!digit(p)) return nullptr;
  if (*p == '0') ++p;
  else while (digit(p)) ++p;
  if (p < end && *p == '.') {
    ++p;
    if (!digit(p)) return nullptr;
    while (digit(p)) ++p;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    ++p;
    if (p < end && (*p == '+' || *p == '-')) ++p;
    if (!digit(p)) return nullptr;
    while (digit(p)) ++p;
  }
  return p;
}

bool json_integer(std::string_view number, bool& negative, uint64_t& magnitude) noexcept {
  size_t i = 0;
  negative = !number.empty() && number[0] == '-';
  if (negative) ++i;
  if (i == number.size()) return false;
  uint64_t value = 0;
  for (; i < number.size(); ++i) {
    if (!is_digit(number[i])) return false;
    const auto d = static_cast<uint64_t>(number[i] - '0');
    if (value > (UINT64_MAX - d) / 10) return false;
    value = value * 10 + d;
  }
  magnitude = value;
  return true;
}

size_t unescape_json_string(std::string_view body, char* out) noexcept {
  const char* p = body.data();
  const char* const end = p + body.size();
  char* o = out;
  while (p < end) {
    const void* found = std::memchr(p, '\\', static_cast<size_t>(end - p));
    const char* plain_end = found != nullptr ? static_cast<const char*>(found) : end;
    std::memcpy(o, p, static_cast<size_t>(plain_end - p));
    o += plain_end - p;
    p = plain_end;
    if (p == end) break;
    const char c = p[1];
    p += 2;
    switch (c) {
      case 'b': *o++ = '\b'; continue;
      case 'f': *o++ = '\f'; continue;
      case 'n': *o++ = '\n'; continue;
      case 'r': *o++ = '\r'; continue;
      case 't': *o++ = '\t'; continue;
      case 'u': break;
      default: *o++ = c; continue;  // " \ /
    }
    auto code_point = static_cast<uint32_t>(hex4(p));
    p += 4;
    if (code_point >= 0xD800 && code_point <= 0xDBFF) {
      const auto low = static_cast<uint32_t>(hex4(p + 2));
      p += 6;
      code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
    }
    if (code_point < 0x80) {
      *o++ = static_cast<char>(code_point);
    } else if (code_point < 0x800) {
      *o++ = static_cast<char>(0xC0 | (code_point >> 6));
      *o++ = static_cast<char>(0x80 | (code_point & 0x3F));
    } else if (code_point < 0x10000) {
      *o++ = static_cast<char>(0xE0 | (code_point >> 12));
      *o++ = static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
      *o++ = static_cast<char>(0x80 | (code_point & 0x3F));
    } else {
      *o++ = static_cast<char>(0xF0 | (code_point >> 18));
      *o++ = static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
      *o++ = static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
      *o++ = static_cast<char>(0x80 | (code_point & 0x3F));
    }
  }
  return static_cast<size_t>(o - out);
}

void JsonReader::skip_spaces_run() noexcept { p_ = skip_white_space(p_, end_); }

bool JsonReader::enter_object() noexcept {
  if (failed_ || peek() != '{' || depth_ > max_json_depth) return fail();
  ++p_;
  ++depth_;
  first_ = true;
  return true;
}

bool JsonReader::enter_array() noexcept {
  if (failed_ || peek() != '[' || depth_ > max_json_depth) return fail();
  ++p_;
  ++depth_;
  first_ = true;
  return true;
}

// At the innermost container's closing bracket: it was a value of the
// container around it, which has now had at least one item.
bool JsonReader::close_container() noexcept {
  ++p_;
  --depth_;
  first_ = false;
  return false;
}

bool JsonReader::next_member_general(JsonString& key) noexcept {
  if (failed_) return false;
  char c = peek();
  if (c == '}' && p_ < end_) return close_container();
  if (!first_) {
    if (c != ',') return fail();
    ++p_;
    c = peek();
  }
  first_ = false;
  if (c != '"') return fail();
  const char* after = skip_string(p_, end_, key);
  if (after == nullptr) return fail();
  p_ = after;
  if (peek() != ':') return fail();
  ++p_;
  return true;
}

bool JsonReader::next_element() noexcept {
  if (failed_) return false;
  const char c = peek();
  if (c == ']' && p_ < end_) return close_container();
  if (!first_) {
    if (c != ',') return fail();
    ++p_;
  }
  first_ = false;
  return true;
}

bool JsonReader::read_value_general(JsonValue& out) noexcept {
  if (failed_) return false;
  const char c = peek();
  if (p_ >= end_ || depth_ > max_json_depth) return fail();
  const char* const start = p_;
  const char* after;
  if (c == '{' || c == '[') {
    out.type = c == '{' ? JsonType::object : JsonType::array;
    after = skip_container(p_);
  } else {
    after = skip_scalar(p_, end_, out);
  }
  if (after == nullptr) return fail();
  p_ = after;
  out.text = std::string_view(start, static_cast<size_t>(p_ - start));
  first_ = false;
  return true;
}

// The container whose opening bracket is at p (at depth depth_, already
// checked), with everything in it: past its closing bracket, or nullptr.
// One loop over the bytes with a stack of the open containers' closing
// brackets; each value is checked against max_json_depth before it is read.
const char* JsonReader::skip_container(const char* p) noexcept {
  char closers[max_json_depth + 1];
  size_t open = 0;
  enum class Step : uint8_t { open, item, after };
  Step step = Step::open;
  for (;;) {
    switch (step) {
      case Step::open: {
        const char closer = *p == '{' ? '}' : ']';
        closers[open++] = closer;
        p = skip_white_space(p + 1, end_);
        if (p < end_ && *p == closer) {
          ++p;
          if (--open == 0) return p;
          step = Step::after;
        } else {
          step = Step::item;
        }
        break;
      }
      case Step::item: {
        if (closers[open - 1] == '}') {
          if (p >= end_ || *p != '"') return nullptr;
          JsonString key;
          p = skip_string(p, end_, key);
          if (p == nullptr) return nullptr;
          p = skip_white_space(p, end_);
          if (p >= end_ || *p != ':') return nullptr;
          p = skip_white_space(p + 1, end_);
        }
        if (depth_ + open > max_json_depth || p >= end_) return nullptr;
        if (*p == '{' || *p == '[') {
          step = Step::open;
          break;
        }
        // A string, the most frequent value, by skip_string's inline case.
        if (*p == '"') {
          JsonString string;
          p = skip_string(p, end_, string);
        } else {
          JsonValue scalar;
          p = skip_scalar(p, end_, scalar);
        }
        if (p == nullptr) return nullptr;
        step = Step::after;
        break;
      }
      case Step::after: {
        p = skip_white_space(p, end_);
        if (p >= end_) return nullptr;
        if (*p == ',') {
          p = skip_white_space(p + 1, end_);
          step = Step::item;
          break;
        }
        if (*p != closers[open - 1]) return nullptr;
        ++p;
        if (--open == 0) return p;
        break;
      }
    }
  }
}

}  // namespace mf::edge
