#pragma once

// HTTP/1.1 responses as the edge writes them (101 for an upgrade, plain-text
// answers that close the connection otherwise), and the client half the load
// generator needs: the upgrade request and the check of the server's answer.
// Pure: formatting writes into a caller-supplied buffer and never allocates;
// parsed views point into the caller's buffer.

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/codec/http_request_head.h"
#include "common/codec/websocket_upgrade.h"

namespace mf::http {

// Reason phrase for the statuses the edge sends (101, 200, 400, 401, 403,
// 404, 405, 426, 429, 431, 500, 503); empty for any other.
std::string_view status_text(uint16_t status);

// "HTTP/1.1 101 Switching Protocols" with Upgrade, Connection and
// Sec-WebSocket-Accept, plus Sec-WebSocket-Protocol when `subprotocol` is not
// empty. Returns the bytes written, or 0 when `out` is too small or
// `subprotocol` is not a token.
size_t format_switching_protocols(std::span<char> out, const std::array<char, 28>& accept,
                                  std::string_view subprotocol);

// A complete response that ends the connection: status line, then
// `Connection: close`, `Content-Type: text/plain; charset=utf-8`,
// `Content-Length: <body size>`, then `extra_header_lines` verbatim (each
// ending in "\r\n", e.g. "Retry-After: 5\r\n"), the blank line and the body
// (omitted when `head_only`, as for HEAD, while Content-Length still gives its
// size). Returns the bytes written, or 0 when `out` is too small or `status`
// is not in 100..599.
size_t format_response(std::span<char> out, uint16_t status, std::string_view body,
                       std::string_view extra_header_lines = {}, bool head_only = false);

// A complete response of any size for the admin endpoints (/metrics, JSON
// APIs): status line, Connection: close, the Content-Type given,
// Content-Length, then the body (omitted when `head_only`, as for HEAD,
// while Content-Length still gives its size). `extra_header_lines` as for
// format_response.
std::string format_document_response(uint16_t status, std::string_view content_type, std::string_view body,
                                     bool head_only = false, std::string_view extra_header_lines = {});

// The extra header lines `decision`'s rejection must carry (Allow for 405;
// Upgrade and, for a version mismatch, Sec-WebSocket-Version for 426); empty
// when none. Static storage.
std::string_view upgrade_rejection_headers(const UpgradeDecision& decision);

// ---- Client side ----

// "GET <target> HTTP/1.1" with Host, Upgrade, Connection, Sec-WebSocket-Key,
// Sec-WebSocket-Version: 13 and, when `subprotocol` is not empty,
// Sec-WebSocket-Protocol. Returns the bytes written, or 0 when `out` is too
// small or a field would not survive the wire (target not starting with '/',
// spaces or control characters anywhere, empty host or key).
size_t format_upgrade_request(std::span<char> out, std::string_view host,
                              std::string_view target, std::string_view key_base64,
                              std::string_view subprotocol);

inline constexpr size_t max_response_headers = 32;

struct ResponseHead {
  uint16_t status = 0;
  uint8_t version_minor = 0;
  uint8_t header_count = 0;
  std::array<Header, max_response_headers> headers{};

  std::span<const Header> fields() const { return {headers.data(), header_count}; }

  // Value of the first field named `name` (case-insensitive).
  std::optional<std::string_view> header(std::string_view name) const {
    return find_header(fields(), name);
  }
};

// Parses a complete response head (up to and including the blank line, see
// find_head_end()): "HTTP/1.x SP 3DIGIT SP reason CRLF" then fields, with the
// same strictness as parse_request_head().
std::expected<ResponseHead, RequestError> parse_response_head(std::string_view head);

// Whether `head` accepts the upgrade requested with `client_key`: status 101,
// Upgrade: websocket, Connection: upgrade, the matching Sec-WebSocket-Accept,
// Sec-WebSocket-Protocol exactly `expected_subprotocol` (absent when that is
// empty), and no Sec-WebSocket-Extensions since none were offered.
bool is_valid_upgrade_response(const ResponseHead& head, std::string_view client_key,
                               std::string_view expected_subprotocol);

}  // namespace mf::http
