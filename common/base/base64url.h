#pragma once
// base64url without padding (RFC 4648 section 5), as JWS and JWK use it.
// Decoding is strict so that each byte string has exactly one accepted
// encoding: a length no encoding produces (4n+1), a character outside
// [A-Za-z0-9_-] ('=' included) or non-zero unused bits in the last character
// are refused.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mf {

constexpr size_t base64url_encoded_size(size_t bytes) { return bytes / 3 * 4 + (bytes % 3 == 0 ? 0 : bytes % 3 + 1); }

// Appends the encoding of `bytes` to `out`.
void append_base64url(std::span<const uint8_t> bytes, std::string& out);
std::string base64url(std::span<const uint8_t> bytes);
std::string base64url(std::string_view bytes);

// The decoded bytes, or nothing when `text` is not a canonical encoding.
std::optional<std::vector<uint8_t>> decode_base64url(std::string_view text);

}  // namespace mf
