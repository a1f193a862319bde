#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "common/tls/tls_ticket_keys.h"

namespace mf::tls {

struct CertificateKeyPair {
  std::string certificate_chain_path = {};  // PEM: leaf first, then intermediates
  std::string private_key_path = {};        // PEM, unencrypted
  // A DER OCSPResponse for the leaf (`openssl ocsp -respout`, HAProxy's
  // `.ocsp` file), stapled when a client sends status_request; empty: none.
  // Refused when it does not parse, is not successful or names another
  // certificate; stapled only before its nextUpdate (docs/security.md,
  // "OCSP stapling").
  std::string ocsp_response_path = {};
};

// What a server context serves, for metrics and logs.
struct ServedCertificate {
  std::string certificate_chain_path;
  int64_t not_after_s = 0;  // the leaf's notAfter, Unix seconds
  std::string ocsp_response_path;   // empty: no stapling
  int64_t ocsp_next_update_s = 0;   // the response's nextUpdate; 0: none given (never stale)
};

// The files a server context is built from (certificates, keys, OCSP
// responses), in configuration order: what a reload watches.
std::vector<std::string> source_files(const std::vector<CertificateKeyPair>& certificates);

struct ServerContextConfig {
  // At most one ECDSA and one RSA pair; with both, the client's signature
  // algorithms pick the certificate.
  std::vector<CertificateKeyPair> certificates;
  // Server preference order. A client offering none of these is refused with
  // no_application_protocol; a client offering no ALPN at all is accepted.
  std::vector<std::string> alpn = {"http/1.1"};
  // Shared by all shards so tickets resume anywhere; null disables resumption.
  std::shared_ptr<TicketKeys> ticket_keys;
  int min_version = TLS1_2_VERSION;  // TLS1_2_VERSION or TLS1_3_VERSION
  // TLS 1.2 cipher list in OpenSSL syntax; empty selects ECDHE with AEAD only.
  std::string cipher_list;
};

struct ClientContextConfig {
  bool verify_peer = true;
  std::string ca_file;  // PEM bundle; empty uses the system trust store
  std::vector<std::string> alpn = {"http/1.1"};
  bool enable_resumption = true;  // accept tickets; see Session::native()
};

// The host names a certificate serves, for SNI routing: the DNS names of
// the leaf's subjectAltName, else its subject CN; lowercased, wildcards
// ("*.example.com") kept as written. One line naming the file on failure.
std::expected<std::vector<std::string>, std::string> certificate_names(const std::string& certificate_chain_path);

// Owns one SSL_CTX, built and validated once at start-up (per shard for
// servers). Errors are one human-readable line naming the offending file.
class Context {
 public:
  static std::expected<Context, std::string> make_server(const ServerContextConfig& config);
  static std::expected<Context, std::string> make_client(const ClientContextConfig& config);

  Context(Context&& other) noexcept;
  Context& operator=(Context&& other) noexcept;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context();

  SSL_CTX* native() const { return ctx_; }
  // Servers: each configured pair, in configuration order.
  const std::vector<ServedCertificate>& served() const { return served_; }

 private:
  explicit Context(SSL_CTX* ctx) : ctx_(ctx) {}

  SSL_CTX* ctx_ = nullptr;
  std::vector<ServedCertificate> served_;
};

}  // namespace mf::tls
