#pragma once
// TLS server contexts of one ingress shard and the SNI choice between them.
// Each certificate pair of the configuration serves the names written in
// its certificate (subjectAltName DNS names, else CN); pairs that serve the
// same names (an ECDSA and an RSA certificate of one host) share a context,
// where the client's signature algorithms pick one. The first group is the
// default: it answers clients that send no SNI, and, when unknown names are
// not refused, clients whose name matches nothing.
//
// A router is built per shard at start and on every reload; connections in
// their handshake keep the router they started with alive through
// retire(), connections past it only hold their SSL_CTX (reference counted
// by OpenSSL).
#include <openssl/ssl.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/tls/tls_context.h"
#include "common/tls/tls_ticket_keys.h"
#include "common/base/transparent_string_hash.h"

namespace mf::ingress {

struct SniRouterOptions {
  std::vector<tls::CertificateKeyPair> certificates;  // at least one; the first is the default
  std::vector<std::string> alpn = {"http/1.1"};
  int min_version = TLS1_2_VERSION;
  std::shared_ptr<TicketKeys> ticket_keys;
  bool refuse_unknown_names = true;  // unrecognized_name alert; false: the default certificate
};

class SniRouter {
 public:
  // Loads and validates every certificate; one line naming the file on error.
  static std::expected<std::unique_ptr<SniRouter>, std::string> create(const SniRouterOptions& options);
  SniRouter(const SniRouter&) = delete;
  SniRouter& operator=(const SniRouter&) = delete;

  // Context new sessions start with; the SNI callback may switch a session
  // to another group's context during its ClientHello.
  const tls::Context& default_context() const { return groups_.front().context; }
  // Handshakes refused for an unknown name since creation (this shard).
  uint64_t unknown_name_refusals() const { return unknown_name_refusals_; }
  // Every name served, for the start-up log.
  std::vector<std::string> names() const;
  // Every certificate served, in configuration order of the groups.
  std::vector<tls::ServedCertificate> served() const;

 private:
  struct Group {
    std::vector<std::string> names;
    tls::Context context;
  };
  SniRouter() = default;
  static int on_server_name(SSL* ssl, int* alert, void* argument);
  SSL_CTX* find(std::string_view lowercase_name) const;

  std::vector<Group> groups_;
  std::unordered_map<std::string, SSL_CTX*, TransparentStringHash, std::equal_to<>> exact_;
  // "*.example.com" is stored as "example.com": one label of the client's
  // name is stripped before the lookup (RFC 6125: a wildcard covers one label).
  std::unordered_map<std::string, SSL_CTX*, TransparentStringHash, std::equal_to<>> wildcard_;
  bool refuse_unknown_names_ = true;
  uint64_t unknown_name_refusals_ = 0;
};

}  // namespace mf::ingress
