#include "common/http/admin_guard.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <strings.h>

namespace mf {
namespace {

std::array<uint8_t, 32> sha256(std::string_view text) {
  std::array<uint8_t, 32> digest{};
  unsigned int size = 0;
  // Cannot fail for SHA-256 on a working OpenSSL; a failure leaves zeros,
  // which no presented token matches unless it fails the same way, and
  // start-up refuses an unusable OpenSSL long before.
  if (EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1) digest.fill(0);
  return digest;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

AdminGuard::AdminGuard(std::string_view token, std::vector<std::string> allowed_hosts)
    : has_token_(!token.empty()), token_digest_(sha256(token)), allowed_hosts_(std::move(allowed_hosts)) {}

bool AdminGuard::host_allowed(std::string_view host) const {
  std::string_view name = host;
  if (!name.empty() && name.front() == '[') {
    // [IPv6]:port or [IPv6]
    size_t close = name.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view rest = name.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    std::string literal(name.substr(1, close - 1));
    in6_addr address;
    return inet_pton(AF_INET6, literal.c_str(), &address) == 1;
  }
  if (size_t colon = name.rfind(':'); colon != std::string_view::npos) name = name.substr(0, colon);
  if (name.empty()) return false;
  std::string text(name);
  in_addr v4;
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return true;
  if (equals_ignoring_case(name, "localhost")) return true;
  for (const std::string& allowed : allowed_hosts_)
    if (equals_ignoring_case(name, allowed)) return true;
  return false;
}

std::optional<AdminRefusal> AdminGuard::check_request(const http::RequestHead& head) const {
  auto host = head.header("Host");
  if (!host || !host_allowed(*host)) return AdminRefusal{421, "Host does not name this listener\n", {}};
  // Only the listener's own pages (the operator page) may send requests
  // from a browser: their Origin is http://<Host>, which no other page can
  // present (a rebinding page's Host is its own name, refused above).
  if (auto origin = head.header("Origin")) {
    static constexpr std::string_view scheme = "http://";
    if (origin->size() != scheme.size() + host->size() || !origin->starts_with(scheme) ||
        !equals_ignoring_case(origin->substr(scheme.size()), *host))
      return AdminRefusal{403, "requests from other web pages are refused\n", {}};
  }
  return std::nullopt;
}

std::optional<AdminRefusal> AdminGuard::check_state_change(const http::RequestHead& head) const {
  if (auto refused = check_request(head)) return refused;
  if (!has_token_) return AdminRefusal{403, "no admin token is configured (admin_token_file)\n", {}};
  auto authorization = head.header("Authorization");
  static constexpr std::string_view scheme = "Bearer ";
  if (!authorization || authorization->size() <= scheme.size() ||
      !equals_ignoring_case(authorization->substr(0, scheme.size()), scheme))
    return AdminRefusal{401, "admin token required\n", "WWW-Authenticate: Bearer\r\n"};
  std::array<uint8_t, 32> presented = sha256(authorization->substr(scheme.size()));
  if (CRYPTO_memcmp(presented.data(), token_digest_.data(), presented.size()) != 0)
    return AdminRefusal{401, "invalid admin token\n", "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n"};
  return std::nullopt;
}

}  // namespace mf
