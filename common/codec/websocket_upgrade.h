#pragma once

// The routing and RFC 6455 handshake decision for one parsed request head
// (docs/protocol.md sections 1 and 8): the checks that need no configuration beyond the
// paths. Origin, JWT and connection caps need configuration and are checked
// by the caller after a `websocket` decision, in that order.

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/codec/http_request_head.h"

namespace mf::http {

struct UpgradeRoutes {
  std::string_view websocket_path = "/ws";
  std::string_view health_path = "/healthz";
  // Selected when the client offers it (case-sensitive, as browsers compare).
  std::string_view subprotocol = "meshedflow.v1";
  // A second WebSocket path served the same way (the app tells the two apart
  // by RequestHead::path in admit); empty: none.
  std::string_view second_websocket_path;
};

enum class RequestKind : uint8_t { websocket, health, rejected };

// Which header lines a rejection must carry (see upgrade_rejection_headers()
// in common/codec/http_response.h): 405 must name the allowed methods, 426 must
// name the protocol or version to upgrade to.
enum class RejectionHeaders : uint8_t {
  none,
  allow_get,           // 405 on the WebSocket path
  allow_get_head,      // 405 on the health path
  upgrade_websocket,   // 426: no Upgrade: websocket
  websocket_version,   // 426: Sec-WebSocket-Version missing or not 13
};

struct UpgradeDecision {
  RequestKind kind = RequestKind::rejected;
  // 101 for websocket, 200 for health (the caller may turn it into 503 while
  // draining), else 400, 404, 405, 426 (or 431 from rejection_for()).
  uint16_t status = 400;
  // The client offered UpgradeRoutes::subprotocol: echo it in the 101.
  bool select_subprotocol = false;
  // Sec-WebSocket-Accept (base64, no terminator); set for websocket only.
  std::array<char, 28> accept{};
  // Short human text for the error body and the log; static storage.
  std::string_view reason;
  RejectionHeaders rejection_headers = RejectionHeaders::none;
};

// Decides what a parsed request is. Checks, in order: path (404); method
// (405); HTTP/1.1 (400); exactly one non-empty Host (400); Upgrade has the
// websocket token (426); Connection has the upgrade token (400);
// Sec-WebSocket-Version is exactly one "13" (426); exactly one
// Sec-WebSocket-Key that is base64 of 16 bytes (400); no request body, i.e.
// no Transfer-Encoding and Content-Length absent or 0 (400: bytes after the
// head are WebSocket frames, so a body would be read two ways); subprotocols
// offered but not ours (400). Extensions are never negotiated, so
// Sec-WebSocket-Extensions is ignored (permessage-deflate declined silently).
UpgradeDecision decide_upgrade(const RequestHead& head, const UpgradeRoutes& routes);

// The decision for a head that did not parse: 431 for too many header
// fields, 400 otherwise.
UpgradeDecision rejection_for(RequestError error);

// Whether `key` is a valid Sec-WebSocket-Key: 24 characters of standard
// base64 that decode to exactly 16 bytes.
bool is_valid_websocket_key(std::string_view key);

// base64(SHA-1(client_key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")),
// RFC 6455 section 4.2.2. Any key length; no allocation.
std::array<char, 28> websocket_accept_key(std::string_view client_key);

// Client side: the Sec-WebSocket-Key for a 16-byte random nonce (the caller
// supplies the randomness, keeping this pure).
std::array<char, 24> websocket_key_from_nonce(std::span<const uint8_t, 16> nonce);

}  // namespace mf::http
