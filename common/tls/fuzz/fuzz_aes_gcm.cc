// aes_gcm.h against OpenSSL's EVP AES-GCM on arbitrary input. The input is:
// a byte choosing the key size (bit 0: AES-256) and a bit to flip (the other
// bits, modulo the sealed bytes), the AAD's length (one byte, modulo 128),
// the key, the nonce, the AAD, then the plaintext. Seal must give EVP's
// ciphertext and tag, in place as not; open must return the plaintext, and
// refuse the same record with one bit flipped anywhere in its AAD,
// ciphertext or tag, leaving its output zeroed. Aborts when one breaks.
#include <openssl/evp.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "common/tls/aes_gcm.h"

namespace {

using mf::tls::kAesGcmNonceBytes;
using mf::tls::kAesGcmTagBytes;

void check(bool condition) {
  if (!condition) std::abort();
}

// EVP's ciphertext followed by its tag.
std::vector<uint8_t> evp_seal(std::span<const uint8_t> key, const uint8_t* nonce, std::span<const uint8_t> aad,
                              std::span<const uint8_t> plaintext) {
  std::vector<uint8_t> out(plaintext.size() + kAesGcmTagBytes);
  EVP_CIPHER_CTX* context = EVP_CIPHER_CTX_new();
  check(context != nullptr);
  int n = 0;
  check(EVP_EncryptInit_ex(context, key.size() == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm(), nullptr, key.data(),
                           nonce) == 1);
  check(EVP_EncryptUpdate(context, nullptr, &n, aad.data(), static_cast<int>(aad.size())) == 1);
  check(EVP_EncryptUpdate(context, out.data(), &n, plaintext.data(), static_cast<int>(plaintext.size())) == 1);
  check(static_cast<size_t>(n) == plaintext.size());
  check(EVP_EncryptFinal_ex(context, out.data() + n, &n) == 1 && n == 0);
  check(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, kAesGcmTagBytes, out.data() + plaintext.size()) == 1);
  EVP_CIPHER_CTX_free(context);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!mf::tls::aes_gcm_supported() || size < 2) return 0;
  const bool aes256 = (data[0] & 1) != 0;
  const size_t flip_choice = data[0] >> 1;
  const size_t aad_size = data[1] % 128;
  const size_t key_size = aes256 ? 32 : 16;
  data += 2;
  size -= 2;
  if (size < key_size + kAesGcmNonceBytes + aad_size) return 0;
  const std::span<const uint8_t> key(data, key_size);
  const uint8_t* nonce = data + key_size;
  std::vector<uint8_t> aad(data + key_size + kAesGcmNonceBytes, data + key_size + kAesGcmNonceBytes + aad_size);
  const std::span<const uint8_t> plaintext(data + key_size + kAesGcmNonceBytes + aad_size,
                                           size - key_size - kAesGcmNonceBytes - aad_size);

  mf::tls::AesGcmKey expanded;
  check(mf::tls::aes_gcm_set_key(expanded, key));
  const std::vector<uint8_t> expected = evp_seal(key, nonce, aad, plaintext);

  std::vector<uint8_t> sealed(plaintext.size() + kAesGcmTagBytes);
  mf::tls::aes_gcm_seal(expanded, nonce, aad, plaintext.data(), sealed.data(), plaintext.size(),
                        sealed.data() + plaintext.size());
  check(sealed == expected);
  std::vector<uint8_t> in_place(plaintext.begin(), plaintext.end());
  in_place.resize(plaintext.size() + kAesGcmTagBytes);
  mf::tls::aes_gcm_seal(expanded, nonce, aad, in_place.data(), in_place.data(), plaintext.size(),
                        in_place.data() + plaintext.size());
  check(in_place == expected);

  std::vector<uint8_t> opened(plaintext.size() + 1);
  check(mf::tls::aes_gcm_open(expanded, nonce, aad, sealed.data(), opened.data(), plaintext.size(),
                              sealed.data() + plaintext.size()));
  check(std::memcmp(opened.data(), plaintext.data(), plaintext.size()) == 0);

  // One bit flipped among the AAD, the ciphertext and the tag.
  const size_t bits = (aad.size() + sealed.size()) * 8;
  const size_t bit = flip_choice * 2654435761u % bits;
  uint8_t& target = bit / 8 < aad.size() ? aad[bit / 8] : sealed[bit / 8 - aad.size()];
  target ^= static_cast<uint8_t>(1u << bit % 8);
  std::fill(opened.begin(), opened.end(), 0x5a);
  check(!mf::tls::aes_gcm_open(expanded, nonce, aad, sealed.data(), opened.data(), plaintext.size(),
                               sealed.data() + plaintext.size()));
  for (size_t i = 0; i < plaintext.size(); ++i) check(opened[i] == 0);
  check(opened[plaintext.size()] == 0x5a);
  mf::tls::aes_gcm_clear(expanded);
  return 0;
}
