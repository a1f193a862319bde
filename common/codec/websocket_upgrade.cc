#include "common/codec/websocket_upgrade.h"

#include "common/base/sha1.h"

namespace mf::http {
namespace {

constexpr std::string_view base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Standard base64 with padding; `out` holds 4 * ceil(in.size() / 3) chars.
void base64_encode(std::span<const uint8_t> in, char* out) {
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    *out++ = base64_alphabet[(v >> 18) & 63];
    *out++ = base64_alphabet[(v >> 12) & 63];
    *out++ = base64_alphabet[(v >> 6) & 63];
    *out++ = base64_alphabet[v & 63];
  }
  if (const size_t rest = in.size() - i; rest > 0) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (rest == 2 ? uint32_t{in[i + 1]} << 8 : 0);
    *out++ = base64_alphabet[(v >> 18) & 63];
    *out++ = base64_alphabet[(v >> 12) & 63];
    *out++ = rest == 2 ? base64_alphabet[(v >> 6) & 63] : '=';
    *out++ = '=';
  }
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '+' || c == '/';
}

UpgradeDecision reject(uint16_t status, std::string_view reason,
                       RejectionHeaders headers = RejectionHeaders::none) {
  UpgradeDecision d;
  d.kind = RequestKind::rejected;
  d.status = status;
  d.reason = reason;
  d.rejection_headers = headers;
  return d;
}

// A request body on an upgrade would be framing the server and any
// intermediary could read differently.
bool declares_body(const RequestHead& head) {
  if (head.header("Transfer-Encoding")) return true;
  const auto length = head.header("Content-Length");
  return length && (*length != "0" || count_headers(head.fields(), "Content-Length") != 1);
}

// Offered: the Sec-WebSocket-Protocol lists (possibly several fields).
// Returns whether any subprotocol is offered and whether `ours` is among them.
struct SubprotocolOffer {
  bool any = false;
  bool ours = false;
};

SubprotocolOffer subprotocol_offer(const RequestHead& head, std::string_view ours) {
  SubprotocolOffer offer;
  for (const Header& h : head.fields()) {
    if (!equals_ignore_case(h.name, "Sec-WebSocket-Protocol")) continue;
    std::string_view list = h.value;
    for (auto e = next_list_element(list); !e.empty(); e = next_list_element(list)) {
      offer.any = true;
      if (e == ours) offer.ours = true;
    }
  }
  return offer;
}

}  // namespace

UpgradeDecision decide_upgrade(const RequestHead& head, const UpgradeRoutes& routes) {
  if (head.path == routes.health_path) {
    if (head.method != "GET" && head.method != "HEAD") {
      return reject(405, "method not allowed", RejectionHeaders::allow_get_head);
    }
    UpgradeDecision d;
    d.kind = RequestKind::health;
    d.status = 200;
    d.reason = "ok";
    return d;
  }
  if (head.path != routes.websocket_path &&
      (routes.second_websocket_path.empty() || head.path != routes.second_websocket_path))
    return reject(404, "not found");
  if (head.method != "GET") {
    return reject(405, "method not allowed", RejectionHeaders::allow_get);
  }
  if (head.version_minor < 1) return reject(400, "WebSocket requires HTTP/1.1");

  const auto host = head.header("Host");
  if (!host || host->empty() || count_headers(head.fields(), "Host") != 1) {
    return reject(400, "exactly one Host required");
  }
  if (!head.header_has_token("Upgrade", "websocket")) {
    return reject(426, "Upgrade: websocket required", RejectionHeaders::upgrade_websocket);
  }
  if (!head.header_has_token("Connection", "upgrade")) {
    return reject(400, "Connection: Upgrade required");
  }
  if (head.header("Sec-WebSocket-Version") != "13" ||
      count_headers(head.fields(), "Sec-WebSocket-Version") != 1) {
    return reject(426, "Sec-WebSocket-Version 13 required",
                  RejectionHeaders::websocket_version);
  }
  const auto key = head.header("Sec-WebSocket-Key");
  if (!key || !is_valid_websocket_key(*key) ||
      count_headers(head.fields(), "Sec-WebSocket-Key") != 1) {
    return reject(400, "invalid Sec-WebSocket-Key");
  }
  if (declares_body(head)) return reject(400, "request body not allowed");

  const SubprotocolOffer offer = subprotocol_offer(head, routes.subprotocol);
  if (offer.any && !offer.ours) return reject(400, "unsupported subprotocol");

  UpgradeDecision d;
  d.kind = RequestKind::websocket;
  d.status = 101;
  d.select_subprotocol = offer.ours;
  d.accept = websocket_accept_key(*key);
  d.reason = "switching protocols";
  return d;
}

UpgradeDecision rejection_for(RequestError error) {
  switch (error) {
    case RequestError::too_many_headers:
      return reject(431, "too many header fields");
    case RequestError::unsupported_version:
      return reject(400, "unsupported HTTP version");
    case RequestError::malformed:
      break;
  }
  return reject(400, "malformed request");
}

bool is_valid_websocket_key(std::string_view key) {
  // 16 bytes are five full 3-byte groups and one byte: 22 characters and
  // "==". The low bits of the 22nd are not required to be zero; the key is
  // only ever hashed, never decoded.
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (size_t i = 0; i < 22; ++i) {
    if (!is_base64_char(key[i])) return false;
  }
  return true;
}

std::array<char, 28> websocket_accept_key(std::string_view client_key) {
  static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  // SHA-1 here is RFC 6455's handshake check, not a security property
  // (common/base/sha1.h).
  Sha1 hash;
  hash.update(client_key);
  hash.update(guid);
  const Sha1Digest digest = hash.digest();
  std::array<char, 28> accept;
  base64_encode(digest, accept.data());
  return accept;
}

std::array<char, 24> websocket_key_from_nonce(std::span<const uint8_t, 16> nonce) {
  std::array<char, 24> key;
  base64_encode(nonce, key.data());
  return key;
}

}  // namespace mf::http
