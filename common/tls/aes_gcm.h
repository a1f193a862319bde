#pragma once
// AES-GCM (NIST SP 800-38D) for one TLS 1.3 record at a time, on the CPU's
// AES and carry-less multiply instructions: the record layer's cipher for
// TLS_AES_128_GCM_SHA256 and TLS_AES_256_GCM_SHA384 (docs/security.md,
// "The TLS 1.3 record layer").
//
// Why not OpenSSL's EVP interface: a record of a relayed signal is about 300
// bytes, and OpenSSL 3.0 spends more on each record's set-up than on its
// encryption (the IV and tag go through its provider parameters, looked up
// by name, and each partial block of a piece costs one AES block of its
// own). Here a record is one call: the counter blocks are encrypted four at
// a time and GHASH folds four blocks per reduction.
//
// Only 96-bit nonces and 16-byte tags (what TLS 1.3 uses). Constant time in
// the key, the data and the tag: AES is the AES-NI round instruction, GHASH
// is PCLMULQDQ, and the tag comparison is CRYPTO_memcmp. Open never leaves
// unauthenticated plaintext behind: on a bad tag its output is zeroed.
//
// Usable only when aes_gcm_supported(): the CPU has AES-NI, PCLMULQDQ and
// SSE4.1, and the known-answer test (aes_gcm_known_answers_pass()) passed in
// this process. Otherwise the record layer stays on EVP.
#include <cstddef>
#include <cstdint>
#include <span>

namespace mf::tls {

inline constexpr size_t kAesGcmNonceBytes = 12;
inline constexpr size_t kAesGcmTagBytes = 16;

// One key, expanded: the AES round keys and H, H^2, H^3, H^4 (GHASH's key
// and the powers that let four blocks share one reduction), each block
// byte-reversed as GHASH multiplies it.
struct alignas(16) AesGcmKey {
  uint8_t round_keys[15][16];
  uint8_t h_powers[4][16];  // H^1 .. H^4
  uint32_t rounds = 0;      // 10 (AES-128) or 14 (AES-256); 0: not set
};

// AES-NI, PCLMULQDQ and SSE4.1 present, and the known answers reproduced:
// decided once per process.
bool aes_gcm_supported();

// Expands a 16- or 32-byte key; false (and `out` cleared) for another size.
bool aes_gcm_set_key(AesGcmKey& out, std::span<const uint8_t> key);
// Overwrites the key material (the round keys are the key).
void aes_gcm_clear(AesGcmKey& key);

// Encrypts `size` bytes from `in` to `out` (the same pointer, or not
// overlapping) and writes the tag over `aad` and the ciphertext. `size` is a
// record's (GCM's own bound, 2^32 - 2 blocks under one nonce, is far above).
void aes_gcm_seal(const AesGcmKey& key, const uint8_t nonce[kAesGcmNonceBytes], std::span<const uint8_t> aad,
                  const uint8_t* in, uint8_t* out, size_t size, uint8_t tag[kAesGcmTagBytes]);

// Decrypts `size` bytes from `in` to `out` (the same pointer, or not
// overlapping) when `tag` authenticates `aad` and the ciphertext; else
// returns false with `out` zeroed.
bool aes_gcm_open(const AesGcmKey& key, const uint8_t nonce[kAesGcmNonceBytes], std::span<const uint8_t> aad,
                  const uint8_t* in, uint8_t* out, size_t size, const uint8_t tag[kAesGcmTagBytes]);

// The NIST test vectors (SP 800-38D's reference cases for AES-128 and
// AES-256) through seal and open, and one tampered tag refused: what
// aes_gcm_supported() requires. Exposed for the tests.
bool aes_gcm_known_answers_pass();

}  // namespace mf::tls
