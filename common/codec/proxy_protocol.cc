#include "common/codec/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace mf::proxy {
namespace {

constexpr uint8_t kVersion2 = 0x20;
constexpr uint8_t kCommandLocal = 0x0;
constexpr uint8_t kCommandProxy = 0x1;
constexpr uint8_t kFamilyUnspec = 0x00;
constexpr uint8_t kFamilyTcp4 = 0x11;
constexpr uint8_t kFamilyTcp6 = 0x21;
constexpr size_t kTcp4AddressBytes = 12;
constexpr size_t kTcp6AddressBytes = 36;
constexpr size_t kTlvHeaderBytes = 3;
constexpr size_t kCrc32cBytes = 4;

// ---- CRC-32C ----
// `state` is the raw register: callers start from 0xFFFFFFFF and invert the
// result, so a checksum can be computed over several pieces.

#if defined(__SSE4_2__)
uint32_t crc32c_extend(uint32_t state, const uint8_t* p, size_t n) {
  uint64_t wide = state;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, sizeof word);
    wide = _mm_crc32_u64(wide, word);
  }
  state = static_cast<uint32_t>(wide);
  for (; n > 0; ++p, --n) state = _mm_crc32_u8(state, *p);
  return state;
}
#else
constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c >> 1) ^ ((c & 1u) ? 0x82F63B78u : 0u);
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

uint32_t crc32c_extend(uint32_t state, const uint8_t* p, size_t n) {
  for (; n > 0; ++p, --n) state = kCrc32cTable[(state ^ *p) & 0xFFu] ^ (state >> 8);
  return state;
}
#endif

// ---- byte access ----

uint64_t load_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint16_t load_be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

uint32_t load_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

void store_be16(uint8_t* p, size_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void store_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

std::string_view view_of(const uint8_t* p, size_t n) {
  return std::string_view(reinterpret_cast<const char*>(p), n);
}

// Reads the address block of family `fam` (TCP4 or TCP6) into `h`, whose
// endpoints are still default (zero) ones. Written field by field and with
// fixed-size copies: building Endpoints and copying them in, or one copy of
// variable size, costs more than the rest of the parse.
void read_addresses(const uint8_t* block, uint8_t fam, Header& h) {
  h.has_addresses = true;
  if (fam == kFamilyTcp4) {
    h.source.family = h.destination.family = Family::ipv4;
    std::memcpy(h.source.address.data(), block, 4);
    std::memcpy(h.destination.address.data(), block + 4, 4);
    h.source.port = load_be16(block + 8);
    h.destination.port = load_be16(block + 10);
  } else {
    h.source.family = h.destination.family = Family::ipv6;
    std::memcpy(h.source.address.data(), block, 16);
    std::memcpy(h.destination.address.data(), block + 16, 16);
    h.source.port = load_be16(block + 32);
    h.destination.port = load_be16(block + 34);
  }
}

// Writes one TLV at `p`; returns the position after it.
uint8_t* put_tlv(uint8_t* p, uint8_t type, std::string_view value) {
  p[0] = type;
  store_be16(p + 1, value.size());
  if (!value.empty()) std::memcpy(p + kTlvHeaderBytes, value.data(), value.size());
  return p + kTlvHeaderBytes + value.size();
}

// parse() without the result wrapper: fills `h` (default-constructed) and
// returns nullopt, or returns the error.
std::optional<ParseError> parse_into(std::span<const uint8_t> bytes, Header& h) {
  const uint8_t* const p = bytes.data();
  const size_t n = bytes.size();

  // Checked on whatever prefix is present, so that a connection that is not
  // PROXY v2 (a v1 line starts with 'P', a TLS record with 0x16) fails at
  // its first byte instead of waiting for 16.
  if (n < signature_bytes) {
    for (size_t i = 0; i < n; ++i) {
      if (p[i] != signature[i]) return ParseError::not_proxy_v2;
    }
    return ParseError::incomplete;
  }
  if (load_u64(p) != load_u64(signature.data()) || load_u32(p + 8) != load_u32(signature.data() + 8)) {
    return ParseError::not_proxy_v2;
  }
  if (n == signature_bytes) return ParseError::incomplete;

  const uint8_t ver_cmd = p[12];
  if ((ver_cmd & 0xF0) != kVersion2) return ParseError::bad_version;
  const uint8_t command = ver_cmd & 0x0F;
  if (command != kCommandLocal && command != kCommandProxy) {
    return ParseError::bad_command;
  }
  if (n <= 13) return ParseError::incomplete;

  const uint8_t fam = p[13];
  size_t address_bytes = 0;
  if (command == kCommandProxy) {
    switch (fam) {
      case kFamilyUnspec: address_bytes = 0; break;
      case kFamilyTcp4: address_bytes = kTcp4AddressBytes; break;
      case kFamilyTcp6: address_bytes = kTcp6AddressBytes; break;
      default: return ParseError::bad_family;
    }
  }
  if (n < fixed_header_bytes) return ParseError::incomplete;

  const size_t payload = load_be16(p + 14);
  if (payload > max_payload_bytes) return ParseError::too_large;
  if (payload < address_bytes) return ParseError::bad_length;
  const size_t total = fixed_header_bytes + payload;
  if (n < total) return ParseError::incomplete;

  h.length = total;
  if (command == kCommandLocal) {
    h.command = Command::local;
    return std::nullopt;  // the spec: discard the protocol block
  }
  h.command = Command::proxy;
  if (address_bytes > 0) read_addresses(p + fixed_header_bytes, fam, h);

  bool seen_alpn = false, seen_authority = false;
  size_t crc_offset = 0;  // of the CRC32C value, 0 when absent
  size_t at = fixed_header_bytes + address_bytes;
  while (at < total) {
    if (total - at < kTlvHeaderBytes) return ParseError::bad_tlv;
    const uint8_t type = p[at];
    const size_t value_bytes = load_be16(p + at + 1);
    const size_t value_at = at + kTlvHeaderBytes;
    if (value_bytes > total - value_at) return ParseError::bad_tlv;
    switch (type) {
      case tlv_type::alpn:
        if (seen_alpn) return ParseError::bad_tlv;
        seen_alpn = true;
        h.alpn = view_of(p + value_at, value_bytes);
        break;
      case tlv_type::authority:
        if (seen_authority) return ParseError::bad_tlv;
        seen_authority = true;
        h.sni = view_of(p + value_at, value_bytes);
        break;
      case tlv_type::crc32c:
        if (crc_offset != 0 || value_bytes != kCrc32cBytes) {
          return ParseError::bad_tlv;
        }
        crc_offset = value_at;
        break;
      default:  // NOOP and types we do not use
        break;
    }
    at = value_at + value_bytes;
  }

  if (crc_offset != 0) {
    static constexpr uint8_t zeros[kCrc32cBytes] = {};
    uint32_t state = crc32c_extend(0xFFFFFFFFu, p, crc_offset);
    state = crc32c_extend(state, zeros, kCrc32cBytes);
    state = crc32c_extend(state, p + crc_offset + kCrc32cBytes,
                          total - crc_offset - kCrc32cBytes);
    if (~state != load_be32(p + crc_offset)) return ParseError::bad_crc;
    h.crc32c_verified = true;
  }
  return std::nullopt;
}

}  // namespace

Endpoint Endpoint::ipv4(std::array<uint8_t, 4> a, uint16_t port) {
  Endpoint e;
  e.family = Family::ipv4;
  std::memcpy(e.address.data(), a.data(), a.size());
  e.port = port;
  return e;
}

Endpoint Endpoint::ipv6(const std::array<uint8_t, 16>& a, uint16_t port) {
  Endpoint e;
  e.family = Family::ipv6;
  e.address = a;
  e.port = port;
  return e;
}

std::optional<Endpoint> endpoint_from_sockaddr(const sockaddr* address, socklen_t length) {
  if (address == nullptr || length < static_cast<socklen_t>(sizeof(sa_family_t))) {
    return std::nullopt;
  }
  if (address->sa_family == AF_INET && length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in in;
    std::memcpy(&in, address, sizeof in);
    std::array<uint8_t, 4> a;
    std::memcpy(a.data(), &in.sin_addr, a.size());
    return Endpoint::ipv4(a, ntohs(in.sin_port));
  }
  if (address->sa_family == AF_INET6 && length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 in6;
    std::memcpy(&in6, address, sizeof in6);
    std::array<uint8_t, 16> a;
    std::memcpy(a.data(), &in6.sin6_addr, a.size());
    return Endpoint::ipv6(a, ntohs(in6.sin6_port));
  }
  return std::nullopt;
}

size_t format_address(std::span<char> out, const Endpoint& endpoint) {
  int af;
  if (endpoint.family == Family::ipv4) {
    af = AF_INET;
  } else if (endpoint.family == Family::ipv6) {
    af = AF_INET6;
  } else {
    return 0;
  }
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(af, endpoint.address.data(), text, sizeof text) == nullptr) return 0;
  const size_t n = std::strlen(text);
  if (n > out.size()) return 0;
  std::memcpy(out.data(), text, n);
  return n;
}

uint32_t crc32c(std::span<const uint8_t> bytes) {
  return ~crc32c_extend(0xFFFFFFFFu, bytes.data(), bytes.size());
}

std::expected<Header, ParseError> parse(std::span<const uint8_t> bytes) {
  // Filled in place: copying a finished Header into the result would cost a
  // good part of the whole parse.
  std::expected<Header, ParseError> result(std::in_place);
  if (const std::optional<ParseError> error = parse_into(bytes, *result)) {
    result = std::unexpected(*error);
  }
  return result;
}

size_t encode(std::span<uint8_t> out, const Endpoint& source, const Endpoint& destination,
              std::string_view sni, std::string_view alpn, bool with_crc32c) {
  if (source.family != destination.family) return 0;
  uint8_t fam;
  size_t address_bytes;
  if (source.family == Family::ipv4) {
    fam = kFamilyTcp4;
    address_bytes = kTcp4AddressBytes;
  } else if (source.family == Family::ipv6) {
    fam = kFamilyTcp6;
    address_bytes = kTcp6AddressBytes;
  } else {
    return 0;
  }
  // Each size is bounded before they are added, so the sum cannot wrap.
  if (sni.size() > max_payload_bytes || alpn.size() > max_payload_bytes) return 0;
  const size_t payload = address_bytes + (alpn.empty() ? 0 : kTlvHeaderBytes + alpn.size()) +
                         (sni.empty() ? 0 : kTlvHeaderBytes + sni.size()) +
                         (with_crc32c ? kTlvHeaderBytes + kCrc32cBytes : 0);
  if (payload > max_payload_bytes) return 0;
  const size_t total = fixed_header_bytes + payload;
  if (out.size() < total) return 0;

  uint8_t* const begin = out.data();
  std::memcpy(begin, signature.data(), signature_bytes);
  begin[12] = kVersion2 | kCommandProxy;
  begin[13] = fam;
  store_be16(begin + 14, payload);

  uint8_t* p = begin + fixed_header_bytes;
  if (fam == kFamilyTcp4) {
    std::memcpy(p, source.address.data(), 4);
    std::memcpy(p + 4, destination.address.data(), 4);
    store_be16(p + 8, source.port);
    store_be16(p + 10, destination.port);
  } else {
    std::memcpy(p, source.address.data(), 16);
    std::memcpy(p + 16, destination.address.data(), 16);
    store_be16(p + 32, source.port);
    store_be16(p + 34, destination.port);
  }
  p += address_bytes;
  if (!alpn.empty()) p = put_tlv(p, tlv_type::alpn, alpn);
  if (!sni.empty()) p = put_tlv(p, tlv_type::authority, sni);
  if (with_crc32c) {
    // The checksum covers the whole header with its own value zeroed.
    uint8_t* value = put_tlv(p, tlv_type::crc32c, std::string_view("\0\0\0\0", 4)) - kCrc32cBytes;
    store_be32(value, crc32c(std::span<const uint8_t>(begin, total)));
  }
  return total;
}

size_t encode_local(std::span<uint8_t> out) {
  if (out.size() < fixed_header_bytes) return 0;
  std::memcpy(out.data(), signature.data(), signature_bytes);
  out[12] = kVersion2 | kCommandLocal;
  out[13] = kFamilyUnspec;
  out[14] = 0;
  out[15] = 0;
  return fixed_header_bytes;
}

}  // namespace mf::proxy
