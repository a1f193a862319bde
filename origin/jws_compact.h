#pragma once
// JWS compact serialization (RFC 7515 section 7.1) of a segment manifest:
// BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(r || s), no
// padding, no whitespace, one final newline. The signature covers the first
// two parts exactly as written. Pure.
#include <expected>
#include <string>
#include <string_view>

#include "origin/ecdsa_signature.h"

namespace mf::origin {

inline constexpr std::string_view manifest_jws_type = "mf-manifest+jws";
inline constexpr size_t max_kid_bytes = 64;

// {"alg":"ES256","typ":"mf-manifest+jws","kid":KID}
std::string manifest_jws_header(std::string_view kid);

// BASE64URL(header) "." BASE64URL(payload): the bytes that are signed.
std::string jws_signing_input(std::string_view header_json, std::string_view payload_json);

// signing input "." BASE64URL(signature) "\n".
std::string jws_compact(std::string_view signing_input, const RawP256Signature& signature);

struct JwsParts {
  std::string_view signing_input;  // a view into the parsed text: keep the text alive
  std::string header_json;
  std::string payload_json;
  RawP256Signature signature{};
};

// Splits and decodes a compact JWS (one final newline allowed); the
// signature must be 64 bytes. The parts are not interpreted.
std::expected<JwsParts, std::string> parse_jws_compact(std::string_view text);

}  // namespace mf::origin
