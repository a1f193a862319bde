#pragma once
// ECDSA P-256 keys for ES256 manifests, through OpenSSL's EVP interface.
// A private key is read once, checked to be P-256, and proves itself at
// load (a signature it makes verifies with its public half) so that a bad
// key stops the signer at start; its bytes are never formatted into a
// message. The default `kid` is the first 16 characters of the base64url
// SHA-256 of the public key's DER SubjectPublicKeyInfo (docs/origin.md).
#include <openssl/evp.h>

#include <expected>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "origin/ecdsa_signature.h"

namespace mf::origin {

struct EvpPkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using EvpPkeyPointer = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

// The public half, as a verifier holds it.
class P256PublicKey {
 public:
  static std::expected<P256PublicKey, std::string> load_pem_file(const std::string& path);
  static std::expected<P256PublicKey, std::string> from_pem(std::string_view pem);

  std::vector<uint8_t> spki_der() const;
  std::string spki_pem() const;
  std::string default_kid() const;
  // {"kty":"EC","crv":"P-256","x":..,"y":..,"kid":..,"alg":"ES256","use":"sig"}
  std::string jwk(std::string_view kid) const;
  bool verify(std::string_view message, const RawP256Signature& signature) const;

  EVP_PKEY* get() const { return key_.get(); }

 private:
  friend class P256PrivateKey;
  explicit P256PublicKey(EvpPkeyPointer key) : key_(std::move(key)) {}
  EvpPkeyPointer key_;
};

class P256PrivateKey {
 public:
  static std::expected<P256PrivateKey, std::string> load_pem_file(const std::string& path);
  static std::expected<P256PrivateKey, std::string> generate();

  // Writes the key as PKCS#8 PEM to a new file (mode 0600); refuses to
  // replace an existing one.
  std::expected<void, std::string> write_pem_file(const std::string& path) const;

  const P256PublicKey& public_key() const { return public_key_; }
  std::expected<RawP256Signature, std::string> sign(std::string_view message) const;

 private:
  P256PrivateKey(EvpPkeyPointer key, P256PublicKey public_key)
      : key_(std::move(key)), public_key_(std::move(public_key)) {}
  static std::expected<P256PrivateKey, std::string> adopt(EvpPkeyPointer key);
  EvpPkeyPointer key_;
  P256PublicKey public_key_;
};

}  // namespace mf::origin
