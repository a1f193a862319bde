#include "edge/jwt.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <thread>
#include <vector>

namespace mf::edge {
namespace {

constexpr std::string_view secret = "0123456789abcdef0123456789abcdef-test-secret";
constexpr int64_t now = 1'700'000'000;

// RFC 4648 section 5 without padding, written independently of jwt.cc.
std::string base64url(std::string_view bytes) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += alphabet[(v >> shift) & 63];
  }
  if (bytes.size() - i == 1) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
  } else if (bytes.size() - i == 2) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
  }
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
       message.size(), digest, &size);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

// A compact JWS of the given header and payload JSON, signed with `key`.
std::string sign(std::string_view header_json, std::string_view payload_json, std::string_view key = secret) {
  std::string signed_part = base64url(header_json) + "." + base64url(payload_json);
  return signed_part + "." + base64url(hmac_sha256(key, signed_part));
}

constexpr std::string_view hs256_header = R"({"alg":"HS256","typ":"JWT"})";

std::string token_with_payload(std::string_view payload_json) { return sign(hs256_header, payload_json); }

std::string exp_payload(int64_t exp) { return R"({"exp":)" + std::to_string(exp) + "}"; }

class Jwt : public ::testing::Test {
 protected:
  std::expected<JwtClaims, JwtError> verify(std::string_view token, int64_t at = now) {
    return verifier.verify(token, at, parser);
  }
  JwtError error_of(std::string_view token, int64_t at = now) {
    auto result = verify(token, at);
    EXPECT_FALSE(result) << "accepted: " << token;
    return result ? JwtError::malformed : result.error();
  }

  JwtVerifier verifier = std::move(JwtVerifier::create(secret).value());
  simdjson::dom::parser parser;
};

TEST(JwtCreate, RefusesEmptySecret) {
  auto v = JwtVerifier::create("");
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().find("empty"), std::string::npos);
}

TEST(JwtCreate, ShortSecretWorksWithWarning) {
  auto v = JwtVerifier::create("short");
  ASSERT_TRUE(v);
  EXPECT_NE(v->weak_secret_warning().find("5 bytes"), std::string_view::npos);
  simdjson::dom::parser parser;
  EXPECT_TRUE(v->verify(sign(hs256_header, exp_payload(now + 60), "short"), now, parser));
}

TEST(JwtCreate, ThirtyTwoByteSecretHasNoWarning) {
  auto v = JwtVerifier::create(std::string(32, 'k'));
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->weak_secret_warning().empty());
  EXPECT_FALSE(JwtVerifier::create(std::string(31, 'k'))->weak_secret_warning().empty());
}

TEST(JwtCreate, LeewayRange) {
  EXPECT_FALSE(JwtVerifier::create(secret, -1));
  EXPECT_FALSE(JwtVerifier::create(secret, max_jwt_leeway_seconds + 1));
  ASSERT_TRUE(JwtVerifier::create(secret, 0));
  EXPECT_EQ(JwtVerifier::create(secret, 0)->leeway_seconds(), 0);
  EXPECT_EQ(JwtVerifier::create(secret)->leeway_seconds(), 30);
}

TEST(JwtCreate, SecretWithNulBytesIsUsedWhole) {
  std::string key("ab\0cd", 5);
  auto v = JwtVerifier::create(key);
  ASSERT_TRUE(v);
  simdjson::dom::parser parser;
  EXPECT_TRUE(v->verify(sign(hs256_header, exp_payload(now + 60), key), now, parser));
  EXPECT_FALSE(v->verify(sign(hs256_header, exp_payload(now + 60), "ab"), now, parser));
}

TEST_F(Jwt, ValidTokenWithoutStreamsCoversAll) {
  auto claims = verify(token_with_payload(R"({"sub":"viewer-1","exp":1700000600,"iat":1699999000})"));
  ASSERT_TRUE(claims) << jwt_error_text(claims.error());
  EXPECT_TRUE(claims->all_streams);
  EXPECT_TRUE(claims->streams.empty());
  EXPECT_EQ(claims->exp, 1700000600);
  EXPECT_FALSE(claims->nbf);
  EXPECT_TRUE(claims->covers("any-stream"));
}

TEST_F(Jwt, KnownVectorFromIndependentTool) {
  // Made with Python's hmac/base64 modules, key "your-256-bit-secret":
  // header {"alg":"HS256","typ":"JWT"}, payload {"exp":1700000600}.
  auto v = JwtVerifier::create("your-256-bit-secret");
  ASSERT_TRUE(v);
  std::string token =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3MDAwMDA2MDB9."
      "GsHBQx6KToRYI3TLtTmvFbFYvsaNj9kZVB15Y4O8Fjg";
  EXPECT_EQ(token, sign(hs256_header, R"({"exp":1700000600})", "your-256-bit-secret"));
  auto claims = v->verify(token, now, parser);
  ASSERT_TRUE(claims);
  EXPECT_EQ(claims->exp, 1700000600);
}

TEST_F(Jwt, TypIsOptionalAndCaseInsensitive) {
  EXPECT_TRUE(verify(sign(R"({"alg":"HS256"})", exp_payload(now + 60))));
  EXPECT_TRUE(verify(sign(R"({"typ":"jwt","alg":"HS256","kid":"k1"})", exp_payload(now + 60))));
  EXPECT_EQ(error_of(sign(R"({"alg":"HS256","typ":"JWS"})", exp_payload(now + 60))), JwtError::malformed);
  EXPECT_EQ(error_of(sign(R"({"alg":"HS256","typ":1})", exp_payload(now + 60))), JwtError::malformed);
  EXPECT_EQ(error_of(sign(R"({"alg":"HS256","typ":"JWT","typ":"JWT"})", exp_payload(now + 60))),
            JwtError::malformed);
}

TEST_F(Jwt, CritHeaderRefused) {
  EXPECT_EQ(error_of(sign(R"({"alg":"HS256","crit":["b64"],"b64":false})", exp_payload(now + 60))),
            JwtError::malformed);
}

TEST_F(Jwt, OnlyHs256Accepted) {
  for (std::string_view header : {R"({"alg":"none"})", R"({"alg":"HS512","typ":"JWT"})",
                                  R"({"alg":"RS256","typ":"JWT"})", R"({"alg":"hs256"})", R"({"alg":"HS256 "})",
                                  R"({"alg":null})", R"({"alg":["HS256"]})", R"({"typ":"JWT"})", R"({})",
                                  R"({"alg":"none","alg":"HS256"})"}) {
    EXPECT_EQ(error_of(sign(header, exp_payload(now + 60))), JwtError::bad_algorithm) << header;
  }
}

TEST_F(Jwt, DuplicateAlgRefused) {
  EXPECT_EQ(error_of(sign(R"({"alg":"HS256","alg":"HS256"})", exp_payload(now + 60))), JwtError::malformed);
  EXPECT_EQ(error_of(sign(R"({"alg":"HS256","alg":"none"})", exp_payload(now + 60))), JwtError::malformed);
}

TEST_F(Jwt, AlgNoneWithEmptySignatureRefused) {
  std::string token = base64url(R"({"alg":"none"})") + "." + base64url(exp_payload(now + 60)) + ".";
  EXPECT_EQ(error_of(token), JwtError::malformed);  // empty signature segment
  token = base64url(R"({"alg":"none"})") + "." + base64url(exp_payload(now + 60)) + ".AAAA";
  EXPECT_EQ(error_of(token), JwtError::bad_algorithm);
}

TEST_F(Jwt, HeaderMustBeJsonObject) {
  EXPECT_EQ(error_of(sign(R"(["HS256"])", exp_payload(now + 60))), JwtError::malformed);
  EXPECT_EQ(error_of(sign(R"({"alg":"HS256")", exp_payload(now + 60))), JwtError::malformed);
  EXPECT_EQ(error_of(sign(R"({"alg":"HS256"} x)", exp_payload(now + 60))), JwtError::malformed);
  EXPECT_EQ(error_of(sign("", exp_payload(now + 60))), JwtError::malformed);
}

TEST_F(Jwt, WrongSecretRefused) {
  EXPECT_EQ(error_of(sign(hs256_header, exp_payload(now + 60), "another-secret-of-enough-length-000")),
            JwtError::bad_signature);
}

TEST_F(Jwt, TamperedPayloadRefused) {
  std::string token = token_with_payload(R"({"exp":1700000600,"streams":["a"]})");
  size_t first = token.find('.');
  size_t second = token.find('.', first + 1);
  std::string forged = token.substr(0, first + 1) + base64url(R"({"exp":1700000600,"streams":["*"]})") +
                       token.substr(second);
  EXPECT_EQ(error_of(forged), JwtError::bad_signature);
}

TEST_F(Jwt, TamperedHeaderRefused) {
  std::string token = token_with_payload(exp_payload(now + 60));
  std::string forged = base64url(R"({"alg":"HS256"})") + token.substr(token.find('.'));
  EXPECT_EQ(error_of(forged), JwtError::bad_signature);
}

TEST_F(Jwt, EveryFlippedSignatureCharacterRefused) {
  std::string token = token_with_payload(exp_payload(now + 60));
  ASSERT_TRUE(verify(token));
  size_t start = token.rfind('.') + 1;
  for (size_t i = start; i < token.size(); ++i) {
    std::string forged = token;
    forged[i] = forged[i] == 'A' ? 'B' : 'A';
    auto result = verify(forged);
    ASSERT_FALSE(result) << i;
    // The last character carries 2 unused bits: changing it may make the
    // encoding non-canonical (malformed) instead of a wrong MAC.
    if (i + 1 < token.size()) {
      EXPECT_EQ(result.error(), JwtError::bad_signature) << i;
    }
  }
}

TEST_F(Jwt, SignatureOfWrongLengthRefused) {
  std::string token = token_with_payload(exp_payload(now + 60));
  EXPECT_EQ(error_of(token.substr(0, token.size() - 3)), JwtError::bad_signature);
  EXPECT_EQ(error_of(token + "AAAA"), JwtError::bad_signature);
}

TEST_F(Jwt, SegmentCount) {
  std::string token = token_with_payload(exp_payload(now + 60));
  EXPECT_EQ(error_of(token + ".x"), JwtError::malformed);
  EXPECT_EQ(error_of(token + "."), JwtError::malformed);
  EXPECT_EQ(error_of(token.substr(0, token.rfind('.'))), JwtError::malformed);
  EXPECT_EQ(error_of(""), JwtError::malformed);
  EXPECT_EQ(error_of(".."), JwtError::malformed);
  EXPECT_EQ(error_of("abc"), JwtError::malformed);
  EXPECT_EQ(error_of("." + token), JwtError::malformed);
}

TEST_F(Jwt, PaddingRefused) {
  // {"alg":"HS256"} is 15 bytes: 20 characters, no padding; pick a payload
  // whose encoding needs padding and add it.
  std::string payload = R"({"exp":1700000600})";  // 18 bytes -> 24 chars
  std::string payload2 = R"({"exp":1700000600 })";  // 19 bytes -> 26 chars
  std::string header_b64 = base64url(hs256_header);
  std::string padded_payload = base64url(payload2) + "==";
  std::string signed_part = header_b64 + "." + padded_payload;
  EXPECT_EQ(error_of(signed_part + "." + base64url(hmac_sha256(secret, signed_part))), JwtError::malformed);
  // Padded signature (43 characters + '=').
  std::string token = token_with_payload(payload);
  EXPECT_EQ(error_of(token + "="), JwtError::malformed);
}

TEST_F(Jwt, NonAlphabetCharactersRefused) {
  std::string token = token_with_payload(exp_payload(now + 60));
  for (char bad : {'+', '/', '=', ' ', '%', '\0', '\xff', '\n'}) {
    std::string forged = token;
    forged[3] = bad;  // in the header
    EXPECT_EQ(error_of(forged), JwtError::malformed) << int(bad);
    forged = token;
    forged[token.find('.') + 2] = bad;  // in the payload
    EXPECT_EQ(error_of(forged), JwtError::malformed) << int(bad);
    forged = token;
    forged[token.rfind('.') + 5] = bad;  // in the signature
    EXPECT_EQ(error_of(forged), JwtError::malformed) << int(bad);
  }
}

TEST_F(Jwt, NonCanonicalBase64Refused) {
  // A 4n+1 segment never comes from an encoder.
  std::string token = token_with_payload(exp_payload(now + 60));
  std::string forged = token.substr(0, token.find('.')) + "A" + token.substr(token.find('.'));
  EXPECT_EQ(error_of(forged), JwtError::malformed);
  // A 4n+1 segment at the very end of the view, with more base64url in
  // memory after it: nothing outside the view may be read.
  std::string storage = token.substr(0, token.size() - 2) + "AAAA";
  EXPECT_EQ(error_of(std::string_view(storage).substr(0, token.size() - 2)), JwtError::malformed);
  // Unused low bits in a 2-character tail: a 19-byte payload ends in two
  // characters of which the second carries 4 unused bits.
  std::string payload = R"({"exp":1800000000} )";
  ASSERT_EQ(payload.size() % 3, 1u);
  std::string payload_b64 = base64url(payload);
  payload_b64.back() = payload_b64.back() == 'A' ? 'B' : static_cast<char>(payload_b64.back() + 1);
  std::string tail_part = base64url(hs256_header) + "." + payload_b64;
  EXPECT_EQ(error_of(tail_part + "." + base64url(hmac_sha256(secret, tail_part))), JwtError::malformed);
  EXPECT_TRUE(verify(token_with_payload(payload)));
  // Unused low bits set in the last character of the header: "{}" encodes
  // as "e30"; "e31" decodes to the same bytes with a stray bit.
  std::string signed_part = "e31." + base64url(exp_payload(now + 60));
  EXPECT_EQ(error_of(signed_part + "." + base64url(hmac_sha256(secret, signed_part))), JwtError::malformed);
}

TEST_F(Jwt, ExpBoundariesWithLeeway) {
  int64_t exp = now;
  std::string token = token_with_payload(exp_payload(exp));
  EXPECT_TRUE(verify(token, exp - 1000));
  EXPECT_TRUE(verify(token, exp));
  EXPECT_TRUE(verify(token, exp + 29));
  EXPECT_EQ(error_of(token, exp + 30), JwtError::expired);
  EXPECT_EQ(error_of(token, exp + 100000), JwtError::expired);
}

TEST_F(Jwt, ExpBoundariesWithoutLeeway) {
  auto strict = JwtVerifier::create(secret, 0);
  ASSERT_TRUE(strict);
  std::string token = token_with_payload(exp_payload(now));
  EXPECT_TRUE(strict->verify(token, now - 1, parser));
  EXPECT_EQ(strict->verify(token, now, parser).error(), JwtError::expired);
}

TEST_F(Jwt, FractionalNumericDates) {
  auto strict = JwtVerifier::create(secret, 0);
  ASSERT_TRUE(strict);
  // exp 100.5: valid at 100 (100 < 100.5), expired at 101.
  std::string token = token_with_payload(R"({"exp":100.5})");
  auto claims = strict->verify(token, 100, parser);
  ASSERT_TRUE(claims);
  EXPECT_EQ(claims->exp, 101);
  EXPECT_EQ(strict->verify(token, 101, parser).error(), JwtError::expired);
  // nbf 100.5: not valid at 100, valid at 101.
  token = token_with_payload(R"({"exp":1e3,"nbf":100.5})");
  EXPECT_EQ(strict->verify(token, 100, parser).error(), JwtError::not_yet_valid);
  EXPECT_TRUE(strict->verify(token, 101, parser));
}

TEST_F(Jwt, NbfBoundariesWithLeeway) {
  int64_t nbf = now;
  std::string token = token_with_payload(R"({"exp":)" + std::to_string(now + 3600) + R"(,"nbf":)" +
                                         std::to_string(nbf) + "}");
  EXPECT_EQ(error_of(token, nbf - 31), JwtError::not_yet_valid);
  auto claims = verify(token, nbf - 30);
  ASSERT_TRUE(claims);
  EXPECT_EQ(claims->nbf, nbf);
  EXPECT_TRUE(verify(token, nbf));
  EXPECT_TRUE(verify(token, nbf + 100));
}

TEST_F(Jwt, ExpIsRequiredAndTyped) {
  EXPECT_EQ(error_of(token_with_payload(R"({})")), JwtError::bad_claims);
  EXPECT_EQ(error_of(token_with_payload(R"({"nbf":1})")), JwtError::bad_claims);
  for (std::string_view bad : {R"("1700000600")", "null", "true", "[1]", "{}", "18446744073709551615",
                               "9007199254740993", "-9007199254740993", "1e300"}) {
    EXPECT_EQ(error_of(token_with_payload(R"({"exp":)" + std::string(bad) + "}")), JwtError::bad_claims) << bad;
    EXPECT_EQ(error_of(token_with_payload(R"({"exp":1800000000,"nbf":)" + std::string(bad) + "}")),
              JwtError::bad_claims)
        << bad;
  }
  EXPECT_EQ(error_of(token_with_payload(R"({"exp":1800000000,"exp":1800000000})")), JwtError::bad_claims);
  EXPECT_EQ(error_of(token_with_payload(R"({"exp":1800000000,"nbf":1,"nbf":1})")), JwtError::bad_claims);
}

TEST_F(Jwt, LargestNumericDateAccepted) {
  auto claims = verify(token_with_payload(R"({"exp":9007199254740992})"));
  ASSERT_TRUE(claims);
  EXPECT_EQ(claims->exp, int64_t{1} << 53);
  EXPECT_EQ(error_of(token_with_payload(R"({"exp":-9007199254740992})")), JwtError::expired);
  EXPECT_TRUE(verify(token_with_payload(R"({"exp":1800000000,"nbf":-9007199254740992})")));
}

TEST_F(Jwt, PayloadMustBeJsonObject) {
  EXPECT_EQ(error_of(token_with_payload(R"([1800000000])")), JwtError::malformed);
  EXPECT_EQ(error_of(token_with_payload(R"({"exp":1800000000)")), JwtError::malformed);
  EXPECT_EQ(error_of(token_with_payload("")), JwtError::malformed);
  EXPECT_EQ(error_of(token_with_payload("\xef\xbb\xbf{\"exp\":1800000000}")), JwtError::malformed);
}

TEST_F(Jwt, BadPayloadAfterValidSignatureStillNeedsSignature) {
  // A payload that would be rejected is not even parsed with a wrong MAC.
  EXPECT_EQ(error_of(sign(hs256_header, "not json", "wrong-secret")), JwtError::bad_signature);
}

TEST_F(Jwt, StreamsClaimForms) {
  auto claims = verify(token_with_payload(R"({"exp":1800000000,"streams":["live-b","live-a","ch:1.hd_x","live-a"]})"));
  ASSERT_TRUE(claims);
  EXPECT_FALSE(claims->all_streams);
  EXPECT_EQ(claims->streams, (std::vector<std::string>{"ch:1.hd_x", "live-a", "live-b"}));
  EXPECT_TRUE(claims->covers("live-a"));
  EXPECT_TRUE(claims->covers("live-b"));
  EXPECT_TRUE(claims->covers("ch:1.hd_x"));
  EXPECT_FALSE(claims->covers("live-c"));
  EXPECT_FALSE(claims->covers("live-"));
  EXPECT_FALSE(claims->covers("live-aa"));
  EXPECT_FALSE(claims->covers(""));

  claims = verify(token_with_payload(R"({"exp":1800000000,"streams":["live-a","*"]})"));
  ASSERT_TRUE(claims);
  EXPECT_TRUE(claims->all_streams);
  EXPECT_TRUE(claims->streams.empty());
  EXPECT_TRUE(claims->covers("anything"));

  claims = verify(token_with_payload(R"({"exp":1800000000,"streams":[]})"));
  ASSERT_TRUE(claims);
  EXPECT_FALSE(claims->all_streams);
  EXPECT_FALSE(claims->covers("live-a"));
}

TEST_F(Jwt, StreamsClaimValidation) {
  for (std::string_view bad : {R"("*")", R"("live-a")", "null", "{}", R"([1])", R"([null])", R"([""])",
                               R"(["has space"])", R"(["slash/no"])", R"(["**"])", R"([["a"]])", R"(["é"])"}) {
    EXPECT_EQ(error_of(token_with_payload(R"({"exp":1800000000,"streams":)" + std::string(bad) + "}")),
              JwtError::bad_claims)
        << bad;
  }
  std::string longest(128, 'x');
  EXPECT_TRUE(verify(token_with_payload(R"({"exp":1800000000,"streams":[")" + longest + R"("]})")));
  EXPECT_EQ(error_of(token_with_payload(R"({"exp":1800000000,"streams":[")" + longest + R"(x"]})")),
            JwtError::bad_claims);
  EXPECT_EQ(error_of(token_with_payload(R"({"exp":1800000000,"streams":[],"streams":[]})")), JwtError::bad_claims);
}

TEST_F(Jwt, StreamsCountLimit) {
  auto streams = [](size_t count) {
    std::string list = "[";
    for (size_t i = 0; i < count; ++i) list += (i ? ",\"" : "\"") + std::to_string(i) + "\"";
    return R"({"exp":1800000000,"streams":)" + list + "]}";
  };
  auto claims = verify(token_with_payload(streams(max_jwt_streams)));
  ASSERT_TRUE(claims);
  EXPECT_EQ(claims->streams.size(), max_jwt_streams);
  EXPECT_TRUE(claims->covers("255"));
  EXPECT_EQ(error_of(token_with_payload(streams(max_jwt_streams + 1))), JwtError::too_large);
}

TEST_F(Jwt, TokenSizeLimit) {
  auto padded_token = [](size_t target) {
    std::string base = R"({"exp":1800000000,"pad":""})";
    std::string token = token_with_payload(base);
    // Each 3 payload bytes add 4 token characters.
    size_t pad = (target - token.size()) / 4 * 3;
    std::string payload = R"({"exp":1800000000,"pad":")" + std::string(pad, 'p') + R"("})";
    token = token_with_payload(payload);
    while (token.size() < target) {
      payload.insert(payload.size() - 2, "p");
      token = token_with_payload(payload);
    }
    return token;
  };
  std::string at_limit = padded_token(max_jwt_bytes);
  ASSERT_EQ(at_limit.size(), max_jwt_bytes);
  EXPECT_TRUE(verify(at_limit));
  std::string over = padded_token(max_jwt_bytes + 1);
  ASSERT_GT(over.size(), max_jwt_bytes);
  EXPECT_EQ(error_of(over), JwtError::too_large);
  EXPECT_EQ(error_of(std::string(max_jwt_bytes + 1, 'A')), JwtError::too_large);
  EXPECT_EQ(error_of(std::string(max_jwt_bytes, 'A')), JwtError::malformed);
}

TEST_F(Jwt, UnknownClaimsIgnoredButStillValidated) {
  EXPECT_TRUE(verify(token_with_payload(R"({"iss":"x","aud":["a"],"n":{"deep":[1,2,{"k":null}]},"exp":1800000000})")));
}

TEST_F(Jwt, ErrorTextsAreDistinct) {
  std::vector<std::string_view> texts;
  for (JwtError e : {JwtError::malformed, JwtError::bad_algorithm, JwtError::bad_signature, JwtError::expired,
                     JwtError::not_yet_valid, JwtError::bad_claims, JwtError::too_large}) {
    std::string_view text = jwt_error_text(e);
    EXPECT_FALSE(text.empty());
    for (std::string_view other : texts) EXPECT_NE(text, other);
    texts.push_back(text);
  }
}

TEST_F(Jwt, ParserReuseAcrossCalls) {
  // The second verification must not see state of the first.
  std::string a = token_with_payload(R"({"exp":1800000000,"streams":["a"]})");
  std::string b = token_with_payload(R"({"exp":1800000000})");
  for (int i = 0; i < 3; ++i) {
    auto ca = verify(a);
    auto cb = verify(b);
    ASSERT_TRUE(ca && cb);
    EXPECT_FALSE(ca->all_streams);
    EXPECT_TRUE(cb->all_streams);
  }
}

TEST(JwtThreads, OneVerifierManyThreads) {
  auto verifier = JwtVerifier::create(secret);
  ASSERT_TRUE(verifier);
  std::string good = sign(hs256_header, R"({"exp":1800000000,"streams":["s1","s2"]})");
  std::string bad = sign(hs256_header, R"({"exp":1800000000})", "wrong-secret-wrong-secret-wrong!!");
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      simdjson::dom::parser parser;
      for (int i = 0; i < 2000; ++i) {
        auto g = verifier->verify(good, now, parser);
        auto b = verifier->verify(bad, now, parser);
        if (!g || !g->covers("s2") || b || b.error() != JwtError::bad_signature) ++failures[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

}  // namespace
}  // namespace mf::edge
