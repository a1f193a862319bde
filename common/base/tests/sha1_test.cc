#include "common/base/sha1.h"

#include <gtest/gtest.h>

#include <string>

namespace mf {
namespace {

std::string hex(const Sha1Digest& digest) {
  std::string out;
  for (uint8_t b : digest) {
    out += "0123456789abcdef"[b >> 4];
    out += "0123456789abcdef"[b & 15];
  }
  return out;
}

// The FIPS 180-4 examples (NIST's "Cryptographic Standards and Guidelines:
// Examples with Intermediate Values", SHA1.pdf and SHA1LongMessage).
TEST(Sha1, NistOneBlockMessageAbc) {
  EXPECT_EQ(hex(sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST(Sha1, NistTwoBlockMessage448Bits) {
  EXPECT_EQ(hex(sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

TEST(Sha1, NistOneMillionA) {
  EXPECT_EQ(hex(sha1(std::string(1000000, 'a'))), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST(Sha1, Rfc6455AcceptKeyExample) {
  // RFC 6455 section 1.3: the key "dGhlIHNhbXBsZSBub25jZQ==" and the GUID
  // hash to these bytes, whose base64 is "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
  // (common/codec/tests/websocket_upgrade_test.cc checks that form).
  Sha1 hash;
  hash.update("dGhlIHNhbXBsZSBub25jZQ==");
  hash.update("258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
  EXPECT_EQ(hex(hash.digest()), "b37a4f2cc0624f1690f64606cf385945b2bec4ea");
}

TEST(Sha1, EmptyMessage) { EXPECT_EQ(hex(sha1("")), "da39a3ee5e6b4b0d3255bfef95601890afd80709"); }

TEST(Sha1, PaddingAtEveryLengthAroundABlockBoundary) {
  // Lengths 55, 56 and 64 put the length field in the same block, the next
  // one, or a block of padding only; each is checked against the same bytes
  // hashed in one piece and in two.
  const std::string million(1000000, 'a');
  for (size_t n : {55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u, 128u}) {
    const std::string message(n, 'q');
    for (size_t cut = 0; cut <= n; ++cut) {
      Sha1 pieces;
      pieces.update(std::string_view(message).substr(0, cut));
      pieces.update(std::string_view(message).substr(cut));
      ASSERT_EQ(hex(pieces.digest()), hex(sha1(message))) << n << " cut at " << cut;
    }
  }
  // The million 'a' fed in uneven pieces.
  Sha1 uneven;
  for (size_t at = 0; at < million.size(); at += 997) uneven.update(std::string_view(million).substr(at, 997));
  EXPECT_EQ(hex(uneven.digest()), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST(Sha1, KnownDigestsOfOtherLengths) {
  // `printf %s ... | sha1sum`
  EXPECT_EQ(hex(sha1("The quick brown fox jumps over the lazy dog")), "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
  EXPECT_EQ(hex(sha1(std::string(64, 'a'))), "0098ba824b5c16427bd7a1122a5a442a25ec644d");
}

}  // namespace
}  // namespace mf
