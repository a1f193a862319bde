#pragma once
// SHA-1 (FIPS 180-4, section 6.1), for the two places a protocol names it:
// RFC 6455's Sec-WebSocket-Accept (section 4.2.2: the base64 of the SHA-1 of
// the client's key and a fixed GUID) and the script digests of Valkey's
// EVALSHA. Neither is a security property: the accept key only proves that
// the server read the handshake as a WebSocket one (RFC 6455 section 1.3),
// and a script digest is a name for a script the client itself sends. SHA-1
// is broken for collision resistance and must not be used where that
// matters (signatures, integrity of data from a peer): use OpenSSL there.
// Pure and allocation-free: the codecs below the runtime hash with it.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace mf {

using Sha1Digest = std::array<uint8_t, 20>;

// Incremental: update() any number of times, then digest() once.
class Sha1 {
 public:
  Sha1();
  void update(std::span<const uint8_t> bytes);
  void update(std::string_view bytes);
  // The digest of everything updated; the object is then spent (a new
  // message needs a new Sha1).
  Sha1Digest digest();

 private:
  void compress(const uint8_t* block);

  std::array<uint32_t, 5> state_;
  std::array<uint8_t, 64> block_{};
  size_t block_used_ = 0;
  uint64_t total_bytes_ = 0;
};

Sha1Digest sha1(std::string_view bytes);

}  // namespace mf
