#pragma once

// The active health check of a backend, as bytes: the request mf-ingress
// sends on a fresh plain connection to the backend's check address, and the
// reader of the answer's status line. Pure and allocation-free: no IO, the
// caller owns the connection and its timeout.
//
// Request layout (what format_health_request writes):
//
//   bytes 0..15  PROXY v2 LOCAL header (common/codec/proxy_protocol.h
//                encode_local()): the edge's plain listener expects a PROXY
//                header first, and LOCAL tells it this connection is the
//                proxy's own, so it uses the real endpoints.
//   then         "GET <path> HTTP/1.1\r\n"
//                "Host: <host_header>\r\n"
//                "User-Agent: mf-ingress\r\n"
//                "Connection: close\r\n"
//                "\r\n"
//
// Verdict. Only the status line of the answer matters: a 2xx is healthy,
// any other well-formed status line is unhealthy, and anything that is not
// "HTTP/1.0 NNN ..." or "HTTP/1.1 NNN ..." ending in CRLF (the grammar of
// common/codec/http_response.h parse_response_head(): first digit 1..5, reason of
// visible characters, SP and HTAB) is malformed. Headers and body are never
// read; the caller closes the connection once the verdict is known. A
// connection that ends, or times out, while the verdict is still
// `incomplete` is a failed check.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/codec/proxy_protocol.h"

namespace mf::ingress {

// The request's fixed text around <path> and <host_header>.
namespace health_request_text {
inline constexpr std::string_view before_path = "GET ";
inline constexpr std::string_view before_host = " HTTP/1.1\r\nHost: ";
inline constexpr std::string_view after_host =
    "\r\nUser-Agent: mf-ingress\r\nConnection: close\r\n\r\n";
}  // namespace health_request_text

// The bytes format_health_request writes besides <path> and <host_header>:
// a buffer of this plus both lengths is always enough.
inline constexpr size_t health_request_fixed_bytes =
    proxy::fixed_header_bytes + health_request_text::before_path.size() +
    health_request_text::before_host.size() + health_request_text::after_host.size();

// Writes the request above into `out` and returns its size. Returns 0 (the
// contents of `out` are then unspecified) when `out` is too small, when
// `path` does not start with '/' or holds a '#' (a fragment, which the edge
// refuses in a request target), when `host_header` is empty, or when either
// holds a byte outside visible ASCII (0x21..0x7E): CR, LF, SP, HTAB, other
// controls, DEL or non-ASCII would change the request's framing.
size_t format_health_request(std::span<uint8_t> out, std::string_view host_header,
                             std::string_view path);

// Longest status line accepted, not counting its CRLF: a peer that sends
// more without ending the line is not an HTTP server we want to wait for.
inline constexpr size_t max_status_line_bytes = 256;

enum class HealthVerdict : uint8_t {
  incomplete,  // the status line has not ended yet: feed more bytes
  healthy,     // 2xx
  unhealthy,   // any other valid status; status() tells which
  malformed,   // not an HTTP/1.x status line, or longer than the bound
};

// Reads the status line of a health check answer, fed in pieces of any size
// (one byte at a time included). The verdict is the same however the bytes
// are split, and it is final: once it is not `incomplete`, later feed() calls
// read nothing and return it again. Fails early: a byte that no valid status
// line could hold at its position (a first byte other than 'H', a bare LF, a
// CR not followed by LF) gives `malformed` at once.
class HealthResponseReader {
 public:
  // Consumes bytes until the verdict is known (the rest of `bytes` is not
  // looked at) and returns the verdict.
  HealthVerdict feed(std::span<const uint8_t> bytes);

  HealthVerdict verdict() const { return verdict_; }
  // The status code when the verdict is healthy or unhealthy, else 0.
  uint16_t status() const { return status_; }

 private:
  // The status line so far: at most max_status_line_bytes plus CR, and room
  // for the LF and the empty line appended before parsing.
  std::array<char, max_status_line_bytes + 4> line_{};
  uint16_t size_ = 0;
  uint16_t status_ = 0;
  HealthVerdict verdict_ = HealthVerdict::incomplete;

  void finish();
};

}  // namespace mf::ingress
