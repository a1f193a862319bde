#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/tls/tls_context.h"

// Keys and self-signed certificates made at test time, written as PEM files.
// Failures here are broken test set-up, not test outcomes: they abort.
namespace mf::tls::test_certificates {

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using CertificatePtr = std::unique_ptr<X509, X509Free>;

enum class KeyAlgorithm { ecdsa_p256, rsa_2048 };

// Validity window relative to now.
struct Validity {
  std::chrono::seconds not_before = -std::chrono::hours(1);
  std::chrono::seconds not_after = std::chrono::days(30);
};

KeyPtr generate_key(KeyAlgorithm algorithm);

// Self-signed, SHA-256, with `dns_name` as CN and subjectAltName.
CertificatePtr make_self_signed_certificate(EVP_PKEY* key, std::string_view dns_name, Validity validity = {});

void write_pem(const std::string& path, EVP_PKEY* key);
void write_pem(const std::string& path, X509* cert);
void write_text(const std::string& path, std::string_view text);

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class TemporaryDirectory {
 public:
  TemporaryDirectory();
  ~TemporaryDirectory();
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;

  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// Generates a key and a certificate for "localhost" and writes
// <dir>/<stem>.crt.pem and <dir>/<stem>.key.pem.
CertificateKeyPair write_self_signed(const TemporaryDirectory& dir, std::string_view stem, KeyAlgorithm algorithm,
                                     Validity validity = {});

}  // namespace mf::tls::test_certificates
