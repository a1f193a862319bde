#include "origin/p256_key.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/base/base64url.h"
#include "common/config/config_schema.h"
#include "origin/sha256.h"

namespace mf::origin {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPointer = std::unique_ptr<BIO, BioFree>;

struct MdContextFree {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
using MdContextPointer = std::unique_ptr<EVP_MD_CTX, MdContextFree>;

// OpenSSL's reason for the last failure, without key material (its error
// strings name the operation, never the bytes).
std::string openssl_reason() {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

// An encrypted key would make OpenSSL prompt on the terminal: refuse instead.
int no_passphrase(char*, int, int, void*) { return 0; }

std::expected<void, std::string> check_p256(EVP_PKEY* key) {
  if (!EVP_PKEY_is_a(key, "EC")) return std::unexpected("not an EC key (ES256 needs ECDSA P-256)");
  char group[64] = {};
  size_t length = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &length) != 1 ||
      std::string_view(group, length) != "prime256v1")
    return std::unexpected(fmt::format("an EC key on curve {}, not P-256", config::printable(std::string_view(group, length))));
  return {};
}

std::expected<std::string, std::string> read_key_file(const std::string& path) {
  auto text = config::read_whole_file(path);
  if (!text) return std::unexpected(fmt::format("{}: {}", config::printable(path), text.error()));
  return text;
}

}  // namespace

std::expected<P256PublicKey, std::string> P256PublicKey::from_pem(std::string_view pem) {
  BioPointer bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return std::unexpected(openssl_reason());
  EvpPkeyPointer key(PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) return std::unexpected("not a PEM public key (SubjectPublicKeyInfo, \"BEGIN PUBLIC KEY\")");
  if (auto ok = check_p256(key.get()); !ok) return std::unexpected(ok.error());
  return P256PublicKey(std::move(key));
}

std::expected<P256PublicKey, std::string> P256PublicKey::load_pem_file(const std::string& path) {
  auto text = read_key_file(path);
  if (!text) return std::unexpected(text.error());
  auto key = from_pem(*text);
  if (!key) return std::unexpected(fmt::format("{}: {}", config::printable(path), key.error()));
  return key;
}

std::vector<uint8_t> P256PublicKey::spki_der() const {
  int size = i2d_PUBKEY(key_.get(), nullptr);
  if (size <= 0) std::abort();  // a loaded public key always encodes
  std::vector<uint8_t> der(static_cast<size_t>(size));
  unsigned char* out = der.data();
  i2d_PUBKEY(key_.get(), &out);
  return der;
}

std::string P256PublicKey::spki_pem() const {
  BioPointer bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1) std::abort();
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string P256PublicKey::default_kid() const {
  std::vector<uint8_t> der = spki_der();
  return base64url(sha256(std::span<const uint8_t>(der))).substr(0, 16);
}

std::string P256PublicKey::jwk(std::string_view kid) const {
  uint8_t coordinates[2][32];
  const char* names[2] = {OSSL_PKEY_PARAM_EC_PUB_X, OSSL_PKEY_PARAM_EC_PUB_Y};
  for (int i = 0; i < 2; ++i) {
    BIGNUM* value = nullptr;
    if (EVP_PKEY_get_bn_param(key_.get(), names[i], &value) != 1 || BN_bn2binpad(value, coordinates[i], 32) != 32)
      std::abort();  // a checked P-256 key has both coordinates
    BN_free(value);
  }
  return fmt::format(R"({{"kty":"EC","crv":"P-256","x":"{}","y":"{}","kid":"{}","alg":"ES256","use":"sig"}})",
                     base64url(coordinates[0]), base64url(coordinates[1]), kid);
}

bool P256PublicKey::verify(std::string_view message, const RawP256Signature& signature) const {
  std::vector<uint8_t> der = raw_to_der_p256(signature);
  MdContextPointer context(EVP_MD_CTX_new());
  bool ok = context && EVP_DigestVerifyInit(context.get(), nullptr, EVP_sha256(), nullptr, key_.get()) == 1 &&
            EVP_DigestVerify(context.get(), der.data(), der.size(),
                             reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  ERR_clear_error();
  return ok;
}

std::expected<P256PrivateKey, std::string> P256PrivateKey::adopt(EvpPkeyPointer key) {
  if (auto ok = check_p256(key.get()); !ok) return std::unexpected(ok.error());
  int size = i2d_PUBKEY(key.get(), nullptr);
  std::vector<uint8_t> der(size > 0 ? static_cast<size_t>(size) : 0);
  unsigned char* out = der.data();
  if (size <= 0 || i2d_PUBKEY(key.get(), &out) != size) return std::unexpected("cannot encode its public key");
  const unsigned char* in = der.data();
  EvpPkeyPointer public_only(d2i_PUBKEY(nullptr, &in, size));
  if (!public_only) return std::unexpected("cannot decode its public key");
  P256PrivateKey result(std::move(key), P256PublicKey(std::move(public_only)));
  // Proves itself: a key whose signatures do not verify never signs a manifest.
  constexpr std::string_view probe = "mf-sign key self-test";
  auto signature = result.sign(probe);
  if (!signature) return std::unexpected(signature.error());
  if (!result.public_key_.verify(probe, *signature)) return std::unexpected("its signatures do not verify");
  return result;
}

std::expected<P256PrivateKey, std::string> P256PrivateKey::load_pem_file(const std::string& path) {
  auto text = read_key_file(path);
  if (!text) return std::unexpected(text.error());
  BioPointer bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  EvpPkeyPointer key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
  // The text held the key: wipe it before it goes back to the allocator.
  OPENSSL_cleanse(text->data(), text->size());
  ERR_clear_error();
  if (!key)
    return std::unexpected(fmt::format("{}: not an unencrypted PEM private key", config::printable(path)));
  auto loaded = adopt(std::move(key));
  if (!loaded) return std::unexpected(fmt::format("{}: {}", config::printable(path), loaded.error()));
  return loaded;
}

std::expected<P256PrivateKey, std::string> P256PrivateKey::generate() {
  EvpPkeyPointer key(EVP_EC_gen("P-256"));
  if (!key) return std::unexpected("cannot generate a P-256 key: " + openssl_reason());
  return adopt(std::move(key));
}

std::expected<void, std::string> P256PrivateKey::write_pem_file(const std::string& path) const {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected(fmt::format("{}: {}", config::printable(path), std::strerror(errno)));
  BioPointer bio(BIO_new_fd(fd, BIO_CLOSE));
  bool ok = bio && PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1 &&
            BIO_flush(bio.get()) == 1 && ::fsync(fd) == 0;
  if (!bio) ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return std::unexpected(fmt::format("{}: cannot write the key", config::printable(path)));
  }
  return {};
}

std::expected<RawP256Signature, std::string> P256PrivateKey::sign(std::string_view message) const {
  MdContextPointer context(EVP_MD_CTX_new());
  unsigned char der[80];
  size_t size = sizeof der;
  if (!context || EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(context.get(), der, &size, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1)
    return std::unexpected("ECDSA signing failed: " + openssl_reason());
  auto raw = der_to_raw_p256(std::span<const uint8_t>(der, size));
  if (!raw) return std::unexpected("OpenSSL's signature is not DER: " + raw.error());
  return raw;
}

}  // namespace mf::origin
