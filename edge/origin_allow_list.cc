#include "edge/origin_allow_list.h"

namespace mf::edge {

namespace {

// An origin split into views of the text it came from; port already holds
// the scheme's default when the text gave none (-1 when there is none).
struct OriginParts {
  std::string_view scheme;
  std::string_view host;
  int32_t port = -1;
};

constexpr size_t max_host_bytes = 253;
constexpr size_t max_label_bytes = 63;

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool equals_ignoring_ascii_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'f'); }

// RFC 3986 section 3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
bool is_scheme(std::string_view text) {
  if (text.empty() || !is_alpha(text[0])) return false;
  for (char c : text) {
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

// A DNS-style name as browsers serialise it (IDNs arrive as punycode):
// dot-separated labels of 1..63 bytes of [A-Za-z0-9_-], at most 253 bytes,
// no empty label (so no leading or trailing dot).
bool is_host_name(std::string_view text, size_t* labels = nullptr) {
  if (text.empty() || text.size() > max_host_bytes) return false;
  size_t count = 0;
  size_t label = 0;
  for (char c : text) {
    if (c == '.') {
      if (label == 0) return false;
      ++count;
      label = 0;
    } else if (is_alpha(c) || is_digit(c) || c == '-' || c == '_') {
      if (++label > max_label_bytes) return false;
    } else {
      return false;
    }
  }
  if (label == 0) return false;
  if (labels != nullptr) *labels = count + 1;
  return true;
}

// "[" IPv6 literal "]" (hex digits, ':' and '.' for an embedded IPv4); the
// exact address grammar is left to the browser that produced it.
bool is_ip_literal(std::string_view text) {
  if (text.size() < 4 || text.front() != '[' || text.back() != ']') return false;
  for (char c : text.substr(1, text.size() - 2)) {
    if (!is_hex(c) && c != ':' && c != '.') return false;
  }
  return true;
}

int32_t default_port(std::string_view scheme) {
  if (equals_ignoring_ascii_case(scheme, "https") || equals_ignoring_ascii_case(scheme, "wss")) return 443;
  if (equals_ignoring_ascii_case(scheme, "http") || equals_ignoring_ascii_case(scheme, "ws")) return 80;
  return -1;
}

// Splits "scheme://host[:port]" without checking the host's characters
// (patterns may hold a wildcard there). The reason is static text.
std::expected<OriginParts, std::string_view> split_origin(std::string_view text) {
  size_t separator = text.find("://");
  if (separator == std::string_view::npos) return std::unexpected("missing scheme, e.g. https://player.example.com");
  OriginParts parts;
  parts.scheme = text.substr(0, separator);
  if (!is_scheme(parts.scheme)) return std::unexpected("invalid scheme");
  std::string_view authority = text.substr(separator + 3);
  if (authority.find_first_of("/?#") != std::string_view::npos) {
    return std::unexpected("an origin has no path, query or fragment: scheme://host[:port] only");
  }
  if (authority.find('@') != std::string_view::npos) return std::unexpected("an origin has no user info");
  std::string_view port_text;
  bool has_port = false;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::unexpected("unterminated IPv6 literal");
    parts.host = authority.substr(0, close + 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return std::unexpected("invalid text after the IPv6 literal");
      has_port = true;
      port_text = rest.substr(1);
    }
  } else {
    size_t colon = authority.find(':');
    parts.host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
  }
  if (parts.host.empty()) return std::unexpected("empty host");
  if (has_port) {
    if (port_text.empty() || port_text.size() > 5) return std::unexpected("invalid port");
    int32_t port = 0;
    for (char c : port_text) {
      if (!is_digit(c)) return std::unexpected("invalid port");
      port = port * 10 + (c - '0');
    }
    if (port > 65535) return std::unexpected("port above 65535");
    parts.port = port;
  } else {
    parts.port = default_port(parts.scheme);
  }
  return parts;
}

std::string lowered(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = lower(c);
  return out;
}

}  // namespace

std::expected<OriginAllowList, std::string> OriginAllowList::create(std::span<const std::string> patterns,
                                                                    bool require_origin) {
  OriginAllowList list;
  list.require_origin_ = require_origin;
  list.allow_all_ = patterns.empty();
  for (const std::string& text : patterns) {
    auto fail = [&](std::string_view reason) {
      return std::unexpected("origin pattern \"" + text + "\": " + std::string(reason));
    };
    if (text == "*") {
      list.allow_all_ = true;
      continue;
    }
    if (text.empty()) return fail("empty pattern");
    auto parts = split_origin(text);
    if (!parts) return fail(parts.error());
    Pattern pattern;
    pattern.scheme = lowered(parts->scheme);
    pattern.port = parts->port;
    std::string_view host = parts->host;
    if (host.starts_with("*.")) {
      size_t labels = 0;
      std::string_view base = host.substr(2);
      if (base.find('*') != std::string_view::npos) {
        return fail("'*' is allowed only as the whole leftmost label, as in https://*.example.com");
      }
      if (!is_host_name(base, &labels)) return fail("invalid host after '*.'");
      if (labels < 2) return fail("'*.' needs at least two labels after it (\"*.com\" would allow a whole TLD)");
      pattern.wildcard = true;
      pattern.host = lowered(host.substr(1));
    } else {
      if (host.find('*') != std::string_view::npos) {
        return fail("'*' is allowed only as the whole leftmost label, as in https://*.example.com");
      }
      if (!is_host_name(host) && !is_ip_literal(host)) return fail("invalid host");
      pattern.host = lowered(host);
    }
    list.patterns_.push_back(std::move(pattern));
  }
  return list;
}

bool OriginAllowList::allows(std::optional<std::string_view> origin) const {
  if (!origin) return !require_origin_;
  if (allow_all_) return true;
  auto parts = split_origin(*origin);
  if (!parts) return false;
  bool name = is_host_name(parts->host);
  if (!name && !is_ip_literal(parts->host)) return false;
  for (const Pattern& pattern : patterns_) {
    if (pattern.port != parts->port || !equals_ignoring_ascii_case(parts->scheme, pattern.scheme)) continue;
    if (pattern.wildcard) {
      // The suffix starts with '.', and a valid name has no empty label, so
      // at least one whole label precedes it.
      if (name && parts->host.size() > pattern.host.size() &&
          equals_ignoring_ascii_case(parts->host.substr(parts->host.size() - pattern.host.size()), pattern.host)) {
        return true;
      }
    } else if (equals_ignoring_ascii_case(parts->host, pattern.host)) {
      return true;
    }
  }
  return false;
}

}  // namespace mf::edge
