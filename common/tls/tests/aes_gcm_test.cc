#include "common/tls/aes_gcm.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

namespace mf::tls {
namespace {

// OpenSSL's EVP AES-GCM: the reference every result here is compared with.
struct Reference {
  std::vector<uint8_t> ciphertext;
  uint8_t tag[kAesGcmTagBytes];
};

Reference evp_seal(std::span<const uint8_t> key, const uint8_t* nonce, std::span<const uint8_t> aad,
                   std::span<const uint8_t> plaintext) {
  Reference out;
  out.ciphertext.resize(plaintext.size() + 16);
  EVP_CIPHER_CTX* context = EVP_CIPHER_CTX_new();
  const EVP_CIPHER* cipher = key.size() == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
  int n = 0, total = 0;
  EXPECT_EQ(EVP_EncryptInit_ex(context, cipher, nullptr, key.data(), nonce), 1);
  if (!aad.empty()) {
    EXPECT_EQ(EVP_EncryptUpdate(context, nullptr, &n, aad.data(), static_cast<int>(aad.size())), 1);
  }
  if (!plaintext.empty()) {
    EXPECT_EQ(EVP_EncryptUpdate(context, out.ciphertext.data(), &n, plaintext.data(), static_cast<int>(plaintext.size())),
              1);
    total = n;
  }
  EXPECT_EQ(EVP_EncryptFinal_ex(context, out.ciphertext.data() + total, &n), 1);
  total += n;
  EXPECT_EQ(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, kAesGcmTagBytes, out.tag), 1);
  EVP_CIPHER_CTX_free(context);
  out.ciphertext.resize(static_cast<size_t>(total));
  return out;
}

std::vector<uint8_t> random_bytes(std::mt19937& random, size_t n) {
  std::vector<uint8_t> out(n);
  for (uint8_t& b : out) b = static_cast<uint8_t>(random());
  return out;
}

TEST(AesGcm, ReproducesTheKnownAnswers) {
  ASSERT_TRUE(aes_gcm_supported()) << "this machine's CPU has AES-NI and PCLMULQDQ";
  EXPECT_TRUE(aes_gcm_known_answers_pass());
}

TEST(AesGcm, RefusesKeysOfOtherSizes) {
  AesGcmKey key;
  const uint8_t bytes[33] = {};
  for (size_t size : {0, 1, 15, 17, 24, 31, 33}) {
    EXPECT_FALSE(aes_gcm_set_key(key, {bytes, size})) << size;
    EXPECT_EQ(key.rounds, 0u);
  }
  EXPECT_TRUE(aes_gcm_set_key(key, {bytes, 16}));
  EXPECT_EQ(key.rounds, 10u);
  EXPECT_TRUE(aes_gcm_set_key(key, {bytes, 32}));
  EXPECT_EQ(key.rounds, 14u);
}

// Every length from 0 to 600 bytes (every way a record ends inside or on a
// block, through the four-block loop), with AADs of several lengths (TLS's
// is 5 bytes), both key sizes: the same ciphertext and tag as OpenSSL, and
// open returns the plaintext, in place or not.
TEST(AesGcm, AgreesWithOpenSslAtEveryLength) {
  ASSERT_TRUE(aes_gcm_supported());
  std::mt19937 random(20261206);
  for (size_t key_size : {16, 32}) {
    for (size_t aad_size : {0, 5, 13, 16, 17, 40, 64, 100}) {
      for (size_t size = 0; size <= 600; ++size) {
        const std::vector<uint8_t> key_bytes = random_bytes(random, key_size);
        const std::vector<uint8_t> nonce = random_bytes(random, kAesGcmNonceBytes);
        const std::vector<uint8_t> aad = random_bytes(random, aad_size);
        const std::vector<uint8_t> plaintext = random_bytes(random, size);
        const Reference expected = evp_seal(key_bytes, nonce.data(), aad, plaintext);
        AesGcmKey key;
        ASSERT_TRUE(aes_gcm_set_key(key, key_bytes));

        std::vector<uint8_t> sealed(size + 1);
        uint8_t tag[kAesGcmTagBytes];
        aes_gcm_seal(key, nonce.data(), aad, plaintext.data(), sealed.data(), size, tag);
        sealed.resize(size);
        ASSERT_EQ(sealed, expected.ciphertext) << "key " << key_size << " aad " << aad_size << " size " << size;
        ASSERT_EQ(std::memcmp(tag, expected.tag, sizeof tag), 0)
            << "key " << key_size << " aad " << aad_size << " size " << size;

        std::vector<uint8_t> in_place = plaintext;
        uint8_t in_place_tag[kAesGcmTagBytes];
        aes_gcm_seal(key, nonce.data(), aad, in_place.data(), in_place.data(), size, in_place_tag);
        ASSERT_EQ(in_place, expected.ciphertext) << "in place, size " << size;
        ASSERT_EQ(std::memcmp(in_place_tag, expected.tag, sizeof tag), 0);

        std::vector<uint8_t> opened(size + 1);
        ASSERT_TRUE(aes_gcm_open(key, nonce.data(), aad, sealed.data(), opened.data(), size, tag));
        opened.resize(size);
        ASSERT_EQ(opened, plaintext) << "size " << size;
        ASSERT_TRUE(aes_gcm_open(key, nonce.data(), aad, in_place.data(), in_place.data(), size, tag));
        ASSERT_EQ(in_place, plaintext) << "opened in place, size " << size;
      }
    }
  }
}

// Any bit changed in the AAD, the ciphertext, the tag or the nonce makes
// open refuse, and the output it wrote is zeroed.
TEST(AesGcm, RefusesEveryAlteredBitAndLeavesNoPlaintext) {
  ASSERT_TRUE(aes_gcm_supported());
  std::mt19937 random(7);
  for (size_t key_size : {16, 32}) {
    const std::vector<uint8_t> key_bytes = random_bytes(random, key_size);
    std::vector<uint8_t> nonce = random_bytes(random, kAesGcmNonceBytes);
    std::vector<uint8_t> aad = random_bytes(random, 5);
    const std::vector<uint8_t> plaintext = random_bytes(random, 70);
    AesGcmKey key;
    ASSERT_TRUE(aes_gcm_set_key(key, key_bytes));
    std::vector<uint8_t> sealed(plaintext.size());
    uint8_t tag[kAesGcmTagBytes];
    aes_gcm_seal(key, nonce.data(), aad, plaintext.data(), sealed.data(), plaintext.size(), tag);
    auto refused = [&](const char* what, size_t bit) {
      std::vector<uint8_t> out(plaintext.size(), 0xaa);
      const bool opened = aes_gcm_open(key, nonce.data(), aad, sealed.data(), out.data(), out.size(), tag);
      EXPECT_FALSE(opened) << what << " bit " << bit;
      EXPECT_EQ(out, std::vector<uint8_t>(out.size(), 0)) << what << " bit " << bit;
    };
    // Each bit of `bytes` in turn, flipped, then restored.
    auto refused_with_each_bit_flipped = [&](const char* what, uint8_t* bytes, size_t size) {
      for (size_t bit = 0; bit < size * 8; ++bit) {
        bytes[bit / 8] ^= static_cast<uint8_t>(1u << bit % 8);
        refused(what, bit);
        bytes[bit / 8] ^= static_cast<uint8_t>(1u << bit % 8);
      }
    };
    refused_with_each_bit_flipped("aad", aad.data(), aad.size());
    refused_with_each_bit_flipped("ciphertext", sealed.data(), sealed.size());
    refused_with_each_bit_flipped("tag", tag, sizeof tag);
    refused_with_each_bit_flipped("nonce", nonce.data(), nonce.size());
    std::vector<uint8_t> out(plaintext.size());
    EXPECT_TRUE(aes_gcm_open(key, nonce.data(), aad, sealed.data(), out.data(), out.size(), tag));
    EXPECT_EQ(out, plaintext);
  }
}

TEST(AesGcm, ClearOverwritesTheKeyMaterial) {
  AesGcmKey key;
  const uint8_t bytes[16] = {1, 2, 3};
  ASSERT_TRUE(aes_gcm_set_key(key, bytes));
  aes_gcm_clear(key);
  const uint8_t* raw = reinterpret_cast<const uint8_t*>(&key);
  EXPECT_EQ(std::count(raw, raw + sizeof key, 0), static_cast<long>(sizeof key));
}

}  // namespace
}  // namespace mf::tls
