#pragma once
// ECDSA P-256 signatures in their two encodings: OpenSSL's DER
// (SEQUENCE { INTEGER r, INTEGER s }, RFC 3279) and the 64-byte r || s
// (each big-endian, left-padded to 32 bytes) that JWS ES256 (RFC 7518
// section 3.4) and WebCrypto use. Pure, strict DER: minimal lengths and
// integers, nothing after the sequence, r and s positive and below 2^256.
#include <array>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <vector>

namespace mf::origin {

using RawP256Signature = std::array<uint8_t, 64>;

std::expected<RawP256Signature, std::string> der_to_raw_p256(std::span<const uint8_t> der);
std::vector<uint8_t> raw_to_der_p256(const RawP256Signature& raw);

}  // namespace mf::origin
