#pragma once
// The checks every request to an admin listener passes before it is served
// (docs/security.md, "The admin surface"). The admin API is plain HTTP on a
// private address, and an operator's browser can reach that address from
// any page it opens:
//   - a request carrying an Origin header comes from a web page (browsers
//     send it on every cross-origin request and on every POST), never from
//     curl, Prometheus or a script: 403;
//   - a Host that is not an IP literal, `localhost` or a configured name is
//     a DNS-rebinding page that made the listener's address its own: 421;
//   - a request that changes state needs `Authorization: Bearer TOKEN`, the
//     token read at start from a file; without a token configured, state
//     changes are refused altogether (fail closed): 401 / 403.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/codec/http_request_head.h"

namespace mf {

struct AdminRefusal {
  uint16_t status = 403;
  std::string_view body;           // static storage
  std::string_view extra_headers;  // static storage, each line ending in \r\n
};

class AdminGuard {
 public:
  // `token`: the bearer token (empty: no state change is allowed);
  // `allowed_hosts`: names accepted in Host besides IP literals and
  // localhost (lowercase, without port).
  AdminGuard(std::string_view token, std::vector<std::string> allowed_hosts);

  // Every request: the Origin and Host checks.
  std::optional<AdminRefusal> check_request(const http::RequestHead& head) const;
  // A request that changes state: check_request, then the token.
  std::optional<AdminRefusal> check_state_change(const http::RequestHead& head) const;

  // Whether `host` (a Host header value) names this listener: an IPv4 or
  // bracketed IPv6 literal, localhost, or an allowed name, with or without
  // a port.
  bool host_allowed(std::string_view host) const;

 private:
  bool has_token_ = false;
  std::array<uint8_t, 32> token_digest_{};  // SHA-256: compared in constant time, length included
  std::vector<std::string> allowed_hosts_;
};

}  // namespace mf
