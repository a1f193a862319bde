#include "origin/jws_compact.h"

#include <gtest/gtest.h>

#include "common/base/base64url.h"

namespace mf::origin {
namespace {

TEST(JwsCompact, HeaderIsExactlyTheSpecsFields) {
  EXPECT_EQ(manifest_jws_header("k1"), R"({"alg":"ES256","typ":"mf-manifest+jws","kid":"k1"})");
}

TEST(JwsCompact, SigningInputAndCompactForm) {
  // RFC 7515 appendix A.3's header and payload, base64url without padding.
  std::string input = jws_signing_input(R"({"alg":"ES256"})", "{\"iss\":\"joe\",\r\n \"exp\":1300819380}");
  EXPECT_EQ(input, "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODB9");
  RawP256Signature signature{};
  for (size_t i = 0; i < signature.size(); ++i) signature[i] = static_cast<uint8_t>(i);
  std::string compact = jws_compact(input, signature);
  EXPECT_EQ(compact, input + "." + base64url(signature) + "\n");
  EXPECT_EQ(compact.find('='), std::string::npos);

  auto parts = parse_jws_compact(compact);
  ASSERT_TRUE(parts) << parts.error();
  EXPECT_EQ(parts->signing_input, input);
  EXPECT_EQ(parts->header_json, R"({"alg":"ES256"})");
  EXPECT_EQ(parts->payload_json, "{\"iss\":\"joe\",\r\n \"exp\":1300819380}");
  EXPECT_EQ(parts->signature, signature);
}

TEST(JwsCompact, MalformedIsRefused) {
  RawP256Signature signature{};
  std::string good = jws_compact("eyJ9.eyJ9", signature);
  EXPECT_FALSE(parse_jws_compact("a.b"));
  EXPECT_FALSE(parse_jws_compact("a.b.c.d"));
  EXPECT_FALSE(parse_jws_compact("eyJ9.eyJ9.AAAA"));        // a 3-byte signature
  EXPECT_FALSE(parse_jws_compact("eyJ9=.eyJ9." + base64url(signature)));  // padding
  EXPECT_FALSE(parse_jws_compact(good + "\n"));             // one newline only
}

}  // namespace
}  // namespace mf::origin
