#include "ingress/sni_router.h"

#include <algorithm>
#include <cctype>

namespace mf::ingress {

std::expected<std::unique_ptr<SniRouter>, std::string> SniRouter::create(const SniRouterOptions& options) {
  if (options.certificates.empty()) return std::unexpected("tls: no certificate configured");
  std::unique_ptr<SniRouter> router(new SniRouter());
  router->refuse_unknown_names_ = options.refuse_unknown_names;
  // Group the pairs by the names they serve, in configuration order.
  std::vector<std::pair<std::vector<std::string>, std::vector<tls::CertificateKeyPair>>> grouped;
  for (const tls::CertificateKeyPair& pair : options.certificates) {
    auto names = tls::certificate_names(pair.certificate_chain_path);
    if (!names) return std::unexpected(names.error());
    std::vector<std::string> sorted = *names;
    std::sort(sorted.begin(), sorted.end());
    auto same = std::find_if(grouped.begin(), grouped.end(), [&](const auto& g) { return g.first == sorted; });
    if (same != grouped.end()) same->second.push_back(pair);
    else grouped.push_back({sorted, {pair}});
  }
  router->groups_.reserve(grouped.size());
  for (auto& [names, pairs] : grouped) {
    tls::ServerContextConfig config;
    config.certificates = pairs;
    config.alpn = options.alpn;
    config.min_version = options.min_version;
    config.ticket_keys = options.ticket_keys;
    auto context = tls::Context::make_server(config);
    if (!context) return std::unexpected(context.error());
    router->groups_.push_back(Group{names, std::move(*context)});
  }
  for (const Group& group : router->groups_) {
    SSL_CTX* ctx = group.context.native();
    SSL_CTX_set_tlsext_servername_callback(ctx, &SniRouter::on_server_name);
    SSL_CTX_set_tlsext_servername_arg(ctx, router.get());
    for (const std::string& name : group.names) {
      // The first group naming a host wins, as the configuration order says.
      if (name.starts_with("*.")) router->wildcard_.try_emplace(name.substr(2), ctx);
      else router->exact_.try_emplace(name, ctx);
    }
  }
  return router;
}

std::vector<std::string> SniRouter::names() const {
  std::vector<std::string> all;
  for (const Group& group : groups_) all.insert(all.end(), group.names.begin(), group.names.end());
  return all;
}

std::vector<tls::ServedCertificate> SniRouter::served() const {
  std::vector<tls::ServedCertificate> all;
  for (const Group& group : groups_) all.insert(all.end(), group.context.served().begin(), group.context.served().end());
  return all;
}

SSL_CTX* SniRouter::find(std::string_view name) const {
  if (auto it = exact_.find(name); it != exact_.end()) return it->second;
  size_t dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0) return nullptr;
  if (auto it = wildcard_.find(name.substr(dot + 1)); it != wildcard_.end()) return it->second;
  return nullptr;
}

int SniRouter::on_server_name(SSL* ssl, int* alert, void* argument) {
  auto* router = static_cast<SniRouter*>(argument);
  const char* sent = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (sent == nullptr) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  // Names are case-insensitive; DNS names fit in 253 bytes (a trailing dot
  // is dropped: "example.com." names the same host).
  char lowered[256];
  size_t length = 0;
  for (; sent[length] != '\0'; ++length) {
    if (length >= sizeof lowered) break;
    lowered[length] = static_cast<char>(std::tolower(static_cast<unsigned char>(sent[length])));
  }
  if (length > 0 && length < sizeof lowered && lowered[length - 1] == '.') --length;
  SSL_CTX* ctx = length < sizeof lowered ? router->find(std::string_view(lowered, length)) : nullptr;
  if (ctx == nullptr) {
    if (!router->refuse_unknown_names_) return SSL_TLSEXT_ERR_OK;
    ++router->unknown_name_refusals_;
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  if (ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace mf::ingress
