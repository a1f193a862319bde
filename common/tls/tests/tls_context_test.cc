#include "common/tls/tls_context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "common/tls/tests/tls_test_certificates.h"

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


// ---- OCSP stapling ----------------------------------------------------------------

namespace ocsp {

struct ResponseFree { void operator()(OCSP_RESPONSE* p) const { OCSP_RESPONSE_free(p); } };
using ResponsePtr = std::unique_ptr<OCSP_RESPONSE, ResponseFree>;

CertificatePtr read_certificate(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) std::abort();
  CertificatePtr cert(PEM_read_X509(file, nullptr, nullptr, nullptr));
  std::fclose(file);
  if (cert == nullptr) std::abort();
  return cert;
}

KeyPtr read_key(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) std::abort();
  KeyPtr key(PEM_read_PrivateKey(file, nullptr, nullptr, nullptr));
  std::fclose(file);
  if (key == nullptr) std::abort();
  return key;
}

// A successful response saying `good` for the self-signed certificate of
// `pair`, signed by its own key, with nextUpdate at `next_update` (Unix
// seconds), written as DER to `path`.
void write_response(const CertificateKeyPair& pair, time_t next_update, const std::string& path) {
  CertificatePtr cert = read_certificate(pair.certificate_chain_path);
  KeyPtr key = read_key(pair.private_key_path);
  OCSP_BASICRESP* basic = OCSP_BASICRESP_new();
  OCSP_CERTID* id = OCSP_cert_to_id(EVP_sha1(), cert.get(), cert.get());
  ASN1_TIME* this_update = ASN1_TIME_set(nullptr, next_update - 86400);
  ASN1_TIME* next = ASN1_TIME_set(nullptr, next_update);
  if (OCSP_basic_add1_status(basic, id, V_OCSP_CERTSTATUS_GOOD, 0, nullptr, this_update, next) == nullptr ||
      OCSP_basic_sign(basic, cert.get(), key.get(), EVP_sha256(), nullptr, 0) != 1)
    std::abort();
  ResponsePtr response(OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic));
  unsigned char* der = nullptr;
  int length = i2d_OCSP_RESPONSE(response.get(), &der);
  write_text(path, std::string_view(reinterpret_cast<char*>(der), static_cast<size_t>(length)));
  OPENSSL_free(der);
  ASN1_TIME_free(this_update);
  ASN1_TIME_free(next);
  OCSP_CERTID_free(id);
  OCSP_BASICRESP_free(basic);
}

// A handshake in memory; the stapled response the client got (empty: none).
std::string stapled_response(const Context& server, bool ask) {
  ClientContextConfig client_config;
  client_config.verify_peer = false;
  auto client_context = Context::make_client(client_config);
  if (!client_context) std::abort();
  SSL* client = SSL_new(client_context->native());
  SSL* served = SSL_new(server.native());
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
  SSL_set_bio(client, client_bio, client_bio);
  SSL_set_bio(served, server_bio, server_bio);
  SSL_set_connect_state(client);
  SSL_set_accept_state(served);
  SSL_set_tlsext_host_name(client, "localhost");
  if (ask) SSL_set_tlsext_status_type(client, TLSEXT_STATUSTYPE_ocsp);
  bool client_done = false, server_done = false;
  for (int round = 0; round < 20 && !(client_done && server_done); ++round) {
    if (!client_done) client_done = SSL_do_handshake(client) == 1;
    if (!server_done) server_done = SSL_do_handshake(served) == 1;
  }
  EXPECT_TRUE(client_done && server_done);
  const unsigned char* bytes = nullptr;
  long length = SSL_get_tlsext_status_ocsp_resp(client, &bytes);
  std::string got = bytes != nullptr && length > 0 ? std::string(reinterpret_cast<const char*>(bytes), length) : "";
  SSL_free(client);
  SSL_free(served);
  ERR_clear_error();
  return got;
}

std::string read_bytes(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  std::string bytes;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) bytes.append(buffer, n);
  std::fclose(file);
  return bytes;
}

// A server with `pair` and a response for it, made with `next_update`, at `path`.
std::expected<Context, std::string> server_stapling(const CertificateKeyPair& pair, time_t next_update,
                                                    const std::string& path) {
  write_response(pair, next_update, path);
  ServerContextConfig config;
  config.certificates = {pair};
  config.certificates[0].ocsp_response_path = path;
  return Context::make_server(config);
}

}  // namespace ocsp

TEST_F(ContextTest, OcspResponseIsStapledWhenAskedAndReported) {
  const time_t next_update = std::time(nullptr) + 3600;
  const std::string path = dir_->file("ecdsa.ocsp");
  auto context = ocsp::server_stapling(*ecdsa_, next_update, path);
  ASSERT_TRUE(context.has_value()) << context.error();
  ASSERT_EQ(context->served().size(), 1u);
  EXPECT_EQ(context->served()[0].ocsp_response_path, path);
  EXPECT_EQ(context->served()[0].ocsp_next_update_s, next_update);
  EXPECT_GT(context->served()[0].not_after_s, static_cast<int64_t>(std::time(nullptr)) + 29 * 86400);
  EXPECT_EQ(ocsp::stapled_response(*context, true), ocsp::read_bytes(path));
  EXPECT_EQ(ocsp::stapled_response(*context, false), "");
}

TEST_F(ContextTest, StaleOcspResponseLoadsButIsNotStapled) {
  const time_t next_update = std::time(nullptr) - 60;
  auto context = ocsp::server_stapling(*ecdsa_, next_update, dir_->file("stale.ocsp"));
  ASSERT_TRUE(context.has_value()) << context.error();
  EXPECT_EQ(context->served()[0].ocsp_next_update_s, next_update);
  EXPECT_EQ(ocsp::stapled_response(*context, true), "");
}

TEST_F(ContextTest, OcspResponseThatDoesNotParseOrMatchIsRefused) {
  const std::string garbage = dir_->file("garbage.ocsp");
  write_text(garbage, "not an OCSP response");
  CertificateKeyPair pair = *ecdsa_;
  pair.ocsp_response_path = garbage;
  EXPECT_EQ(server_error({pair}), "tls: OCSP response " + garbage + " is not a DER OCSPResponse");

  const std::string other = dir_->file("other.ocsp");
  ocsp::write_response(*rsa_, std::time(nullptr) + 3600, other);
  pair.ocsp_response_path = other;
  EXPECT_EQ(server_error({pair}),
            "tls: OCSP response " + other + " does not answer for certificate " + ecdsa_->certificate_chain_path);

  const std::string unsuccessful = dir_->file("trylater.ocsp");
  ocsp::ResponsePtr response(OCSP_response_create(OCSP_RESPONSE_STATUS_TRYLATER, nullptr));
  unsigned char* der = nullptr;
  int length = i2d_OCSP_RESPONSE(response.get(), &der);
  write_text(unsuccessful, std::string_view(reinterpret_cast<char*>(der), static_cast<size_t>(length)));
  OPENSSL_free(der);
  pair.ocsp_response_path = unsuccessful;
  EXPECT_EQ(server_error({pair}), "tls: OCSP response " + unsuccessful + " is not successful (trylater)");
}

TEST_F(ContextTest, SourceFilesNameEveryFileOfEveryPair) {
  CertificateKeyPair with_ocsp = *rsa_;
  with_ocsp.ocsp_response_path = "/x.ocsp";
  EXPECT_EQ(source_files({*ecdsa_, with_ocsp}),
            (std::vector<std::string>{ecdsa_->certificate_chain_path, ecdsa_->private_key_path,
                                      rsa_->certificate_chain_path, rsa_->private_key_path, "/x.ocsp"}));
}

}  // namespace
}  // namespace mf::tls
