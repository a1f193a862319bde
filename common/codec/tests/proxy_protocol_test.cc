#include "common/codec/proxy_protocol.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

namespace mf::proxy {
namespace {

using Bytes = std::vector<uint8_t>;

// The signature as the spec spells it: "\r\n\r\n\0\r\nQUIT\n".
const Bytes kSignature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 'Q', 'U', 'I', 'T', 0x0A};

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes tlv(uint8_t type, const Bytes& value) {
  return cat({{type, static_cast<uint8_t>(value.size() >> 8), static_cast<uint8_t>(value.size())},
              value});
}

// Signature, ver_cmd, fam and a len computed from `rest`.
Bytes header(uint8_t ver_cmd, uint8_t fam, const Bytes& rest) {
  return cat({kSignature,
              {ver_cmd, fam, static_cast<uint8_t>(rest.size() >> 8), static_cast<uint8_t>(rest.size())},
              rest});
}

// 192.0.2.1:51234 -> 198.51.100.7:443
const Bytes kTcp4Block = {192, 0, 2, 1, 198, 51, 100, 7, 0xC8, 0x22, 0x01, 0xBB};
const Endpoint kSource4 = Endpoint::ipv4({192, 0, 2, 1}, 51234);
const Endpoint kDestination4 = Endpoint::ipv4({198, 51, 100, 7}, 443);

// [2001:db8::1]:40000 -> [2001:db8:0:1::2]:8445
const Bytes kTcp6Block = {0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
                          0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x02,
                          0x9C, 0x40, 0x20, 0xFD};
const Endpoint kSource6 =
    Endpoint::ipv6({0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01}, 40000);
const Endpoint kDestination6 =
    Endpoint::ipv6({0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x02}, 8445);

ParseError parse_error(const Bytes& b) {
  auto parsed = parse(b);
  EXPECT_FALSE(parsed.has_value());
  return parsed ? ParseError{0xFF} : parsed.error();
}

Bytes encoded(const Endpoint& s, const Endpoint& d, std::string_view sni, std::string_view alpn,
              bool crc) {
  Bytes out(max_header_bytes);
  const size_t n = encode(out, s, d, sni, alpn, crc);
  out.resize(n);
  return out;
}

// Bit-at-a-time CRC-32C straight from the definition, to check the codec's.
uint32_t reference_crc32c(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int bit = 0; bit < 8; ++bit) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

bool points_into(std::string_view v, const Bytes& buffer) {
  const auto* b = reinterpret_cast<const char*>(buffer.data());
  return v.empty() || (v.data() >= b && v.data() + v.size() <= b + buffer.size());
}

// ---- constants ----

TEST(ProxyProtocol, Constants) {
  EXPECT_TRUE(std::equal(signature.begin(), signature.end(), kSignature.begin(), kSignature.end()));
  EXPECT_EQ(fixed_header_bytes, 16u);
  EXPECT_EQ(max_header_bytes, 16u + 536u);
  // The cap holds the largest header our encoder makes with a DNS name of
  // 253 bytes and a realistic ALPN ID over IPv6 with a CRC.
  Bytes out(max_header_bytes);
  EXPECT_GT(encode(out, kSource6, kDestination6, std::string(253, 'a'), "http/1.1", true), 0u);
}

// ---- CRC-32C ----

TEST(Crc32c, KnownVectors) {
  const Bytes digits = text("123456789");
  EXPECT_EQ(crc32c(digits), 0xE3069283u);
  EXPECT_EQ(crc32c({}), 0u);
  // RFC 3720 appendix B.4.
  EXPECT_EQ(crc32c(Bytes(32, 0x00)), 0x8A9136AAu);
  EXPECT_EQ(crc32c(Bytes(32, 0xFF)), 0x62A8AB43u);
  Bytes ascending(32);
  for (size_t i = 0; i < 32; ++i) ascending[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
}

TEST(Crc32c, MatchesReferenceAtEveryLengthAndAlignment) {
  Bytes data(300);
  uint32_t x = 12345;
  for (uint8_t& b : data) b = static_cast<uint8_t>((x = x * 1103515245u + 12345u) >> 16);
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t n = 0; offset + n <= data.size(); n += (n < 40 ? 1 : 13)) {
      EXPECT_EQ(crc32c(std::span<const uint8_t>(data.data() + offset, n)),
                reference_crc32c(data.data() + offset, n))
          << offset << " " << n;
    }
  }
}

// ---- encode: exact bytes ----

TEST(Encode, Ipv4WithAlpnAndSniByteExact) {
  const Bytes expected = {
      0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  // signature
      0x21,                                                                  // v2, PROXY
      0x11,                                                                  // TCP over IPv4
      0x00, 0x20,                                                            // len 32
      192,  0,    2,    1,                                                   // src addr
      198,  51,   100,  7,                                                   // dst addr
      0xC8, 0x22,                                                            // src port 51234
      0x01, 0xBB,                                                            // dst port 443
      0x01, 0x00, 0x02, 'h',  '2',                                           // ALPN "h2"
      0x02, 0x00, 0x0C, 'e',  'd',  'g',  'e',  '.',  'e',  'x',  'a',  'm',  'p',
      'l',  'e',                                                             // AUTHORITY
  };
  EXPECT_EQ(encoded(kSource4, kDestination4, "edge.example", "h2", false), expected);
}

TEST(Encode, Ipv6WithoutTlvsByteExact) {
  const Bytes expected = cat({kSignature, {0x21, 0x21, 0x00, 0x24}, kTcp6Block});
  EXPECT_EQ(encoded(kSource6, kDestination6, "", "", false), expected);
}

TEST(Encode, Crc32cTlvIsLastAndCoversHeaderWithZeroedValue) {
  const Bytes out = encoded(kSource4, kDestination4, "edge.example", "h2", true);
  ASSERT_EQ(out.size(), 16u + 12 + 5 + 15 + 7);
  EXPECT_EQ(out[15], 12 + 5 + 15 + 7);
  const size_t tlv_at = out.size() - 7;
  EXPECT_EQ(out[tlv_at], 0x03);
  EXPECT_EQ(out[tlv_at + 1], 0x00);
  EXPECT_EQ(out[tlv_at + 2], 0x04);
  Bytes zeroed = out;
  std::memset(zeroed.data() + tlv_at + 3, 0, 4);
  const uint32_t crc = reference_crc32c(zeroed.data(), zeroed.size());
  EXPECT_EQ(out[tlv_at + 3], crc >> 24);
  EXPECT_EQ(out[tlv_at + 4], (crc >> 16) & 0xFF);
  EXPECT_EQ(out[tlv_at + 5], (crc >> 8) & 0xFF);
  EXPECT_EQ(out[tlv_at + 6], crc & 0xFF);
  // The prefix is the same as without the CRC.
  const Bytes plain = encoded(kSource4, kDestination4, "edge.example", "h2", false);
  EXPECT_TRUE(std::equal(plain.begin() + 16, plain.end(), out.begin() + 16));
}

TEST(Encode, LocalByteExact) {
  Bytes out(16, 0xEE);
  EXPECT_EQ(encode_local(out), 16u);
  EXPECT_EQ(out, cat({kSignature, {0x20, 0x00, 0x00, 0x00}}));
  Bytes small(15);
  EXPECT_EQ(encode_local(small), 0u);
}

TEST(Encode, Refusals) {
  Bytes out(max_header_bytes);
  EXPECT_EQ(encode(out, kSource4, kDestination6, "", "", false), 0u);  // mixed families
  EXPECT_EQ(encode(out, kSource6, kDestination4, "", "", false), 0u);
  Endpoint bogus = kSource4;
  bogus.family = static_cast<Family>(5);
  EXPECT_EQ(encode(out, bogus, bogus, "", "", false), 0u);

  // Too small by one byte, then exactly enough.
  const size_t needed = 16 + 12 + 5 + 15 + 7;
  Bytes tight(needed - 1);
  EXPECT_EQ(encode(tight, kSource4, kDestination4, "edge.example", "h2", true), 0u);
  tight.resize(needed);
  EXPECT_EQ(encode(tight, kSource4, kDestination4, "edge.example", "h2", true), needed);
  EXPECT_EQ(encode({}, kSource4, kDestination4, "", "", false), 0u);

  // Over the cap: IPv6 (36) + CRC (7) + two TLV headers (6) leave 487 value bytes.
  const std::string sni(400, 's');
  EXPECT_EQ(encode(out, kSource6, kDestination6, sni, std::string(87, 'a'), true),
            max_header_bytes);
  EXPECT_EQ(encode(out, kSource6, kDestination6, sni, std::string(88, 'a'), true), 0u);
  EXPECT_EQ(encode(out, kSource6, kDestination6, std::string(70000, 's'), "", false), 0u);
}

// ---- round trips ----

struct RoundTrip {
  Endpoint source, destination;
  std::string_view sni, alpn;
  bool crc;
};

class ProxyRoundTrip : public ::testing::TestWithParam<RoundTrip> {};

TEST_P(ProxyRoundTrip, ParseReturnsWhatWasEncoded) {
  const RoundTrip& c = GetParam();
  const Bytes wire = encoded(c.source, c.destination, c.sni, c.alpn, c.crc);
  ASSERT_FALSE(wire.empty());
  auto h = parse(wire);
  ASSERT_TRUE(h.has_value()) << static_cast<int>(h.error());
  EXPECT_EQ(h->command, Command::proxy);
  EXPECT_TRUE(h->has_addresses);
  EXPECT_EQ(h->source, c.source);
  EXPECT_EQ(h->destination, c.destination);
  EXPECT_EQ(h->sni, c.sni);
  EXPECT_EQ(h->alpn, c.alpn);
  EXPECT_EQ(h->crc32c_verified, c.crc);
  EXPECT_EQ(h->length, wire.size());
  EXPECT_TRUE(points_into(h->sni, wire));
  EXPECT_TRUE(points_into(h->alpn, wire));
}

std::vector<RoundTrip> round_trips() {
  std::vector<RoundTrip> all;
  const std::pair<Endpoint, Endpoint> pairs[] = {{kSource4, kDestination4},
                                                 {kSource6, kDestination6}};
  const std::pair<std::string_view, std::string_view> tlvs[] = {
      {"", ""}, {"edge.example", ""}, {"", "http/1.1"}, {"edge-eu-1.meshedflow.example", "h2"}};
  for (const auto& [s, d] : pairs) {
    for (const auto& [sni, alpn] : tlvs) {
      for (bool crc : {false, true}) all.push_back({s, d, sni, alpn, crc});
    }
  }
  // Extremes of address and port.
  all.push_back({Endpoint::ipv4({0, 0, 0, 0}, 0), Endpoint::ipv4({255, 255, 255, 255}, 65535),
                 "x", "y", true});
  std::array<uint8_t, 16> ones;
  ones.fill(0xFF);
  all.push_back({Endpoint::ipv6({}, 65535), Endpoint::ipv6(ones, 1), "", "", true});
  return all;
}

INSTANTIATE_TEST_SUITE_P(All, ProxyRoundTrip, ::testing::ValuesIn(round_trips()));

TEST(Encode, LocalRoundTrip) {
  Bytes out(16);
  ASSERT_EQ(encode_local(out), 16u);
  auto h = parse(out);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->command, Command::local);
  EXPECT_FALSE(h->has_addresses);
  EXPECT_EQ(h->length, 16u);
}

// ---- parse: accepted forms ----

TEST(Parse, HandWrittenIpv4) {
  const Bytes wire = header(0x21, 0x11, kTcp4Block);
  auto h = parse(wire);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->command, Command::proxy);
  EXPECT_TRUE(h->has_addresses);
  EXPECT_EQ(h->source, kSource4);
  EXPECT_EQ(h->destination, kDestination4);
  EXPECT_TRUE(h->sni.empty());
  EXPECT_TRUE(h->alpn.empty());
  EXPECT_FALSE(h->crc32c_verified);
  EXPECT_EQ(h->length, 28u);
}

TEST(Parse, HandWrittenIpv6) {
  const Bytes wire = header(0x21, 0x21, kTcp6Block);
  auto h = parse(wire);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->source, kSource6);
  EXPECT_EQ(h->destination, kDestination6);
  EXPECT_EQ(h->source.family, Family::ipv6);
  EXPECT_EQ(h->length, 52u);
}

TEST(Parse, SkipsUnknownAndNoopTlvs) {
  const Bytes wire = header(0x21, 0x11,
                            cat({kTcp4Block, tlv(0x04, Bytes(5, 0)), tlv(0x02, text("sni.example")),
                                 tlv(0x05, text("unique-id")),
                                 tlv(0x20, {0x07, 0, 0, 0, 0, 0x21, 0, 3, 'v', '1', '3'}),
                                 tlv(0x01, text("h2")), tlv(0x30, text("netns")), tlv(0xEE, {})}));
  auto h = parse(wire);
  ASSERT_TRUE(h.has_value()) << static_cast<int>(h.error());
  EXPECT_EQ(h->sni, "sni.example");
  EXPECT_EQ(h->alpn, "h2");
  EXPECT_TRUE(points_into(h->sni, wire));
  EXPECT_TRUE(points_into(h->alpn, wire));
  EXPECT_EQ(h->length, wire.size());
}

TEST(Parse, EmptyTlvValues) {
  const Bytes wire = header(0x21, 0x11, cat({kTcp4Block, tlv(0x01, {}), tlv(0x02, {})}));
  auto h = parse(wire);
  ASSERT_TRUE(h.has_value());
  EXPECT_TRUE(h->sni.empty());
  EXPECT_TRUE(h->alpn.empty());
}

TEST(Parse, CrcTlvAnywhereIsVerified) {
  // The CRC TLV first, then others: the zeroed value sits mid-header.
  Bytes wire = header(0x21, 0x11, cat({kTcp4Block, tlv(0x03, {0, 0, 0, 0}),
                                       tlv(0x02, text("a.example"))}));
  const size_t value_at = 16 + 12 + 3;
  const uint32_t crc = reference_crc32c(wire.data(), wire.size());
  wire[value_at] = crc >> 24;
  wire[value_at + 1] = crc >> 16;
  wire[value_at + 2] = crc >> 8;
  wire[value_at + 3] = crc;
  auto h = parse(wire);
  ASSERT_TRUE(h.has_value()) << static_cast<int>(h.error());
  EXPECT_TRUE(h->crc32c_verified);
  EXPECT_EQ(h->sni, "a.example");
  wire[value_at + 3] ^= 1;
  EXPECT_EQ(parse_error(wire), ParseError::bad_crc);
}

TEST(Parse, LocalDiscardsTheProtocolBlock) {
  // LOCAL with an address block and TLVs that would be invalid under PROXY:
  // the spec has the receiver ignore all of it, family included.
  for (uint8_t fam : {0x00, 0x11, 0x21, 0x12, 0x31, 0xFF}) {
    const Bytes wire = header(0x20, fam, cat({kTcp4Block, {0x02, 0xFF}}));
    auto h = parse(wire);
    ASSERT_TRUE(h.has_value()) << int{fam};
    EXPECT_EQ(h->command, Command::local);
    EXPECT_FALSE(h->has_addresses);
    EXPECT_TRUE(h->sni.empty());
    EXPECT_EQ(h->length, wire.size());
  }
  // Its len still counts: short of it is incomplete, over the cap too_large.
  const Bytes wire = header(0x20, 0x00, Bytes(20, 0));
  EXPECT_EQ(parse_error(Bytes(wire.begin(), wire.end() - 1)), ParseError::incomplete);
  Bytes large = header(0x20, 0x00, {});
  large[14] = 0x02;
  large[15] = 0x19;  // 537
  EXPECT_EQ(parse_error(large), ParseError::too_large);
}

TEST(Parse, ProxyWithUnspecFamilyHasNoAddressesButTlvs) {
  Bytes wire = header(0x21, 0x00, cat({tlv(0x02, text("edge.example")), tlv(0x03, {0, 0, 0, 0})}));
  const uint32_t crc = reference_crc32c(wire.data(), wire.size());
  for (int i = 0; i < 4; ++i) wire[wire.size() - 4 + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
  auto h = parse(wire);
  ASSERT_TRUE(h.has_value()) << static_cast<int>(h.error());
  EXPECT_EQ(h->command, Command::proxy);
  EXPECT_FALSE(h->has_addresses);
  EXPECT_EQ(h->sni, "edge.example");
  EXPECT_TRUE(h->crc32c_verified);

  auto bare = parse(header(0x21, 0x00, {}));
  ASSERT_TRUE(bare.has_value());
  EXPECT_FALSE(bare->has_addresses);
  EXPECT_EQ(bare->length, 16u);
}

TEST(Parse, LargestAcceptedHeader) {
  // len 536 exactly, padded with NOOP.
  const Bytes wire = header(0x21, 0x11, cat({kTcp4Block, tlv(0x04, Bytes(536 - 12 - 3, 0xAB))}));
  ASSERT_EQ(wire.size(), max_header_bytes);
  auto h = parse(wire);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->length, max_header_bytes);
}

// ---- parse: incremental input and trailing data ----

TEST(Parse, IncompleteUntilTheLastByte) {
  const Bytes cases[] = {
      encoded(kSource4, kDestination4, "edge-eu-1.meshedflow.example", "http/1.1", true),
      encoded(kSource6, kDestination6, "", "", false),
      header(0x21, 0x00, {}),
      header(0x20, 0x00, Bytes(9, 0x42)),
  };
  for (const Bytes& wire : cases) {
    for (size_t n = 0; n < wire.size(); ++n) {
      auto h = parse(std::span<const uint8_t>(wire.data(), n));
      ASSERT_FALSE(h.has_value()) << n;
      EXPECT_EQ(h.error(), ParseError::incomplete) << n;
    }
    auto h = parse(wire);
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->length, wire.size());
  }
}

TEST(Parse, EmptyInputIsIncomplete) {
  EXPECT_EQ(parse_error({}), ParseError::incomplete);
  EXPECT_EQ(parse(std::span<const uint8_t>()).error(), ParseError::incomplete);
}

TEST(Parse, TrailingDataIsNotConsumed) {
  const Bytes head = encoded(kSource4, kDestination4, "edge.example", "h2", true);
  // A TLS ClientHello record start, then another complete PROXY header.
  const Bytes stream = cat({head, {0x16, 0x03, 0x01, 0x02, 0x00}, head});
  auto h = parse(stream);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->length, head.size());
  EXPECT_EQ(stream[h->length], 0x16);
  EXPECT_EQ(h->sni, "edge.example");

  // Whatever follows, the result is the same; the CRC does not cover it.
  Bytes garbage = cat({head, Bytes(1000, 0xFF)});
  auto g = parse(garbage);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->length, head.size());
}

// ---- parse errors ----

TEST(ParseError, V1TextIsRefused) {
  EXPECT_EQ(parse_error(text("PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n")),
            ParseError::not_proxy_v2);
  EXPECT_EQ(parse_error(text("PROXY UNKNOWN\r\n")), ParseError::not_proxy_v2);
  // Refused at the first byte, without waiting for more.
  EXPECT_EQ(parse_error(text("P")), ParseError::not_proxy_v2);
}

TEST(ParseError, NotProxyAtAll) {
  EXPECT_EQ(parse_error({0x16, 0x03, 0x01}), ParseError::not_proxy_v2);  // TLS
  EXPECT_EQ(parse_error(text("GET / HTTP/1.1\r\n\r\n")), ParseError::not_proxy_v2);
  // Any single wrong byte of the signature, seen as soon as it arrives.
  const Bytes good = encoded(kSource4, kDestination4, "", "", false);
  for (size_t i = 0; i < signature_bytes; ++i) {
    Bytes bad = good;
    bad[i] ^= 0x40;
    EXPECT_EQ(parse_error(bad), ParseError::not_proxy_v2) << i;
    EXPECT_EQ(parse_error(Bytes(bad.begin(), bad.begin() + i + 1)), ParseError::not_proxy_v2) << i;
  }
}

TEST(ParseError, BadVersion) {
  for (uint8_t v : {0x00, 0x01, 0x11, 0x31, 0xF1}) {
    EXPECT_EQ(parse_error(header(v, 0x11, kTcp4Block)), ParseError::bad_version) << int{v};
    // Known with 13 bytes.
    EXPECT_EQ(parse_error(cat({kSignature, {v}})), ParseError::bad_version) << int{v};
  }
}

TEST(ParseError, BadCommand) {
  for (int c = 0x22; c <= 0x2F; ++c) {
    EXPECT_EQ(parse_error(header(static_cast<uint8_t>(c), 0x11, kTcp4Block)),
              ParseError::bad_command)
        << c;
  }
  EXPECT_EQ(parse_error(cat({kSignature, {0x22}})), ParseError::bad_command);
}

TEST(ParseError, BadFamily) {
  // Everything but UNSPEC, TCP4 and TCP6 under PROXY: UDP, UNIX, unknown.
  for (int fam = 0; fam < 256; ++fam) {
    if (fam == 0x00 || fam == 0x11 || fam == 0x21) continue;
    EXPECT_EQ(parse_error(header(0x21, static_cast<uint8_t>(fam), Bytes(216, 0))),
              ParseError::bad_family)
        << fam;
  }
  // Known with 14 bytes.
  EXPECT_EQ(parse_error(cat({kSignature, {0x21, 0x12}})), ParseError::bad_family);
  EXPECT_EQ(parse_error(cat({kSignature, {0x21, 0x31}})), ParseError::bad_family);
}

TEST(ParseError, BadLength) {
  EXPECT_EQ(parse_error(header(0x21, 0x11, Bytes(11, 0))), ParseError::bad_length);
  EXPECT_EQ(parse_error(header(0x21, 0x21, Bytes(35, 0))), ParseError::bad_length);
  EXPECT_EQ(parse_error(header(0x21, 0x21, kTcp4Block)), ParseError::bad_length);
  EXPECT_EQ(parse_error(header(0x21, 0x11, {})), ParseError::bad_length);
  // Known from the 16 fixed bytes alone.
  EXPECT_EQ(parse_error(cat({kSignature, {0x21, 0x21, 0x00, 0x0C}})), ParseError::bad_length);
}

TEST(ParseError, TooLarge) {
  for (uint16_t len : {537, 1000, 0xFFFF}) {
    // Known from the 16 fixed bytes alone.
    const Bytes fixed = cat({kSignature, {0x21, 0x11, static_cast<uint8_t>(len >> 8),
                                          static_cast<uint8_t>(len)}});
    EXPECT_EQ(parse_error(fixed), ParseError::too_large) << len;
    Bytes whole = fixed;
    whole.resize(16 + len, 0);
    EXPECT_EQ(parse_error(whole), ParseError::too_large) << len;
  }
}

TEST(ParseError, BadTlv) {
  // One or two bytes left over: not even a TLV header.
  EXPECT_EQ(parse_error(header(0x21, 0x11, cat({kTcp4Block, {0x04}}))), ParseError::bad_tlv);
  EXPECT_EQ(parse_error(header(0x21, 0x11, cat({kTcp4Block, {0x04, 0x00}}))), ParseError::bad_tlv);
  EXPECT_EQ(parse_error(header(0x21, 0x11, cat({kTcp4Block, tlv(0x01, text("h2")), {0x02}}))),
            ParseError::bad_tlv);
  // A value running past len, for known and unknown types.
  for (uint8_t type : {0x01, 0x02, 0x03, 0x04, 0x05, 0x20, 0xFF}) {
    Bytes t = tlv(type, text("abcd"));
    t[2] = 5;
    EXPECT_EQ(parse_error(header(0x21, 0x11, cat({kTcp4Block, t}))), ParseError::bad_tlv)
        << int{type};
    Bytes huge = tlv(type, text("abcd"));
    huge[1] = 0xFF;
    EXPECT_EQ(parse_error(header(0x21, 0x11, cat({kTcp4Block, huge}))), ParseError::bad_tlv)
        << int{type};
  }
  // CRC32C value of the wrong size.
  EXPECT_EQ(parse_error(header(0x21, 0x11, cat({kTcp4Block, tlv(0x03, {0, 0, 0})}))),
            ParseError::bad_tlv);
  EXPECT_EQ(parse_error(header(0x21, 0x11, cat({kTcp4Block, tlv(0x03, {0, 0, 0, 0, 0})}))),
            ParseError::bad_tlv);
  // Repeated ALPN, AUTHORITY or CRC32C: which one would count is ambiguous.
  EXPECT_EQ(parse_error(header(0x21, 0x11,
                               cat({kTcp4Block, tlv(0x01, text("h2")), tlv(0x01, text("h2"))}))),
            ParseError::bad_tlv);
  EXPECT_EQ(parse_error(header(0x21, 0x11,
                               cat({kTcp4Block, tlv(0x02, text("a")), tlv(0x02, text("b"))}))),
            ParseError::bad_tlv);
  EXPECT_EQ(parse_error(header(0x21, 0x11, cat({kTcp4Block, tlv(0x03, {0, 0, 0, 0}),
                                                tlv(0x03, {0, 0, 0, 0})}))),
            ParseError::bad_tlv);
  // Repeated NOOP and unknown types are fine.
  EXPECT_TRUE(parse(header(0x21, 0x11, cat({kTcp4Block, tlv(0x04, {}), tlv(0x04, {1}),
                                            tlv(0x05, {}), tlv(0x05, {})})))
                  .has_value());
}

TEST(ParseError, CrcMismatchDetected) {
  const Bytes good = encoded(kSource4, kDestination4, "edge.example", "h2", true);
  ASSERT_TRUE(parse(good).has_value());
  // A flipped bit in the addresses, in a TLV value or in the checksum itself.
  const std::pair<size_t, size_t> ranges[] = {
      {16, 28}, {16 + 12 + 3, 16 + 12 + 5}, {16 + 12 + 5 + 3, 16 + 12 + 5 + 15},
      {good.size() - 4, good.size()}};
  for (const auto& [from, to] : ranges) {
    for (size_t i = from; i < to; ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        Bytes bad = good;
        bad[i] ^= static_cast<uint8_t>(1u << bit);
        EXPECT_EQ(parse_error(bad), ParseError::bad_crc) << i << " " << bit;
      }
    }
  }
  // A changed TLV type (ALPN to an unknown 0x06) keeps the shape, not the sum.
  Bytes retyped = good;
  retyped[16 + 12] = 0x06;
  EXPECT_EQ(parse_error(retyped), ParseError::bad_crc);
  // A zero checksum on the wire is not special.
  Bytes zero = good;
  std::memset(zero.data() + zero.size() - 4, 0, 4);
  EXPECT_EQ(parse_error(zero), ParseError::bad_crc);
}

// ---- addresses ----

TEST(FormatAddress, Forms) {
  std::array<char, max_address_text> out;
  auto fmt = [&](const Endpoint& e) { return std::string(out.data(), format_address(out, e)); };
  EXPECT_EQ(fmt(kSource4), "192.0.2.1");
  EXPECT_EQ(fmt(Endpoint::ipv4({255, 255, 255, 255}, 1)), "255.255.255.255");
  EXPECT_EQ(fmt(kSource6), "2001:db8::1");
  EXPECT_EQ(fmt(kDestination6), "2001:db8:0:1::2");
  EXPECT_EQ(fmt(Endpoint::ipv6({}, 0)), "::");
  EXPECT_EQ(fmt(Endpoint::ipv6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 192, 0, 2, 1}, 0)),
            "::ffff:192.0.2.1");
  std::array<uint8_t, 16> ones;
  ones.fill(0xFF);
  EXPECT_EQ(fmt(Endpoint::ipv6(ones, 0)), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

TEST(FormatAddress, TooSmallOrInvalid) {
  std::array<char, 9> exact;
  EXPECT_EQ(format_address(exact, kSource4), 9u);
  EXPECT_EQ(std::string_view(exact.data(), 9), "192.0.2.1");
  std::array<char, 8> small;
  EXPECT_EQ(format_address(small, kSource4), 0u);
  EXPECT_EQ(format_address({}, kSource6), 0u);
  Endpoint bogus = kSource4;
  bogus.family = static_cast<Family>(0);
  std::array<char, max_address_text> out;
  EXPECT_EQ(format_address(out, bogus), 0u);
}

TEST(EndpointFromSockaddr, Inet) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(51234);
  ASSERT_EQ(inet_pton(AF_INET, "192.0.2.1", &in.sin_addr), 1);
  auto e = endpoint_from_sockaddr(reinterpret_cast<const sockaddr*>(&in), sizeof in);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, kSource4);
  EXPECT_FALSE(endpoint_from_sockaddr(reinterpret_cast<const sockaddr*>(&in), sizeof in - 1));
}

TEST(EndpointFromSockaddr, Inet6ThroughStorage) {
  sockaddr_storage storage{};
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(8445);
  ASSERT_EQ(inet_pton(AF_INET6, "2001:db8:0:1::2", &in6->sin6_addr), 1);
  auto e = endpoint_from_sockaddr(reinterpret_cast<const sockaddr*>(&storage), sizeof storage);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, kDestination6);
  EXPECT_FALSE(
      endpoint_from_sockaddr(reinterpret_cast<const sockaddr*>(&storage), sizeof(sockaddr_in)));
}

TEST(EndpointFromSockaddr, OtherFamilies) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  EXPECT_FALSE(endpoint_from_sockaddr(reinterpret_cast<const sockaddr*>(&un), sizeof un));
  EXPECT_FALSE(endpoint_from_sockaddr(nullptr, 0));
  sockaddr_in in{};
  in.sin_family = AF_INET;
  EXPECT_FALSE(endpoint_from_sockaddr(reinterpret_cast<const sockaddr*>(&in), 1));
}

}  // namespace
}  // namespace mf::proxy
