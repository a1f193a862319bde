#include "common/base/base64url.h"

#include <gtest/gtest.h>

namespace mf {
namespace {

TEST(Base64url, Rfc4648Vectors) {
  // RFC 4648 section 10, in the URL alphabet, unpadded.
  const char* vectors[][2] = {{"", ""},         {"f", "Zg"},         {"fo", "Zm8"},        {"foo", "Zm9v"},
                              {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
  for (auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64url(std::string_view(plain)), encoded);
    auto decoded = decode_base64url(encoded);
    ASSERT_TRUE(decoded) << encoded;
    EXPECT_EQ(std::string(decoded->begin(), decoded->end()), plain);
  }
  EXPECT_EQ(base64url(std::string_view("\xfb\xff\xbf", 3)), "-_-_");
}

TEST(Base64url, StrictDecoding) {
  EXPECT_FALSE(decode_base64url("Zg=="));  // padding
  EXPECT_FALSE(decode_base64url("Z"));     // 4n+1
  EXPECT_FALSE(decode_base64url("Zh"));    // non-zero unused bits
  EXPECT_FALSE(decode_base64url("Zm+v"));  // the standard alphabet
  EXPECT_FALSE(decode_base64url("Zm 9v"));
}

TEST(Base64url, EveryLengthRoundTrips) {
  std::string bytes;
  for (int i = 0; i < 100; ++i) {
    auto decoded = decode_base64url(base64url(bytes));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(std::string(decoded->begin(), decoded->end()), bytes);
    EXPECT_EQ(base64url(bytes).size(), base64url_encoded_size(bytes.size()));
    bytes += static_cast<char>(i * 37);
  }
}

}  // namespace
}  // namespace mf
