#pragma once
// SHA-256 through OpenSSL's EVP interface, which uses the CPU's SHA
// extensions when it has them.
#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace mf::origin {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(std::span<const uint8_t> bytes);
inline Sha256Digest sha256(std::string_view text) {
  return sha256(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

}  // namespace mf::origin
