#pragma once
// The `Origin` check at the upgrade (docs/protocol.md section 8: an Origin outside the
// configured allow-list gets 403). Built once on the control plane from the
// operator's patterns; allows() is then read-only, allocation-free and safe
// to share between shards.
//
// Patterns:
//   "https://player.example.com"   exactly this origin
//   "https://player.example.com:8443"
//   "https://*.example.com"        any host with one or more labels in front
//                                  of example.com (not example.com itself)
//   "*"                            every origin
// An empty list allows every origin as well (no Origin policy configured).
//
// Comparison (RFC 6454 origins as browsers serialise them): scheme and host
// are ASCII case-insensitive; ports compare as numbers after the scheme's
// default port is filled in (http and ws 80, https and wss 443), so
// "https://a.com" equals "https://a.com:443". Schemes without a default
// port match only an equal explicit port or no port on both sides.
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mf::edge {

class OriginAllowList {
 public:
  // Fails, naming the pattern and what is wrong with it, on anything but
  // the forms above: a pattern needs a scheme, "://" and a host, and has no
  // path, query, fragment or user info; "*" may only be a whole pattern or
  // the whole leftmost label, followed by at least two labels ("*.com" is
  // refused as too broad). IPv6 literals ("http://[::1]:8080") are allowed.
  // With `require_origin`, requests without an Origin header are refused.
  static std::expected<OriginAllowList, std::string> create(std::span<const std::string> patterns,
                                                            bool require_origin);

  // `origin` is the value of the request's Origin header, absent when the
  // request has none (non-browser clients). An absent Origin passes unless
  // require_origin; with "*" (or an empty list) any present value passes,
  // even "null" or one that is not an origin at all; otherwise the value
  // must be a well-formed origin matching a pattern ("null", the opaque
  // origin of sandboxed documents, never matches one).
  bool allows(std::optional<std::string_view> origin) const;

  bool allows_all() const { return allow_all_; }

 private:
  // One pattern in canonical form: scheme and host lower-cased; for a
  // wildcard, host is the suffix after "*" (it starts with '.'); port is the
  // explicit or default port, or -1 for none.
  struct Pattern {
    std::string scheme;
    std::string host;
    int32_t port = -1;
    bool wildcard = false;
  };

  OriginAllowList() = default;

  std::vector<Pattern> patterns_;
  bool allow_all_ = false;
  bool require_origin_ = false;
};

}  // namespace mf::edge
