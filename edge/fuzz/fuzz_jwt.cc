// Fuzz target: JWT verification with a fixed secret. The first input byte
// picks what the rest is:
//   0: the whole token, as it would arrive in ?token=;
//   1: the payload JSON of a token signed here with the right secret, so
//      that claim parsing (which runs only after a valid signature) is
//      reached;
//   2: the header JSON of a token signed here, with a valid payload.
// Never a crash; a correctly signed token is never refused for its
// signature; accepted claims are well-formed.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "edge/jwt.h"

namespace {

constexpr std::string_view secret = "fuzzing-secret-fuzzing-secret-32";
constexpr int64_t now = 1'700'000'000;

std::string base64url(std::string_view bytes) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : bytes) {
    bits = bits << 8 | static_cast<uint8_t>(c);
    count += 8;
    while (count >= 6) {
      count -= 6;
      out += alphabet[(bits >> count) & 63];
    }
  }
  if (count > 0) out += alphabet[(bits << (6 - count)) & 63];
  return out;
}

std::string sign(std::string_view header_json, std::string_view payload_json) {
  std::string signed_part = base64url(header_json) + "." + base64url(payload_json);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), digest,
           &size) == nullptr) {
    std::abort();
  }
  return signed_part + "." + base64url(std::string_view(reinterpret_cast<const char*>(digest), size));
}

bool is_stream_id(std::string_view text) {
  if (text.empty() || text.size() > 128) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == ':' || c == '-';
  });
}

void check_claims(const mf::edge::JwtClaims& claims) {
  if (claims.all_streams && !claims.streams.empty()) std::abort();
  if (claims.streams.size() > mf::edge::max_jwt_streams) std::abort();
  for (size_t i = 0; i < claims.streams.size(); ++i) {
    if (!is_stream_id(claims.streams[i]) || !claims.covers(claims.streams[i])) std::abort();
    if (i > 0 && !(claims.streams[i - 1] < claims.streams[i])) std::abort();
  }
  if (!claims.all_streams && (claims.covers("") || claims.covers("not a stream id"))) std::abort();
  if (now >= claims.exp + mf::edge::default_jwt_leeway_seconds) std::abort();
  if (claims.nbf && now < *claims.nbf - mf::edge::default_jwt_leeway_seconds) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const mf::edge::JwtVerifier verifier = std::move(mf::edge::JwtVerifier::create(secret).value());
  static simdjson::dom::parser parser;
  if (size == 0) return 0;
  using mf::edge::JwtError;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      auto result = verifier.verify(rest, now, parser);
      if (result) check_claims(*result);
      break;
    }
    case 1: {
      std::string token = sign(R"({"alg":"HS256","typ":"JWT"})", rest);
      auto result = verifier.verify(token, now, parser);
      if (token.size() > mf::edge::max_jwt_bytes) {
        if (result || result.error() != JwtError::too_large) std::abort();
      } else if (result) {
        check_claims(*result);
      } else if (result.error() == JwtError::bad_signature || result.error() == JwtError::bad_algorithm) {
        std::abort();
      }
      break;
    }
    default: {
      std::string token = sign(rest, R"({"exp":1800000000,"streams":["a","b"]})");
      auto result = verifier.verify(token, now, parser);
      if (result) {
        check_claims(*result);
        if (result->all_streams || result->streams.size() != 2) std::abort();
      } else if (result.error() != JwtError::malformed && result.error() != JwtError::bad_algorithm &&
                 result.error() != JwtError::too_large) {
        std::abort();
      }
      break;
    }
  }
  return 0;
}
