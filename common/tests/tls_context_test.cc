#include "common/tls_context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/err.h>

#include <chrono>

#include "common/tests/tls_test_certificates.h"

namespace mf::tls {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace mf::tls::test_certificates;

class ContextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TemporaryDirectory();
    ecdsa_ = new CertificateKeyPair(write_self_signed(*dir_, "ecdsa", KeyAlgorithm::ecdsa_p256));
    rsa_ = new CertificateKeyPair(write_self_signed(*dir_, "rsa", KeyAlgorithm::rsa_2048));
  }
  static void TearDownTestSuite() {
    delete ecdsa_;
    delete rsa_;
    delete dir_;
  }

  void TearDown() override { EXPECT_EQ(ERR_peek_error(), 0u) << "context left errors on the queue"; }

  static std::string server_error(std::vector<CertificateKeyPair> certificates) {
    ServerContextConfig config;
    config.certificates = std::move(certificates);
    auto context = Context::make_server(config);
    EXPECT_FALSE(context.has_value());
    return context.has_value() ? std::string() : context.error();
  }

  static inline TemporaryDirectory* dir_ = nullptr;
  static inline CertificateKeyPair* ecdsa_ = nullptr;
  static inline CertificateKeyPair* rsa_ = nullptr;
};

TEST_F(ContextTest, ServerWithEcdsaAndRsaLoads) {
  auto keys = TicketKeys::generate();
  ASSERT_TRUE(keys.has_value()) << keys.error();
  ServerContextConfig config;
  config.certificates = {*ecdsa_, *rsa_};
  config.ticket_keys = *keys;
  auto context = Context::make_server(config);
  ASSERT_TRUE(context.has_value()) << context.error();
  SSL_CTX* ctx = context->native();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_session_cache_mode(ctx), SSL_SESS_CACHE_OFF);
  EXPECT_NE(SSL_CTX_get_mode(ctx) & SSL_MODE_RELEASE_BUFFERS, 0);
  EXPECT_EQ(SSL_CTX_get_mode(ctx) & SSL_MODE_ENABLE_PARTIAL_WRITE, 0);
  EXPECT_NE(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION, 0u);
  EXPECT_EQ(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET, 0u);
  EXPECT_EQ(SSL_CTX_get_num_tickets(ctx), 1u);

  Context moved = std::move(*context);
  EXPECT_EQ(moved.native(), ctx);
  EXPECT_EQ(context->native(), nullptr);
}

TEST_F(ContextTest, ServerWithoutTicketKeysDisablesTickets) {
  ServerContextConfig config;
  config.certificates = {*ecdsa_};
  auto context = Context::make_server(config);
  ASSERT_TRUE(context.has_value()) << context.error();
  EXPECT_NE(SSL_CTX_get_options(context->native()) & SSL_OP_NO_TICKET, 0u);
  EXPECT_EQ(SSL_CTX_get_num_tickets(context->native()), 0u);
}

TEST_F(ContextTest, MissingCertificateFile) {
  const std::string path = dir_->file("absent.crt.pem");
  EXPECT_EQ(server_error({{path, ecdsa_->private_key_path}}),
            "tls: cannot read certificate " + path + ": No such file or directory");
}

TEST_F(ContextTest, MissingPrivateKeyFile) {
  const std::string path = dir_->file("absent.key.pem");
  EXPECT_EQ(server_error({{ecdsa_->certificate_chain_path, path}}),
            "tls: cannot read private key " + path + ": No such file or directory");
}

TEST_F(ContextTest, CertificatePathIsADirectory) {
  EXPECT_EQ(server_error({{dir_->path(), ecdsa_->private_key_path}}),
            "tls: cannot read certificate " + dir_->path() + ": Is a directory");
}

TEST_F(ContextTest, GarbageCertificate) {
  const std::string path = dir_->file("garbage.crt.pem");
  write_text(path, "this is not a certificate\n");
  EXPECT_EQ(server_error({{path, ecdsa_->private_key_path}}),
            "tls: certificate " + path + " holds no PEM certificate");
}

TEST_F(ContextTest, CorruptPemCertificate) {
  const std::string path = dir_->file("corrupt.crt.pem");
  write_text(path, "-----BEGIN CERTIFICATE-----\nAAAAbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n");
  EXPECT_THAT(server_error({{path, ecdsa_->private_key_path}}),
              StartsWith("tls: cannot parse certificate " + path + ": "));
}

TEST_F(ContextTest, GarbagePrivateKey) {
  const std::string path = dir_->file("garbage.key.pem");
  write_text(path, "-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END PRIVATE KEY-----\n");
  EXPECT_THAT(server_error({{ecdsa_->certificate_chain_path, path}}),
              StartsWith("tls: cannot parse private key " + path + " (PEM, unencrypted): "));
}

TEST_F(ContextTest, EncryptedPrivateKeyIsRefusedWithoutPrompting) {
  KeyPtr key = generate_key(KeyAlgorithm::ecdsa_p256);
  CertificatePtr cert = make_self_signed_certificate(key.get(), "localhost");
  const std::string cert_path = dir_->file("encrypted.crt.pem");
  const std::string key_path = dir_->file("encrypted.key.pem");
  write_pem(cert_path, cert.get());
  std::FILE* file = std::fopen(key_path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  static const char kPassphrase[] = "secret";
  ASSERT_EQ(PEM_write_PKCS8PrivateKey(file, key.get(), EVP_aes_256_cbc(), kPassphrase, sizeof kPassphrase - 1,
                                      nullptr, nullptr),
            1);
  std::fclose(file);
  EXPECT_THAT(server_error({{cert_path, key_path}}), StartsWith("tls: cannot parse private key " + key_path));
}

TEST_F(ContextTest, MismatchedKey) {
  EXPECT_EQ(server_error({{ecdsa_->certificate_chain_path, rsa_->private_key_path}}),
            "tls: private key " + rsa_->private_key_path + " does not match certificate " +
                ecdsa_->certificate_chain_path);
  CertificateKeyPair other = write_self_signed(*dir_, "other-ecdsa", KeyAlgorithm::ecdsa_p256);
  EXPECT_EQ(server_error({{ecdsa_->certificate_chain_path, other.private_key_path}}),
            "tls: private key " + other.private_key_path + " does not match certificate " +
                ecdsa_->certificate_chain_path);
}

TEST_F(ContextTest, ExpiredCertificate) {
  using std::chrono::days;
  CertificateKeyPair expired = write_self_signed(*dir_, "expired", KeyAlgorithm::ecdsa_p256, {-days(30), -days(1)});
  const std::string error = server_error({expired});
  EXPECT_THAT(error, StartsWith("tls: certificate " + expired.certificate_chain_path + " expired at "));
  EXPECT_THAT(error, HasSubstr(" UTC"));
}

TEST_F(ContextTest, NotYetValidCertificate) {
  using std::chrono::days;
  CertificateKeyPair future = write_self_signed(*dir_, "future", KeyAlgorithm::ecdsa_p256, {days(1), days(30)});
  EXPECT_THAT(server_error({future}),
              StartsWith("tls: certificate " + future.certificate_chain_path + " is not valid before "));
}

TEST_F(ContextTest, TwoCertificatesOfTheSameKeyType) {
  CertificateKeyPair second = write_self_signed(*dir_, "second-ecdsa", KeyAlgorithm::ecdsa_p256);
  EXPECT_EQ(server_error({*ecdsa_, second}),
            "tls: certificates " + ecdsa_->certificate_chain_path + " and " + second.certificate_chain_path +
                " have the same key type; load one ECDSA and one RSA at most");
}

TEST_F(ContextTest, NoCertificates) {
  EXPECT_EQ(server_error({}), "tls: server context needs at least one certificate");
}

TEST_F(ContextTest, ChainFileWithIntermediateLoads) {
  KeyPtr intermediate_key = generate_key(KeyAlgorithm::ecdsa_p256);
  CertificatePtr intermediate = make_self_signed_certificate(intermediate_key.get(), "intermediate");
  const std::string chain_path = dir_->file("chain.crt.pem");
  std::FILE* file = std::fopen(chain_path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  CertificatePtr leaf;
  {
    KeyPtr key = generate_key(KeyAlgorithm::ecdsa_p256);
    leaf = make_self_signed_certificate(key.get(), "localhost");
    write_pem(dir_->file("chain.key.pem"), key.get());
  }
  ASSERT_EQ(PEM_write_X509(file, leaf.get()), 1);
  ASSERT_EQ(PEM_write_X509(file, intermediate.get()), 1);
  std::fclose(file);
  ServerContextConfig config;
  config.certificates = {{chain_path, dir_->file("chain.key.pem")}};
  auto context = Context::make_server(config);
  ASSERT_TRUE(context.has_value()) << context.error();
  STACK_OF(X509)* chain = nullptr;
  ASSERT_EQ(SSL_CTX_get0_chain_certs(context->native(), &chain), 1);
  ASSERT_NE(chain, nullptr);
  EXPECT_EQ(sk_X509_num(chain), 1);
}

TEST_F(ContextTest, InvalidSettings) {
  ServerContextConfig config;
  config.certificates = {*ecdsa_};
  config.min_version = TLS1_1_VERSION;
  auto context = Context::make_server(config);
  ASSERT_FALSE(context.has_value());
  EXPECT_EQ(context.error(), "tls: minimum protocol version must be TLS 1.2 or TLS 1.3");

  config.min_version = TLS1_2_VERSION;
  config.alpn = {"http/1.1", ""};
  context = Context::make_server(config);
  ASSERT_FALSE(context.has_value());
  EXPECT_EQ(context.error(), "tls: invalid ALPN protocol name \"\" (1 to 255 bytes)");

  config.alpn = {"http/1.1"};
  config.cipher_list = "NOT-A-CIPHER";
  context = Context::make_server(config);
  ASSERT_FALSE(context.has_value());
  EXPECT_EQ(context.error(), "tls: cipher list \"NOT-A-CIPHER\" selects no usable TLS 1.2 cipher");
}

TEST_F(ContextTest, ClientContexts) {
  ClientContextConfig config;
  config.ca_file = ecdsa_->certificate_chain_path;
  auto verifying = Context::make_client(config);
  ASSERT_TRUE(verifying.has_value()) << verifying.error();
  EXPECT_EQ(SSL_CTX_get_verify_mode(verifying->native()), SSL_VERIFY_PEER);

  config.ca_file = dir_->file("absent-ca.pem");
  auto missing = Context::make_client(config);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error(), "tls: cannot read CA file " + config.ca_file + ": No such file or directory");

  config.ca_file = dir_->file("garbage-ca.pem");
  write_text(config.ca_file, "nothing here\n");
  auto garbage = Context::make_client(config);
  ASSERT_FALSE(garbage.has_value());
  EXPECT_THAT(garbage.error(), StartsWith("tls: CA file " + config.ca_file + " holds no usable certificate"));

  config = {};
  config.verify_peer = false;
  config.enable_resumption = false;
  auto plain = Context::make_client(config);
  ASSERT_TRUE(plain.has_value()) << plain.error();
  EXPECT_EQ(SSL_CTX_get_verify_mode(plain->native()), SSL_VERIFY_NONE);
  EXPECT_NE(SSL_CTX_get_options(plain->native()) & SSL_OP_NO_TICKET, 0u);
}

}  // namespace
}  // namespace mf::tls
