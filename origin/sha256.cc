#include "origin/sha256.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace mf::origin {

Sha256Digest sha256(std::span<const uint8_t> bytes) {
  Sha256Digest digest;
  unsigned int size = 0;
  // Fails only when OpenSSL cannot run SHA-256 at all: no manifest could be
  // trusted then, so stop rather than vouch with a wrong digest.
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1 || size != 32)
    std::abort();
  return digest;
}

}  // namespace mf::origin
