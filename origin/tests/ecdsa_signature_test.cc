#include "origin/ecdsa_signature.h"

#include <gtest/gtest.h>

#include "origin/p256_key.h"

namespace mf::origin {
namespace {

std::vector<uint8_t> bytes(std::initializer_list<int> values) {
  std::vector<uint8_t> out;
  for (int v : values) out.push_back(static_cast<uint8_t>(v));
  return out;
}

TEST(EcdsaSignature, ShortIntegersAreLeftPadded) {
  // r = 1, s = 0x80 (needs a 0x00 sign byte in DER).
  auto raw = der_to_raw_p256(bytes({0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80}));
  ASSERT_TRUE(raw) << raw.error();
  RawP256Signature expected{};
  expected[31] = 1;
  expected[63] = 0x80;
  EXPECT_EQ(*raw, expected);
  EXPECT_EQ(raw_to_der_p256(expected), bytes({0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80}));
}

TEST(EcdsaSignature, FullWidthIntegersWithSignByte) {
  std::vector<uint8_t> der{0x30, 0x46, 0x02, 0x21, 0x00};
  for (int i = 0; i < 32; ++i) der.push_back(static_cast<uint8_t>(0xff - i));
  der.insert(der.end(), {0x02, 0x21, 0x00});
  for (int i = 0; i < 32; ++i) der.push_back(static_cast<uint8_t>(0x80 + i));
  auto raw = der_to_raw_p256(der);
  ASSERT_TRUE(raw) << raw.error();
  EXPECT_EQ((*raw)[0], 0xff);
  EXPECT_EQ((*raw)[32], 0x80);
  EXPECT_EQ(raw_to_der_p256(*raw), der);
}

TEST(EcdsaSignature, OpenSslSignaturesRoundTripAndVerify) {
  auto key = P256PrivateKey::generate();
  ASSERT_TRUE(key) << key.error();
  for (int i = 0; i < 50; ++i) {
    std::string message = "message " + std::to_string(i);
    auto raw = key->sign(message);
    ASSERT_TRUE(raw) << raw.error();
    EXPECT_TRUE(key->public_key().verify(message, *raw));
    auto again = der_to_raw_p256(raw_to_der_p256(*raw));
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *raw);
    RawP256Signature flipped = *raw;
    flipped[i % 64] ^= 1;
    EXPECT_FALSE(key->public_key().verify(message, flipped));
  }
}

TEST(EcdsaSignature, MalformedDerIsRefused) {
  EXPECT_FALSE(der_to_raw_p256(bytes({})));
  EXPECT_FALSE(der_to_raw_p256(bytes({0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})));        // not SEQUENCE
  EXPECT_FALSE(der_to_raw_p256(bytes({0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})));        // length
  EXPECT_FALSE(der_to_raw_p256(bytes({0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01})));        // negative
  EXPECT_FALSE(der_to_raw_p256(bytes({0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01})));  // not minimal
  EXPECT_FALSE(der_to_raw_p256(bytes({0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01})));        // zero
  EXPECT_FALSE(der_to_raw_p256(bytes({0x30, 0x08, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00, 0x00})));  // trailing
  EXPECT_FALSE(der_to_raw_p256(bytes({0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})));  // long form
  std::vector<uint8_t> too_big{0x30, 0x26, 0x02, 0x21, 0x01};
  too_big.insert(too_big.end(), 32, 0x01);
  too_big.insert(too_big.end(), {0x02, 0x01, 0x01});
  EXPECT_EQ(der_to_raw_p256(too_big).error(), "r: INTEGER above 2^256");
}

}  // namespace
}  // namespace mf::origin
