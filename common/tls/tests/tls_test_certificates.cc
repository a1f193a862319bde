#include "common/tls/tests/tls_test_certificates.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace mf::tls::test_certificates {
namespace {

[[noreturn]] void die(std::string_view what) {
  std::fprintf(stderr, "tls test certificates: %.*s\n", static_cast<int>(what.size()), what.data());
  ERR_print_errors_fp(stderr);
  std::abort();
}

void check(bool ok, std::string_view what) {
  if (!ok) die(what);
}

struct FileClose {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

std::unique_ptr<std::FILE, FileClose> open_for_writing(const std::string& path) {
  std::unique_ptr<std::FILE, FileClose> file(std::fopen(path.c_str(), "wb"));
  check(file != nullptr, "cannot create " + path);
  return file;
}

void add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(extension != nullptr && X509_add_ext(cert, extension, -1) == 1, "cannot add extension");
  X509_EXTENSION_free(extension);
}

}  // namespace

KeyPtr generate_key(KeyAlgorithm algorithm) {
  EVP_PKEY* key = algorithm == KeyAlgorithm::ecdsa_p256 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                                                        : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  check(key != nullptr, "cannot generate key");
  return KeyPtr(key);
}

CertificatePtr make_self_signed_certificate(EVP_PKEY* key, std::string_view dns_name, Validity validity) {
  CertificatePtr cert(X509_new());
  check(cert != nullptr, "X509_new");
  X509* c = cert.get();
  check(X509_set_version(c, X509_VERSION_3) == 1, "X509_set_version");

  unsigned char serial[16];
  check(RAND_bytes(serial, sizeof serial) == 1, "RAND_bytes");
  serial[0] &= 0x7f;  // positive
  BIGNUM* serial_number = BN_bin2bn(serial, sizeof serial, nullptr);
  check(serial_number != nullptr && BN_to_ASN1_INTEGER(serial_number, X509_get_serialNumber(c)) != nullptr,
        "serial number");
  BN_free(serial_number);

  check(X509_gmtime_adj(X509_getm_notBefore(c), static_cast<long>(validity.not_before.count())) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(c), static_cast<long>(validity.not_after.count())) != nullptr,
        "validity");

  const std::string name(dns_name);
  X509_NAME* subject = X509_get_subject_name(c);
  check(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(name.c_str()),
                                   -1, -1, 0) == 1,
        "subject");
  check(X509_set_issuer_name(c, subject) == 1, "issuer");
  check(X509_set_pubkey(c, key) == 1, "public key");
  add_extension(c, NID_basic_constraints, "critical,CA:TRUE");
  add_extension(c, NID_subject_alt_name, ("DNS:" + name).c_str());
  check(X509_sign(c, key, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

void write_pem(const std::string& path, EVP_PKEY* key) {
  auto file = open_for_writing(path);
  check(PEM_write_PrivateKey(file.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1, "write key " + path);
}

void write_pem(const std::string& path, X509* cert) {
  auto file = open_for_writing(path);
  check(PEM_write_X509(file.get(), cert) == 1, "write certificate " + path);
}

void write_text(const std::string& path, std::string_view text) {
  auto file = open_for_writing(path);
  check(std::fwrite(text.data(), 1, text.size(), file.get()) == text.size(), "write " + path);
}

TemporaryDirectory::TemporaryDirectory() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/mf-tls-test-XXXXXX";
  check(mkdtemp(pattern.data()) != nullptr, "mkdtemp " + pattern);
  path_ = std::move(pattern);
}

TemporaryDirectory::~TemporaryDirectory() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

CertificateKeyPair write_self_signed(const TemporaryDirectory& dir, std::string_view stem, KeyAlgorithm algorithm,
                                     Validity validity) {
  KeyPtr key = generate_key(algorithm);
  CertificatePtr cert = make_self_signed_certificate(key.get(), "localhost", validity);
  CertificateKeyPair pair{dir.file(std::string(stem) + ".crt.pem"), dir.file(std::string(stem) + ".key.pem")};
  write_pem(pair.certificate_chain_path, cert.get());
  write_pem(pair.private_key_path, key.get());
  ERR_clear_error();
  return pair;
}

}  // namespace mf::tls::test_certificates
