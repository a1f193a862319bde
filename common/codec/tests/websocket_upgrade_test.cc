#include "common/codec/websocket_upgrade.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mf::http {
namespace {

constexpr std::string_view rfc_key = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view rfc_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

std::string_view view(const std::array<char, 28>& a) { return {a.data(), a.size()}; }

// Builds a head from a request line and field lines, keeping the text alive
// for the views the decision is computed from.
struct Request {
  std::string text;
  RequestHead head;

  Request(std::string_view request_line, const std::vector<std::string>& fields) {
    text = std::string(request_line) + "\r\n";
    for (const auto& f : fields) text += f + "\r\n";
    text += "\r\n";
    auto parsed = parse_request_head(text);
    EXPECT_TRUE(parsed.has_value()) << text;
    if (parsed) head = *parsed;
  }
  Request(const Request&) = delete;  // `head` views `text`
  Request& operator=(const Request&) = delete;

  UpgradeDecision decide(const UpgradeRoutes& routes = {}) const {
    return decide_upgrade(head, routes);
  }
};

std::vector<std::string> valid_fields() {
  return {"Host: edge.example.com", "Upgrade: websocket", "Connection: Upgrade",
          "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + std::string(rfc_key)};
}

std::vector<std::string> without(std::string_view prefix) {
  std::vector<std::string> fields = valid_fields();
  std::erase_if(fields, [&](const std::string& f) { return f.starts_with(prefix); });
  return fields;
}

std::vector<std::string> with(std::vector<std::string> fields, std::string extra) {
  fields.push_back(std::move(extra));
  return fields;
}

std::vector<std::string> replacing(std::string_view prefix, std::string line) {
  return with(without(prefix), std::move(line));
}

void expect_rejected(const UpgradeDecision& d, uint16_t status,
                     RejectionHeaders headers = RejectionHeaders::none) {
  EXPECT_EQ(d.kind, RequestKind::rejected);
  EXPECT_EQ(d.status, status);
  EXPECT_EQ(d.rejection_headers, headers);
  EXPECT_FALSE(d.reason.empty());
  EXPECT_FALSE(d.select_subprotocol);
}

// ---- accept key ----

TEST(WebSocketAcceptKey, Rfc6455Example) {
  EXPECT_EQ(view(websocket_accept_key(rfc_key)), rfc_accept);
}

TEST(WebSocketAcceptKey, OtherKnownValues) {
  // Computed independently: printf '%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11' KEY
  //   | openssl sha1 -binary | base64
  EXPECT_EQ(view(websocket_accept_key("x3JJHMbDL1EzLkh9GBhXDw==")), "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
  EXPECT_EQ(view(websocket_accept_key("")), "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w=");
  std::string long_key(1000, 'k');
  EXPECT_EQ(view(websocket_accept_key(long_key)).size(), 28u);
}

TEST(WebSocketKey, FromNonceRoundTrip) {
  const std::array<uint8_t, 16> nonce = {'t', 'h', 'e', ' ', 's', 'a', 'm', 'p',
                                         'l', 'e', ' ', 'n', 'o', 'n', 'c', 'e'};
  const auto key = websocket_key_from_nonce(nonce);
  EXPECT_EQ(std::string_view(key.data(), key.size()), rfc_key);
  EXPECT_TRUE(is_valid_websocket_key(std::string_view(key.data(), key.size())));

  std::array<uint8_t, 16> all_ones;
  all_ones.fill(0xFF);
  const auto key2 = websocket_key_from_nonce(all_ones);
  EXPECT_EQ(std::string_view(key2.data(), key2.size()), "/////////////////////w==");
}

TEST(WebSocketKey, Validity) {
  EXPECT_TRUE(is_valid_websocket_key(rfc_key));
  EXPECT_TRUE(is_valid_websocket_key("AAAAAAAAAAAAAAAAAAAAAA=="));
  EXPECT_TRUE(is_valid_websocket_key("+/+/+/+/+/+/+/+/+/+/+/=="));
  EXPECT_FALSE(is_valid_websocket_key(""));
  EXPECT_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ="));    // 23 chars
  EXPECT_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ==="));  // 25 chars
  EXPECT_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQAA"));   // 18 bytes
  EXPECT_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZ==="));   // 15 bytes
  EXPECT_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZ-_=="));  // 25, url-safe
  EXPECT_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZ-=="));   // url-safe alphabet
  EXPECT_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25j Q=="));
  EXPECT_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=A"));
}

// ---- decide_upgrade: accepted ----

TEST(DecideUpgrade, ValidUpgradeWithoutSubprotocol) {
  Request r("GET /ws?stream=s1 HTTP/1.1", valid_fields());
  const UpgradeDecision d = r.decide();
  EXPECT_EQ(d.kind, RequestKind::websocket);
  EXPECT_EQ(d.status, 101);
  EXPECT_FALSE(d.select_subprotocol);
  EXPECT_EQ(view(d.accept), rfc_accept);
  EXPECT_EQ(d.rejection_headers, RejectionHeaders::none);
}

TEST(DecideUpgrade, BrowserStyleHeaderCaseAndLists) {
  Request r("GET /ws HTTP/1.1",
            {"host: a", "upgrade: WebSocket", "connection: keep-alive, UPGRADE",
             "sec-websocket-version: 13", "sec-websocket-key: " + std::string(rfc_key),
             "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
             "Origin: https://app.example.com"});
  const UpgradeDecision d = r.decide();
  EXPECT_EQ(d.kind, RequestKind::websocket);
  EXPECT_EQ(d.status, 101);
  EXPECT_EQ(view(d.accept), rfc_accept);
}

TEST(DecideUpgrade, ConnectionTokenInRepeatedHeader) {
  Request r("GET /ws HTTP/1.1",
            with(replacing("Connection", "Connection: keep-alive"), "Connection: Upgrade"));
  EXPECT_EQ(r.decide().status, 101);
}

TEST(DecideUpgrade, UpgradeTokenAmongOthers) {
  Request r("GET /ws HTTP/1.1", replacing("Upgrade", "Upgrade: h2c, websocket"));
  EXPECT_EQ(r.decide().status, 101);
}

TEST(DecideUpgrade, SubprotocolSelection) {
  struct Case {
    std::vector<std::string> offered;
    bool selected;
  };
  const std::vector<Case> cases = {
      {{"Sec-WebSocket-Protocol: meshedflow.v1"}, true},
      {{"Sec-WebSocket-Protocol: chat, meshedflow.v1"}, true},
      {{"Sec-WebSocket-Protocol:  meshedflow.v1 ,chat "}, true},
      {{"Sec-WebSocket-Protocol: chat", "sec-websocket-protocol: meshedflow.v1"}, true},
      {{"Sec-WebSocket-Protocol: "}, false},  // empty list: nothing offered
      {{"Sec-WebSocket-Protocol: ,"}, false},
  };
  for (const Case& c : cases) {
    auto fields = valid_fields();
    fields.insert(fields.end(), c.offered.begin(), c.offered.end());
    Request r("GET /ws HTTP/1.1", fields);
    const UpgradeDecision d = r.decide();
    EXPECT_EQ(d.status, 101) << r.text;
    EXPECT_EQ(d.select_subprotocol, c.selected) << r.text;
  }
}

TEST(DecideUpgrade, SecondWebSocketPath) {
  const UpgradeRoutes routes{
      .websocket_path = "/ws", .health_path = "/healthz", .subprotocol = "x", .second_websocket_path = "/announce"};
  EXPECT_EQ(Request("GET /announce HTTP/1.1", valid_fields()).decide(routes).status, 101);
  EXPECT_EQ(Request("GET /ws HTTP/1.1", valid_fields()).decide(routes).status, 101);
  EXPECT_EQ(Request("GET /other HTTP/1.1", valid_fields()).decide(routes).status, 404);
  // Empty: no second path (an empty request path never matches it).
  const UpgradeRoutes one{.websocket_path = "/ws", .health_path = "/healthz", .subprotocol = "x", .second_websocket_path = {}};
  EXPECT_EQ(Request("GET /announce HTTP/1.1", valid_fields()).decide(one).status, 404);
}

TEST(DecideUpgrade, ConfiguredRoutes) {
  const UpgradeRoutes routes{
      .websocket_path = "/signal", .health_path = "/health", .subprotocol = "x.v2", .second_websocket_path = {}};
  EXPECT_EQ(Request("GET /signal HTTP/1.1", with(valid_fields(), "Sec-WebSocket-Protocol: x.v2"))
                .decide(routes)
                .select_subprotocol,
            true);
  EXPECT_EQ(Request("GET /ws HTTP/1.1", valid_fields()).decide(routes).status, 404);
  EXPECT_EQ(Request("GET /health HTTP/1.1", {}).decide(routes).kind, RequestKind::health);
  EXPECT_EQ(Request("GET /healthz HTTP/1.1", {}).decide(routes).status, 404);
}

// ---- decide_upgrade: health ----

TEST(DecideUpgrade, Health) {
  for (std::string_view line : {"GET /healthz HTTP/1.1", "HEAD /healthz HTTP/1.1",
                                "GET /healthz HTTP/1.0", "GET /healthz?verbose HTTP/1.1"}) {
    const UpgradeDecision d = Request(line, {}).decide();
    EXPECT_EQ(d.kind, RequestKind::health) << line;
    EXPECT_EQ(d.status, 200) << line;
  }
  for (std::string_view line : {"POST /healthz HTTP/1.1", "get /healthz HTTP/1.1",
                                "PUT /healthz HTTP/1.1"}) {
    expect_rejected(Request(line, {}).decide(), 405, RejectionHeaders::allow_get_head);
  }
}

// ---- decide_upgrade: rejected, in spec order ----

TEST(DecideUpgrade, WrongPathIs404) {
  for (std::string_view line : {"GET / HTTP/1.1", "GET /ws/ HTTP/1.1", "GET /WS HTTP/1.1",
                                "GET /wss HTTP/1.1", "GET /healthz/ HTTP/1.1",
                                "POST /other HTTP/1.1"}) {
    expect_rejected(Request(line, valid_fields()).decide(), 404);
  }
}

TEST(DecideUpgrade, NotGetIs405) {
  for (std::string_view line : {"POST /ws HTTP/1.1", "HEAD /ws HTTP/1.1", "get /ws HTTP/1.1",
                                "OPTIONS /ws HTTP/1.1"}) {
    expect_rejected(Request(line, valid_fields()).decide(), 405, RejectionHeaders::allow_get);
  }
  // Method comes before the header checks.
  expect_rejected(Request("POST /ws HTTP/1.1", {}).decide(), 405, RejectionHeaders::allow_get);
}

TEST(DecideUpgrade, Http10Is400) {
  expect_rejected(Request("GET /ws HTTP/1.0", valid_fields()).decide(), 400);
}

TEST(DecideUpgrade, HostRules) {
  expect_rejected(Request("GET /ws HTTP/1.1", without("Host")).decide(), 400);
  expect_rejected(Request("GET /ws HTTP/1.1", replacing("Host", "Host:")).decide(), 400);
  expect_rejected(Request("GET /ws HTTP/1.1", with(valid_fields(), "host: b")).decide(), 400);
}

TEST(DecideUpgrade, MissingUpgradeIs426) {
  expect_rejected(Request("GET /ws HTTP/1.1", without("Upgrade")).decide(), 426,
                  RejectionHeaders::upgrade_websocket);
  expect_rejected(Request("GET /ws HTTP/1.1", replacing("Upgrade", "Upgrade: h2c")).decide(), 426,
                  RejectionHeaders::upgrade_websocket);
  expect_rejected(Request("GET /ws HTTP/1.1", replacing("Upgrade", "Upgrade: websockets")).decide(),
                  426, RejectionHeaders::upgrade_websocket);
  // A plain browser GET of the WebSocket path.
  expect_rejected(Request("GET /ws HTTP/1.1", {"Host: a", "Accept: text/html"}).decide(), 426,
                  RejectionHeaders::upgrade_websocket);
}

TEST(DecideUpgrade, ConnectionWithoutUpgradeIs400) {
  expect_rejected(Request("GET /ws HTTP/1.1", without("Connection")).decide(), 400);
  expect_rejected(
      Request("GET /ws HTTP/1.1", replacing("Connection", "Connection: keep-alive")).decide(), 400);
  expect_rejected(
      Request("GET /ws HTTP/1.1", replacing("Connection", "Connection: upgraded")).decide(), 400);
  // The token must be in Connection, not merely somewhere.
  expect_rejected(
      Request("GET /ws HTTP/1.1", replacing("Connection", "X-Connection: upgrade")).decide(), 400);
}

TEST(DecideUpgrade, VersionRulesAre426) {
  for (const auto& fields :
       {without("Sec-WebSocket-Version"),
        replacing("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8"),
        replacing("Sec-WebSocket-Version", "Sec-WebSocket-Version: 13, 8"),
        replacing("Sec-WebSocket-Version", "Sec-WebSocket-Version: 013"),
        replacing("Sec-WebSocket-Version", "Sec-WebSocket-Version:"),
        with(valid_fields(), "Sec-WebSocket-Version: 13")}) {
    expect_rejected(Request("GET /ws HTTP/1.1", fields).decide(), 426,
                    RejectionHeaders::websocket_version);
  }
}

TEST(DecideUpgrade, KeyRulesAre400) {
  for (const auto& fields :
       {without("Sec-WebSocket-Key"),
        replacing("Sec-WebSocket-Key", "Sec-WebSocket-Key:"),
        replacing("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZQ=="),
        replacing("Sec-WebSocket-Key", "Sec-WebSocket-Key: not base64 at all!!!!!=="),
        with(valid_fields(), "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==")}) {
    expect_rejected(Request("GET /ws HTTP/1.1", fields).decide(), 400);
  }
}

TEST(DecideUpgrade, RequestBodyIs400) {
  expect_rejected(Request("GET /ws HTTP/1.1", with(valid_fields(), "Content-Length: 5")).decide(), 400);
  expect_rejected(
      Request("GET /ws HTTP/1.1", with(valid_fields(), "Transfer-Encoding: chunked")).decide(), 400);
  expect_rejected(Request("GET /ws HTTP/1.1",
                          with(with(valid_fields(), "Content-Length: 0"), "Content-Length: 0"))
                      .decide(),
                  400);
  EXPECT_EQ(Request("GET /ws HTTP/1.1", with(valid_fields(), "Content-Length: 0")).decide().status, 101);
}

TEST(DecideUpgrade, OnlyForeignSubprotocolsAre400) {
  for (std::string_view offer :
       {"Sec-WebSocket-Protocol: chat", "Sec-WebSocket-Protocol: chat, superchat",
        "Sec-WebSocket-Protocol: MeshedFlow.V1",  // subprotocols are case-sensitive
        "Sec-WebSocket-Protocol: meshedflow.v1x", "Sec-WebSocket-Protocol: meshedflow"}) {
    expect_rejected(Request("GET /ws HTTP/1.1", with(valid_fields(), std::string(offer))).decide(), 400);
  }
}

TEST(DecideUpgrade, CheckOrder) {
  // Each request fails two checks; the earlier one in spec order decides.
  expect_rejected(Request("GET /nope HTTP/1.0", {}).decide(), 404);
  expect_rejected(Request("PUT /ws HTTP/1.0", {}).decide(), 405, RejectionHeaders::allow_get);
  expect_rejected(Request("GET /ws HTTP/1.0", without("Upgrade")).decide(), 400);
  // Upgrade (426) before Connection (400) before version (426) before key (400).
  expect_rejected(Request("GET /ws HTTP/1.1", without("Upgrade")).decide(), 426,
                  RejectionHeaders::upgrade_websocket);
  auto no_conn_no_version = without("Connection");
  std::erase_if(no_conn_no_version, [](const std::string& f) { return f.starts_with("Sec-WebSocket-Version"); });
  expect_rejected(Request("GET /ws HTTP/1.1", no_conn_no_version).decide(), 400);
  auto no_version_no_key = without("Sec-WebSocket-Version");
  std::erase_if(no_version_no_key, [](const std::string& f) { return f.starts_with("Sec-WebSocket-Key"); });
  expect_rejected(Request("GET /ws HTTP/1.1", no_version_no_key).decide(), 426,
                  RejectionHeaders::websocket_version);
}

TEST(RejectionFor, ParseErrors) {
  expect_rejected(rejection_for(RequestError::malformed), 400);
  expect_rejected(rejection_for(RequestError::unsupported_version), 400);
  expect_rejected(rejection_for(RequestError::too_many_headers), 431);
}

}  // namespace
}  // namespace mf::http
