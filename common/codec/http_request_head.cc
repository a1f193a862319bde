#include "common/codec/http_request_head.h"

namespace mf::http {
namespace {

using CharClass = std::array<bool, 256>;

// tchar (RFC 9110 section 5.6.2): field names and methods.
constexpr CharClass token_chars = [] {
  CharClass c{};
  for (int ch = '0'; ch <= '9'; ++ch) c[ch] = true;
  for (int ch = 'A'; ch <= 'Z'; ++ch) c[ch] = true;
  for (int ch = 'a'; ch <= 'z'; ++ch) c[ch] = true;
  for (unsigned char ch : std::string_view("!#$%&'*+-.^_`|~")) c[ch] = true;
  return c;
}();

// field-vchar, SP and HTAB; obs-text is allowed because real User-Agent and
// similar values carry UTF-8. CR, LF, NUL, DEL and other controls are not.
constexpr CharClass field_value_chars = [] {
  CharClass c{};
  c['\t'] = true;
  for (int ch = 0x20; ch <= 0x7E; ++ch) c[ch] = true;
  for (int ch = 0x80; ch <= 0xFF; ++ch) c[ch] = true;
  return c;
}();

// Visible ASCII except '#': a fragment is never sent, and whitespace,
// controls and non-ASCII bytes have no place in a request-target.
constexpr CharClass target_chars = [] {
  CharClass c{};
  for (int ch = 0x21; ch <= 0x7E; ++ch) c[ch] = true;
  c['#'] = false;
  return c;
}();

bool in(const CharClass& c, char ch) { return c[static_cast<unsigned char>(ch)]; }

size_t scan(const CharClass& c, std::string_view s, size_t pos) {
  while (pos < s.size() && in(c, s[pos])) ++pos;
  return pos;
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

// Parses "HTTP/1.0\r\n" or "HTTP/1.1\r\n" at the start of `s`; on success
// returns the minor version.
std::expected<uint8_t, RequestError> parse_version_line(std::string_view s) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (s.size() < 10 || !s.starts_with("HTTP/") || !digit(s[5]) || s[6] != '.' ||
      !digit(s[7]) || s[8] != '\r' || s[9] != '\n') {
    return std::unexpected(RequestError::malformed);
  }
  if (s[5] != '1' || (s[7] != '0' && s[7] != '1')) {
    return std::unexpected(RequestError::unsupported_version);
  }
  return static_cast<uint8_t>(s[7] - '0');
}

// Fills `head` (whose fields are already value-initialised); NRVO in the
// caller keeps the 1.6 KB result from being copied.
std::expected<void, RequestError> parse_into(std::string_view s, RequestHead& head) {
  size_t pos = scan(token_chars, s, 0);
  if (pos == 0 || pos >= s.size() || s[pos] != ' ') {
    return std::unexpected(RequestError::malformed);
  }
  head.method = s.substr(0, pos);

  const size_t target_begin = ++pos;
  if (pos >= s.size() || s[pos] != '/') return std::unexpected(RequestError::malformed);
  pos = scan(target_chars, s, pos);
  if (pos >= s.size() || s[pos] != ' ') return std::unexpected(RequestError::malformed);
  head.target = s.substr(target_begin, pos - target_begin);
  const size_t question = head.target.find('?');
  head.path = head.target.substr(0, question);
  if (question != std::string_view::npos) head.query = head.target.substr(question + 1);

  ++pos;
  auto minor = parse_version_line(s.substr(pos));
  if (!minor) return std::unexpected(minor.error());
  head.version_minor = *minor;
  pos += 10;

  auto count = parse_header_fields(s.substr(pos), head.headers);
  if (!count) return std::unexpected(count.error());
  head.header_count = static_cast<uint8_t>(*count);
  return {};
}

}  // namespace

size_t find_head_end(std::string_view buffered) {
  const size_t at = buffered.find("\r\n\r\n");
  return at == std::string_view::npos ? 0 : at + 4;
}

bool is_token(std::string_view s) {
  return !s.empty() && scan(token_chars, s, 0) == s.size();
}

std::string_view next_list_element(std::string_view& list) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view element = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    while (!element.empty() && is_ows(element.front())) element.remove_prefix(1);
    while (!element.empty() && is_ows(element.back())) element.remove_suffix(1);
    if (!element.empty()) return element;
  }
  return {};
}

std::optional<std::string_view> find_header(std::span<const Header> headers,
                                            std::string_view name) {
  for (const Header& h : headers) {
    if (equals_ignore_case(h.name, name)) return h.value;
  }
  return std::nullopt;
}

size_t count_headers(std::span<const Header> headers, std::string_view name) {
  size_t n = 0;
  for (const Header& h : headers) n += equals_ignore_case(h.name, name) ? 1 : 0;
  return n;
}

bool headers_have_token(std::span<const Header> headers, std::string_view name,
                        std::string_view token) {
  for (const Header& h : headers) {
    if (!equals_ignore_case(h.name, name)) continue;
    std::string_view list = h.value;
    for (auto e = next_list_element(list); !e.empty(); e = next_list_element(list)) {
      if (equals_ignore_case(e, token)) return true;
    }
  }
  return false;
}

std::expected<size_t, RequestError> parse_header_fields(std::string_view s,
                                                        std::span<Header> out) {
  size_t count = 0;
  size_t pos = 0;
  while (true) {
    if (s.substr(pos).starts_with("\r\n")) {
      if (pos + 2 != s.size()) return std::unexpected(RequestError::malformed);
      return count;
    }
    // An empty name also catches obs-fold (a line starting with SP/HTAB),
    // bare LF and a missing blank line.
    const size_t name_end = scan(token_chars, s, pos);
    if (name_end == pos || name_end >= s.size() || s[name_end] != ':') {
      return std::unexpected(RequestError::malformed);
    }
    size_t value_begin = name_end + 1;
    while (value_begin < s.size() && is_ows(s[value_begin])) ++value_begin;
    const size_t line_end = scan(field_value_chars, s, value_begin);
    if (line_end + 1 >= s.size() || s[line_end] != '\r' || s[line_end + 1] != '\n') {
      return std::unexpected(RequestError::malformed);
    }
    size_t value_end = line_end;
    while (value_end > value_begin && is_ows(s[value_end - 1])) --value_end;

    if (count == out.size()) return std::unexpected(RequestError::too_many_headers);
    out[count++] = Header{s.substr(pos, name_end - pos),
                          s.substr(value_begin, value_end - value_begin)};
    pos = line_end + 2;
  }
}

std::expected<RequestHead, RequestError> parse_request_head(std::string_view head) {
  std::expected<RequestHead, RequestError> result{std::in_place};
  if (auto ok = parse_into(head, *result); !ok) result = std::unexpected(ok.error());
  return result;
}

std::optional<std::string_view> query_param(std::string_view query,
                                            std::string_view key) {
  if (key.empty()) return std::nullopt;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) != key) continue;
    return pair.substr(eq == std::string_view::npos ? pair.size() : eq + 1);
  }
  return std::nullopt;
}

}  // namespace mf::http
