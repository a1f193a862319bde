#pragma once

// PROXY protocol version 2 (HAProxy's "The PROXY protocol", section 2.2),
// binary header only. mf-ingress encodes one in front of each connection it
// relays to an edge; mf-edge, when its listener expects one, parses it before
// anything else so that admission (docs/protocol.md section 8) sees the player's address
// instead of the ingress's. Version 1 (the text line "PROXY TCP4 ...") is not
// supported: it is refused as not_proxy_v2.
//
// Pure and allocation-free: the views returned point into the caller's buffer,
// which must outlive them.
//
// Header layout, network byte order:
//
//   bytes  0..11  signature  0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
//   byte   12     ver_cmd    bits 7..4 version, must be 2
//                            bits 3..0 command: 0 LOCAL, 1 PROXY
//   byte   13     fam        bits 7..4 address family: 0 UNSPEC, 1 INET,
//                                      2 INET6, 3 UNIX
//                            bits 3..0 transport: 0 UNSPEC, 1 STREAM, 2 DGRAM
//   bytes 14..15  len        number of bytes after these 16 (address block
//                            plus TLVs)
//   then the address block, by fam:
//     0x11 TCP over IPv4  src addr 4 | dst addr 4 | src port 2 | dst port 2  (12)
//     0x21 TCP over IPv6  src addr 16 | dst addr 16 | src port 2 | dst port 2 (36)
//     0x00 UNSPEC         nothing
//   then TLVs up to 16 + len, each:
//     byte 0 type | bytes 1..2 length of the value | value
//   of which these are understood:
//     0x01 ALPN       the application protocol the client negotiated
//     0x02 AUTHORITY  the host name the client asked for (the TLS SNI)
//     0x03 CRC32C     4 bytes: CRC-32C (Castagnoli) of the whole header with
//                     these 4 bytes taken as zero
//     0x04 NOOP       padding, ignored
//   and every other type is skipped (after checking that it fits).
//
// Which commands and families are accepted:
//   LOCAL    a connection the proxy made itself (a health check). The spec
//            says the receiver uses the real endpoints and discards the rest
//            of the header, family included: so fam is not checked and
//            nothing after byte 15 is read. has_addresses = false.
//   PROXY    0x11 and 0x21 give the original endpoints. 0x00 (UNSPEC) means
//            the proxy could not name them: accepted with has_addresses =
//            false, and the receiver uses the connection's own addresses.
//            Any other fam (UDP, UNIX, unknown nibbles) is bad_family: the
//            edge only serves TCP.
//
// Size cap. The spec allows len up to 65535; we refuse len > 536 (too_large)
// so that a receiver needs at most max_header_bytes of buffer per connection
// before the handshake, and refuses a slow or hostile sender early. 536 bytes
// hold the IPv6 address block (36) plus 500 bytes of TLVs: a CRC32C (7), an
// AUTHORITY with the longest DNS name (3 + 253) and room left for an ALPN ID
// and a few foreign TLVs. Our only sender is mf-ingress, which never comes
// close; encode() refuses to produce a header over the cap.

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string_view>

namespace mf::proxy {

inline constexpr size_t signature_bytes = 12;
inline constexpr size_t fixed_header_bytes = 16;
// Largest value of the len field we accept; see "Size cap" above.
inline constexpr size_t max_payload_bytes = 536;
inline constexpr size_t max_header_bytes = fixed_header_bytes + max_payload_bytes;

inline constexpr std::array<uint8_t, signature_bytes> signature = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// TLV types (docs/protocol.md section 2.2.7) that the codec understands.
namespace tlv_type {
inline constexpr uint8_t alpn = 0x01;
inline constexpr uint8_t authority = 0x02;
inline constexpr uint8_t crc32c = 0x03;
inline constexpr uint8_t noop = 0x04;
}  // namespace tlv_type

enum class Family : uint8_t { ipv4 = 4, ipv6 = 6 };

// A TCP endpoint. For ipv4 only address[0..3] is meaningful; every function
// here that makes an Endpoint leaves address[4..15] zero so that == compares
// addresses. `port` is in host byte order.
struct Endpoint {
  Family family = Family::ipv4;
  std::array<uint8_t, 16> address{};
  uint16_t port = 0;

  static Endpoint ipv4(std::array<uint8_t, 4> a, uint16_t port);
  static Endpoint ipv6(const std::array<uint8_t, 16>& a, uint16_t port);

  bool operator==(const Endpoint&) const = default;
};

// The Endpoint of an AF_INET or AF_INET6 socket address (as accept() or
// getsockname() fill it), or nullopt for any other family or a `length` too
// short for its family. An IPv4-mapped IPv6 address stays IPv6.
std::optional<Endpoint> endpoint_from_sockaddr(const sockaddr* address, socklen_t length);

// Room format_address() needs for any address (INET6_ADDRSTRLEN minus the NUL).
inline constexpr size_t max_address_text = 45;

// Writes the address in its usual text form, "192.0.2.1" or "2001:db8::1"
// (RFC 5952), without the port and without a terminating NUL. Returns the
// number of chars written, or 0 if `out` is too small or the family invalid.
size_t format_address(std::span<char> out, const Endpoint& endpoint);

enum class Command : uint8_t { local, proxy };

struct Header {
  Command command = Command::local;
  // False for LOCAL and for PROXY with family UNSPEC: use the connection's
  // own addresses. When true, source and destination have the same family.
  bool has_addresses = false;
  Endpoint source;
  Endpoint destination;
  // Values of the AUTHORITY and ALPN TLVs, empty when absent.
  std::string_view sni;
  std::string_view alpn;
  // Whether a CRC32C TLV was present (and, since parse succeeded, matched).
  bool crc32c_verified = false;
  // Bytes the header occupied: the connection's own stream starts here.
  size_t length = 0;
};

enum class ParseError : uint8_t {
  incomplete,    // a valid prefix: read more bytes and parse again
  not_proxy_v2,  // bad signature, including a v1 text header ("PROXY ...")
  bad_version,   // ver_cmd version is not 2
  bad_command,   // ver_cmd command is neither LOCAL nor PROXY
  bad_family,    // PROXY with a family other than UNSPEC, TCP4, TCP6
  bad_length,    // len too short for the family's address block
  bad_tlv,       // a TLV overruns the header, has a wrong size, or repeats
                 // ALPN, AUTHORITY or CRC32C
  bad_crc,       // CRC32C TLV present and not matching
  too_large,     // len > max_payload_bytes
};

// Parses the header at the start of `bytes`, the bytes received so far.
// Never reads past bytes.size(). Fails as soon as the bytes present cannot
// start a valid header (a wrong first byte is not_proxy_v2 at once; len over
// the cap is too_large once the 16 fixed bytes are in), and returns
// `incomplete` while they can but do not yet hold the whole header. The
// caller accumulates at most max_header_bytes. Bytes past `length` are not
// looked at.
std::expected<Header, ParseError> parse(std::span<const uint8_t> bytes);

// Writes a PROXY header for a TCP connection from `source` to `destination`
// into `out`, with an ALPN TLV if `alpn` is non-empty, an AUTHORITY TLV if
// `sni` is non-empty, and a CRC32C TLV last if `with_crc32c`. Returns the
// bytes written, or 0 (writing nothing useful) if the families differ or are
// invalid, if the header would exceed max_header_bytes, or if `out` is too
// small. max_header_bytes is always enough room.
size_t encode(std::span<uint8_t> out, const Endpoint& source, const Endpoint& destination,
              std::string_view sni, std::string_view alpn, bool with_crc32c);

// Writes the 16-byte LOCAL header (family UNSPEC, no addresses) a proxy sends
// on its own connections. Returns 16, or 0 if `out` is too small.
size_t encode_local(std::span<uint8_t> out);

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial and final
// XOR 0xFFFFFFFF) of `bytes`: the checksum of the CRC32C TLV, as a number
// (the TLV carries it big-endian). crc32c("123456789") == 0xE3069283.
uint32_t crc32c(std::span<const uint8_t> bytes);

}  // namespace mf::proxy
