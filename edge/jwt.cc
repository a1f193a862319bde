#include "edge/jwt.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace mf::edge {

namespace {

constexpr size_t hs256_bytes = 32;
// Largest NumericDate accepted: every value up to here is exact as a double
// (JavaScript's Number.MAX_SAFE_INTEGER + 1), and exp + leeway cannot
// overflow int64.
constexpr int64_t max_numeric_date = int64_t{1} << 53;
constexpr size_t max_stream_id_bytes = 128;

// Value of each base64url character, or 0xff for bytes outside the alphabet
// (RFC 4648 section 5).
constexpr std::array<uint8_t, 256> base64url_values = [] {
  std::array<uint8_t, 256> values{};
  values.fill(0xff);
  for (int i = 0; i < 26; ++i) {
    values['A' + i] = static_cast<uint8_t>(i);
    values['a' + i] = static_cast<uint8_t>(26 + i);
  }
  for (int i = 0; i < 10; ++i) values['0' + i] = static_cast<uint8_t>(52 + i);
  values['-'] = 62;
  values['_'] = 63;
  return values;
}();

constexpr size_t decoded_size(size_t encoded) { return encoded / 4 * 3 + (encoded % 4 == 0 ? 0 : encoded % 4 - 1); }

// Decodes unpadded base64url into `out` (room for decoded_size(in.size())
// bytes). Refuses a length that no encoding produces (4n+1), characters
// outside the alphabet (so '=' too), and non-zero unused bits in the last
// character: each byte string then has exactly one accepted encoding.
bool decode_base64url(std::string_view in, uint8_t* out) {
  if (in.size() % 4 == 1) return false;
  size_t i = 0;
  for (; i + 4 <= in.size(); i += 4) {
    uint32_t a = base64url_values[static_cast<uint8_t>(in[i])];
    uint32_t b = base64url_values[static_cast<uint8_t>(in[i + 1])];
    uint32_t c = base64url_values[static_cast<uint8_t>(in[i + 2])];
    uint32_t d = base64url_values[static_cast<uint8_t>(in[i + 3])];
    if ((a | b | c | d) > 63) return false;
    uint32_t v = a << 18 | b << 12 | c << 6 | d;
    *out++ = static_cast<uint8_t>(v >> 16);
    *out++ = static_cast<uint8_t>(v >> 8);
    *out++ = static_cast<uint8_t>(v);
  }
  size_t rest = in.size() - i;
  if (rest == 0) return true;
  uint32_t a = base64url_values[static_cast<uint8_t>(in[i])];
  uint32_t b = base64url_values[static_cast<uint8_t>(in[i + 1])];
  uint32_t c = rest == 3 ? base64url_values[static_cast<uint8_t>(in[i + 2])] : 0;
  if ((a | b | c) > 63) return false;
  uint32_t v = a << 18 | b << 12 | c << 6;
  if (rest == 2) {
    if ((v & 0xffff) != 0) return false;
    *out = static_cast<uint8_t>(v >> 16);
  } else {
    if ((v & 0xff) != 0) return false;
    *out++ = static_cast<uint8_t>(v >> 16);
    *out = static_cast<uint8_t>(v >> 8);
  }
  return true;
}

// A streamId of docs/protocol.md section 2: 1 to 128 bytes of [A-Za-z0-9._:-].
bool is_stream_id(std::string_view text) {
  if (text.empty() || text.size() > max_stream_id_bytes) return false;
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool equals_ignoring_ascii_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] + 32) : b[i];
    if (x != y) return false;
  }
  return true;
}

// A NumericDate (RFC 7519 section 2): any JSON number; fractions round up
// (see JwtClaims::exp). Outside +-2^53 is refused.
std::optional<int64_t> numeric_date(simdjson::dom::element value) {
  switch (value.type()) {
    case simdjson::dom::element_type::INT64: {
      int64_t v = 0;
      if (value.get_int64().get(v) != simdjson::SUCCESS) return std::nullopt;
      if (v > max_numeric_date || v < -max_numeric_date) return std::nullopt;
      return v;
    }
    case simdjson::dom::element_type::UINT64:
      return std::nullopt;  // only values above INT64_MAX are typed UINT64
    case simdjson::dom::element_type::DOUBLE: {
      double v = 0;
      if (value.get_double().get(v) != simdjson::SUCCESS) return std::nullopt;
      if (!(v <= static_cast<double>(max_numeric_date) && v >= -static_cast<double>(max_numeric_date))) {
        return std::nullopt;
      }
      return static_cast<int64_t>(std::ceil(v));
    }
    default:
      return std::nullopt;
  }
}

// The decoded header or payload, followed by simdjson's padding.
using JsonBuffer = std::array<uint8_t, decoded_size(max_jwt_bytes) + simdjson::SIMDJSON_PADDING>;

std::expected<void, JwtError> check_header(simdjson::dom::element root) {
  simdjson::dom::object header;
  if (root.get_object().get(header) != simdjson::SUCCESS) return std::unexpected(JwtError::malformed);
  bool seen_alg = false;
  bool seen_typ = false;
  for (simdjson::dom::key_value_pair field : header) {
    if (field.key == "alg") {
      // RFC 7515 section 4: names are unique or the JWS is refused.
      if (seen_alg) return std::unexpected(JwtError::malformed);
      std::string_view alg;
      if (field.value.get_string().get(alg) != simdjson::SUCCESS || alg != "HS256") {
        return std::unexpected(JwtError::bad_algorithm);
      }
      seen_alg = true;
    } else if (field.key == "typ") {
      std::string_view typ;
      if (seen_typ || field.value.get_string().get(typ) != simdjson::SUCCESS ||
          !equals_ignoring_ascii_case(typ, "JWT")) {
        return std::unexpected(JwtError::malformed);
      }
      seen_typ = true;
    } else if (field.key == "crit") {
      return std::unexpected(JwtError::malformed);
    }
  }
  if (!seen_alg) return std::unexpected(JwtError::bad_algorithm);
  return {};
}

std::expected<void, JwtError> read_streams(simdjson::dom::element value, JwtClaims& claims) {
  simdjson::dom::array entries;
  if (value.get_array().get(entries) != simdjson::SUCCESS) return std::unexpected(JwtError::bad_claims);
  if (entries.size() > max_jwt_streams) return std::unexpected(JwtError::too_large);
  claims.streams.reserve(entries.size());
  for (simdjson::dom::element entry : entries) {
    std::string_view text;
    if (entry.get_string().get(text) != simdjson::SUCCESS) return std::unexpected(JwtError::bad_claims);
    if (text == "*") {
      claims.all_streams = true;
    } else if (is_stream_id(text)) {
      claims.streams.emplace_back(text);
    } else {
      return std::unexpected(JwtError::bad_claims);
    }
  }
  if (claims.all_streams) {
    claims.streams.clear();
  } else {
    std::sort(claims.streams.begin(), claims.streams.end());
    claims.streams.erase(std::unique(claims.streams.begin(), claims.streams.end()), claims.streams.end());
  }
  return {};
}

std::expected<JwtClaims, JwtError> read_claims(simdjson::dom::element root) {
  simdjson::dom::object payload;
  if (root.get_object().get(payload) != simdjson::SUCCESS) return std::unexpected(JwtError::malformed);
  JwtClaims claims;
  bool seen_exp = false;
  bool seen_streams = false;
  for (simdjson::dom::key_value_pair field : payload) {
    if (field.key == "exp") {
      std::optional<int64_t> exp = numeric_date(field.value);
      if (seen_exp || !exp) return std::unexpected(JwtError::bad_claims);
      claims.exp = *exp;
      seen_exp = true;
    } else if (field.key == "nbf") {
      std::optional<int64_t> nbf = numeric_date(field.value);
      if (claims.nbf || !nbf) return std::unexpected(JwtError::bad_claims);
      claims.nbf = nbf;
    } else if (field.key == "streams") {
      if (seen_streams) return std::unexpected(JwtError::bad_claims);
      seen_streams = true;
      if (auto read = read_streams(field.value, claims); !read) return std::unexpected(read.error());
    }
  }
  if (!seen_exp) return std::unexpected(JwtError::bad_claims);
  if (!seen_streams) claims.all_streams = true;
  return claims;
}

}  // namespace

std::string_view jwt_error_text(JwtError error) {
  switch (error) {
    case JwtError::malformed: return "malformed token";
    case JwtError::bad_algorithm: return "token algorithm is not HS256";
    case JwtError::bad_signature: return "token signature does not match";
    case JwtError::expired: return "token expired";
    case JwtError::not_yet_valid: return "token not yet valid";
    case JwtError::bad_claims: return "token claims invalid";
    case JwtError::too_large: return "token too large";
  }
  return "unknown token error";
}

bool JwtClaims::covers(std::string_view stream_id) const {
  if (all_streams) return true;
  auto it = std::lower_bound(streams.begin(), streams.end(), stream_id,
                             [](const std::string& a, std::string_view b) { return std::string_view(a) < b; });
  return it != streams.end() && *it == stream_id;
}

void JwtVerifier::MacContextFree::operator()(evp_mac_ctx_st* context) const { EVP_MAC_CTX_free(context); }

std::expected<JwtVerifier, std::string> JwtVerifier::create(std::string_view secret, int64_t leeway_seconds) {
  if (secret.empty()) return std::unexpected(std::string("JWT secret is empty"));
  if (leeway_seconds < 0 || leeway_seconds > max_jwt_leeway_seconds) {
    return std::unexpected("JWT leeway must be between 0 and " + std::to_string(max_jwt_leeway_seconds) +
                           " seconds, got " + std::to_string(leeway_seconds));
  }
  // The algorithm is fetched here once; the context keeps its reference.
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
  if (mac == nullptr) return std::unexpected(std::string("OpenSSL provides no HMAC"));
  JwtVerifier verifier;
  verifier.keyed_mac_.reset(EVP_MAC_CTX_new(mac));
  EVP_MAC_free(mac);
  if (!verifier.keyed_mac_) return std::unexpected(std::string("cannot allocate an HMAC context"));
  char digest_name[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_init(verifier.keyed_mac_.get(), reinterpret_cast<const unsigned char*>(secret.data()), secret.size(),
                   params) != 1) {
    return std::unexpected(std::string("OpenSSL cannot initialise HMAC-SHA256"));
  }
  verifier.leeway_seconds_ = leeway_seconds;
  if (secret.size() < min_strong_jwt_secret_bytes) {
    verifier.weak_secret_warning_ = "JWT secret is " + std::to_string(secret.size()) +
                                    " bytes; HS256 wants at least " +
                                    std::to_string(min_strong_jwt_secret_bytes) + " random bytes";
  }
  return verifier;
}

std::expected<JwtClaims, JwtError> JwtVerifier::verify(std::string_view token, int64_t now_seconds,
                                                       simdjson::dom::parser& parser) const {
  if (token.size() > max_jwt_bytes) return std::unexpected(JwtError::too_large);
  size_t first_dot = token.find('.');
  if (first_dot == std::string_view::npos) return std::unexpected(JwtError::malformed);
  size_t second_dot = token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos || token.find('.', second_dot + 1) != std::string_view::npos) {
    return std::unexpected(JwtError::malformed);
  }
  std::string_view header_b64 = token.substr(0, first_dot);
  std::string_view payload_b64 = token.substr(first_dot + 1, second_dot - first_dot - 1);
  std::string_view signature_b64 = token.substr(second_dot + 1);
  if (header_b64.empty() || payload_b64.empty() || signature_b64.empty()) {
    return std::unexpected(JwtError::malformed);
  }

  // Every segment must be base64url before anything is interpreted.
  JsonBuffer header_json;
  JsonBuffer payload_json;
  std::array<uint8_t, decoded_size(max_jwt_bytes)> signature;
  if (!decode_base64url(header_b64, header_json.data()) || !decode_base64url(payload_b64, payload_json.data()) ||
      !decode_base64url(signature_b64, signature.data())) {
    return std::unexpected(JwtError::malformed);
  }
  // simdjson reads into the padding: give it defined bytes.
  std::memset(header_json.data() + decoded_size(header_b64.size()), 0, simdjson::SIMDJSON_PADDING);
  std::memset(payload_json.data() + decoded_size(payload_b64.size()), 0, simdjson::SIMDJSON_PADDING);
  simdjson::dom::element header;
  if (parser.parse(header_json.data(), decoded_size(header_b64.size()), false).get(header) != simdjson::SUCCESS) {
    return std::unexpected(JwtError::malformed);
  }
  if (auto checked = check_header(header); !checked) return std::unexpected(checked.error());

  // The length of the signature is public; only its bytes are compared in
  // constant time.
  if (decoded_size(signature_b64.size()) != hs256_bytes) return std::unexpected(JwtError::bad_signature);
  std::unique_ptr<evp_mac_ctx_st, MacContextFree> mac(EVP_MAC_CTX_dup(keyed_mac_.get()));
  if (!mac) std::abort();  // out of memory
  std::array<uint8_t, hs256_bytes> expected;
  size_t expected_size = 0;
  std::string_view signed_part = token.substr(0, second_dot);
  if (EVP_MAC_update(mac.get(), reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) !=
          1 ||
      EVP_MAC_final(mac.get(), expected.data(), &expected_size, expected.size()) != 1 ||
      expected_size != hs256_bytes) {
    std::abort();  // cannot fail for a context that create() initialised
  }
  if (CRYPTO_memcmp(expected.data(), signature.data(), hs256_bytes) != 0) {
    return std::unexpected(JwtError::bad_signature);
  }

  simdjson::dom::element payload;
  if (parser.parse(payload_json.data(), decoded_size(payload_b64.size()), false).get(payload) != simdjson::SUCCESS) {
    return std::unexpected(JwtError::malformed);
  }
  auto claims = read_claims(payload);
  if (!claims) return claims;
  if (now_seconds >= claims->exp + leeway_seconds_) return std::unexpected(JwtError::expired);
  if (claims->nbf && now_seconds < *claims->nbf - leeway_seconds_) return std::unexpected(JwtError::not_yet_valid);
  return claims;
}

}  // namespace mf::edge
