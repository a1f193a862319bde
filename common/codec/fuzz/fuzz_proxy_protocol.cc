// Arbitrary bytes as the start of a connection behind a PROXY v2 sender:
// parse them, check every promise of the parser, re-encode what it found and
// parse that back. The same bytes also drive the encoder directly. Aborts
// when an invariant breaks.

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "common/codec/proxy_protocol.h"

namespace {

using namespace mf::proxy;

void check(bool ok) {
  if (!ok) std::abort();
}

bool inside(std::string_view v, std::span<const uint8_t> bytes, size_t length) {
  const auto* b = reinterpret_cast<const char*>(bytes.data());
  return v.empty() || (v.data() >= b && v.data() + v.size() <= b + length);
}

bool same(const Header& a, const Header& b) {
  return a.command == b.command && a.has_addresses == b.has_addresses && a.source == b.source &&
         a.destination == b.destination && a.sni == b.sni && a.alpn == b.alpn &&
         a.crc32c_verified == b.crc32c_verified && a.length == b.length;
}

void check_endpoint_text(const Endpoint& e) {
  std::array<char, max_address_text> text;
  const size_t n = format_address(text, e);
  check(n > 0 && n <= text.size());
}

void check_header(std::span<const uint8_t> bytes, const Header& h) {
  check(h.length >= fixed_header_bytes && h.length <= bytes.size() &&
        h.length <= max_header_bytes);
  check(inside(h.sni, bytes, h.length) && inside(h.alpn, bytes, h.length));
  if (h.command == Command::local) {
    check(!h.has_addresses && h.sni.empty() && h.alpn.empty() && !h.crc32c_verified);
  }
  if (h.has_addresses) {
    check(h.source.family == h.destination.family);
    check_endpoint_text(h.source);
    check_endpoint_text(h.destination);
  }

  // The header alone parses the same, and so does any prefix's refusal to:
  // one byte short is incomplete.
  auto alone = parse(bytes.first(h.length));
  check(alone.has_value() && same(*alone, h));
  auto short_by_one = parse(bytes.first(h.length - 1));
  check(!short_by_one && short_by_one.error() == ParseError::incomplete);

  // parse(encode(parse(x))) gives back what parse(x) gave, up to length.
  std::array<uint8_t, max_header_bytes> out;
  size_t n = 0;
  if (h.command == Command::local) {
    n = encode_local(out);
  } else if (h.has_addresses) {
    n = encode(out, h.source, h.destination, h.sni, h.alpn, h.crc32c_verified);
  } else {
    return;  // PROXY over UNSPEC: the encoder never produces it
  }
  // What the encoder writes is a subset of what was parsed, so it fits.
  check(n > 0 && n <= h.length);
  auto again = parse(std::span<const uint8_t>(out.data(), n));
  check(again.has_value());
  Header expected = h;
  expected.length = n;
  expected.sni = again->sni;  // compared by content below, not by address
  expected.alpn = again->alpn;
  check(same(*again, expected) && again->sni == h.sni && again->alpn == h.alpn);
}

// Bytes past a parsed header, or after a refused prefix, change nothing.
void check_extension(std::span<const uint8_t> bytes,
                     const std::expected<Header, ParseError>& result) {
  if (!result && result.error() == ParseError::incomplete) return;
  std::vector<uint8_t> longer(bytes.begin(), bytes.end());
  longer.resize(bytes.size() + 64, 0xA5);
  auto again = parse(longer);
  check(again.has_value() == result.has_value());
  if (result) {
    check(again->length == result->length && again->sni == result->sni &&
          again->alpn == result->alpn && again->source == result->source);
  } else {
    check(again.error() == result.error());
  }
}

// The input as encoder arguments: byte 0 picks family and CRC, then two
// addresses and ports, then the rest split into SNI and ALPN.
void check_encoder(std::span<const uint8_t> bytes) {
  if (bytes.size() < 1 + 2 * 16 + 2 * 2 + 2) return;
  const uint8_t flags = bytes[0];
  auto endpoint = [&](size_t at) {
    Endpoint e;
    std::array<uint8_t, 16> a{};
    if (flags & 1) {
      std::memcpy(a.data(), bytes.data() + at, 16);
      e = Endpoint::ipv6(a, static_cast<uint16_t>(bytes[at + 16] << 8 | bytes[at + 17]));
    } else {
      e = Endpoint::ipv4({bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]},
                         static_cast<uint16_t>(bytes[at + 16] << 8 | bytes[at + 17]));
    }
    return e;
  };
  const Endpoint source = endpoint(1), destination = endpoint(19);
  const bool with_crc = flags & 2;
  const std::string_view rest(reinterpret_cast<const char*>(bytes.data()) + 37, bytes.size() - 37);
  const size_t split = rest.empty() ? 0 : bytes[37] % (rest.size() + 1);
  const std::string_view sni = rest.substr(0, split), alpn = rest.substr(split);

  std::array<uint8_t, max_header_bytes> out;
  const size_t n = encode(out, source, destination, sni, alpn, with_crc);
  const size_t needed = fixed_header_bytes + (flags & 1 ? 36 : 12) +
                        (sni.empty() ? 0 : 3 + sni.size()) + (alpn.empty() ? 0 : 3 + alpn.size()) +
                        (with_crc ? 7 : 0);
  check(n == (needed <= max_header_bytes ? needed : 0));
  if (n == 0) return;
  auto h = parse(std::span<const uint8_t>(out.data(), n));
  check(h.has_value() && h->command == Command::proxy && h->has_addresses &&
        h->source == source && h->destination == destination && h->sni == sni &&
        h->alpn == alpn && h->crc32c_verified == with_crc && h->length == n);
  // One byte less of room is refused.
  check(encode(std::span<uint8_t>(out.data(), n - 1), source, destination, sni, alpn, with_crc) ==
        0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  auto result = parse(bytes);
  if (result) check_header(bytes, *result);
  check_extension(bytes, result);
  check_encoder(bytes);
  return 0;
}
