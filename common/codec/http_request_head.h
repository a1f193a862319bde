#pragma once

// HTTP/1.1 message heads (RFC 9110, RFC 9112) as the signaling edge meets
// them: one request head per connection, then either a WebSocket upgrade or a
// plain response and close. Pure and allocation-free: every view returned
// points into the caller's buffer, which must outlive it.
//
// Deliberately strict, since the port is public and nothing legitimate needs
// leniency: lines end in CRLF only, no obsolete line folding, no whitespace
// between a field name and its colon, no control characters other than HTAB
// in field values, origin-form targets only.

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string_view>

namespace mf::http {

// docs/protocol.md section 1: a request head larger than this is answered with 431.
inline constexpr size_t max_request_head_bytes = 8192;
// More header fields than this is an error (too_many_headers).
inline constexpr size_t max_request_headers = 48;

// Offset just past the first "\r\n\r\n" in `buffered`, or 0 if there is none
// yet. The caller accumulates bytes until this is non-zero, and answers 431
// once it holds more than max_request_head_bytes without a head end, or when
// the head end it finds lies past max_request_head_bytes.
size_t find_head_end(std::string_view buffered);

// One header field. `value` is trimmed of leading and trailing SP/HTAB.
struct Header {
  std::string_view name;
  std::string_view value;
};

enum class RequestError : uint8_t {
  malformed,            // not a syntactically valid head
  too_many_headers,     // more fields than the head type holds
  unsupported_version,  // HTTP/x.y other than 1.0 and 1.1
};

// Whether `s` is a non-empty token (RFC 9110 section 5.6.2).
bool is_token(std::string_view s);

// ASCII case-insensitive equality (field names, tokens). Inline because
// header lookups call it once per field and most calls end at the size.
inline bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = a[i], y = b[i];
    if (x != y && ((x | 0x20) != (y | 0x20) || (x | 0x20) < 'a' || (x | 0x20) > 'z')) {
      return false;
    }
  }
  return true;
}

// Pops the next element of a comma-separated list (RFC 9110 section 5.6.1)
// off the front of `list`, trimmed of SP/HTAB. Empty elements are skipped;
// returns an empty view once the list is exhausted.
std::string_view next_list_element(std::string_view& list);

// Value of the first field named `name` (case-insensitive).
std::optional<std::string_view> find_header(std::span<const Header> headers,
                                            std::string_view name);

// Number of fields named `name` (case-insensitive).
size_t count_headers(std::span<const Header> headers, std::string_view name);

// Whether any field named `name` holds `token` (case-insensitive) as an
// element of its comma-separated value, e.g. `Connection: keep-alive, Upgrade`
// holds "upgrade". Repeated fields are one list.
bool headers_have_token(std::span<const Header> headers, std::string_view name,
                        std::string_view token);

// Parses the field lines of a head: `fields` starts at the first field line
// and ends with the empty line ("\r\n"). Fills `out` and returns the number
// of fields, or too_many_headers when there are more than out.size().
std::expected<size_t, RequestError> parse_header_fields(
    std::string_view fields, std::span<Header> out);

struct RequestHead {
  std::string_view method;  // a token, case-sensitive ("GET")
  std::string_view target;  // origin-form: starts with '/'
  std::string_view path;    // target up to the first '?'
  std::string_view query;   // target after the first '?', without it
  uint8_t version_minor = 0;  // HTTP/1.<version_minor>: 0 or 1
  uint8_t header_count = 0;
  std::array<Header, max_request_headers> headers{};

  std::span<const Header> fields() const { return {headers.data(), header_count}; }

  // Value of the first field named `name` (case-insensitive).
  std::optional<std::string_view> header(std::string_view name) const {
    return find_header(fields(), name);
  }
  // See headers_have_token().
  bool header_has_token(std::string_view name, std::string_view token) const {
    return headers_have_token(fields(), name, token);
  }
};

// Parses a complete request head: `head` is exactly the bytes up to and
// including the blank line, i.e. buffered.substr(0, find_head_end(buffered)).
std::expected<RequestHead, RequestError> parse_request_head(std::string_view head);

// Raw value of the first `key=value` pair of `query` whose key is exactly
// `key` (no percent-decoding: the values we need, stream ids and JWTs, are
// URL-safe). A pair without '=' has an empty value. An empty key never
// matches.
std::optional<std::string_view> query_param(std::string_view query,
                                            std::string_view key);

}  // namespace mf::http
