#include "common/codec/http_response.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace mf::http {
namespace {

constexpr std::string_view rfc_key = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view rfc_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

std::array<char, 28> accept_of(std::string_view s) {
  std::array<char, 28> a;
  std::copy(s.begin(), s.end(), a.begin());
  return a;
}

// Formats through `f` into a generous buffer, and checks that every smaller
// buffer is refused whole (returns 0) rather than truncated.
template <typename Format>
std::string formatted(Format f) {
  std::array<char, 1024> buf;
  const size_t n = f(std::span<char>(buf));
  for (size_t smaller = 0; smaller < n; ++smaller) {
    EXPECT_EQ(f(std::span<char>(buf.data(), smaller)), 0u) << smaller;
  }
  EXPECT_EQ(f(std::span<char>(buf.data(), n)), n);
  return std::string(buf.data(), n);
}

TEST(StatusText, AllEdgeStatuses) {
  EXPECT_EQ(status_text(101), "Switching Protocols");
  EXPECT_EQ(status_text(200), "OK");
  EXPECT_EQ(status_text(400), "Bad Request");
  EXPECT_EQ(status_text(401), "Unauthorized");
  EXPECT_EQ(status_text(403), "Forbidden");
  EXPECT_EQ(status_text(404), "Not Found");
  EXPECT_EQ(status_text(405), "Method Not Allowed");
  EXPECT_EQ(status_text(426), "Upgrade Required");
  EXPECT_EQ(status_text(429), "Too Many Requests");
  EXPECT_EQ(status_text(431), "Request Header Fields Too Large");
  EXPECT_EQ(status_text(500), "Internal Server Error");
  EXPECT_EQ(status_text(503), "Service Unavailable");
  EXPECT_EQ(status_text(418), "");
  EXPECT_EQ(status_text(0), "");
}

TEST(FormatSwitchingProtocols, WithSubprotocol) {
  const auto accept = accept_of(rfc_accept);
  EXPECT_EQ(formatted([&](std::span<char> out) {
              return format_switching_protocols(out, accept, "meshedflow.v1");
            }),
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Sec-WebSocket-Protocol: meshedflow.v1\r\n"
            "\r\n");
}

TEST(FormatSwitchingProtocols, WithoutSubprotocol) {
  const auto accept = accept_of(rfc_accept);
  EXPECT_EQ(formatted([&](std::span<char> out) { return format_switching_protocols(out, accept, ""); }),
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "\r\n");
}

TEST(FormatSwitchingProtocols, RefusesNonTokenSubprotocol) {
  std::array<char, 512> buf;
  const auto accept = accept_of(rfc_accept);
  EXPECT_EQ(format_switching_protocols(buf, accept, "a\r\nSet-Cookie: x"), 0u);
  EXPECT_EQ(format_switching_protocols(buf, accept, "a b"), 0u);
  EXPECT_EQ(format_switching_protocols(buf, accept, "a,b"), 0u);
}

TEST(FormatResponse, HealthOk) {
  EXPECT_EQ(formatted([](std::span<char> out) { return format_response(out, 200, "ok"); }),
            "HTTP/1.1 200 OK\r\n"
            "Connection: close\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 2\r\n"
            "\r\n"
            "ok");
}

TEST(FormatResponse, HeadOnlyKeepsContentLength) {
  EXPECT_EQ(formatted([](std::span<char> out) { return format_response(out, 200, "ok", {}, true); }),
            "HTTP/1.1 200 OK\r\n"
            "Connection: close\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 2\r\n"
            "\r\n");
}

TEST(FormatResponse, ExtraHeaderLines) {
  EXPECT_EQ(formatted([](std::span<char> out) {
              return format_response(out, 503, "draining\n", "Retry-After: 5\r\n");
            }),
            "HTTP/1.1 503 Service Unavailable\r\n"
            "Connection: close\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 9\r\n"
            "Retry-After: 5\r\n"
            "\r\n"
            "draining\n");
}

TEST(FormatResponse, EmptyBodyAndLargeBody) {
  EXPECT_EQ(formatted([](std::span<char> out) { return format_response(out, 404, ""); }),
            "HTTP/1.1 404 Not Found\r\n"
            "Connection: close\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 0\r\n"
            "\r\n");
  const std::string body(700, 'b');
  const std::string out = formatted([&](std::span<char> o) { return format_response(o, 400, body); });
  EXPECT_NE(out.find("Content-Length: 700\r\n"), std::string::npos);
  EXPECT_TRUE(out.ends_with("\r\n\r\n" + body));
}

TEST(FormatResponse, UnknownStatusHasEmptyReasonAndBadStatusIsRefused) {
  EXPECT_TRUE(formatted([](std::span<char> out) { return format_response(out, 418, ""); })
                  .starts_with("HTTP/1.1 418 \r\n"));
  std::array<char, 512> buf;
  EXPECT_EQ(format_response(buf, 99, ""), 0u);
  EXPECT_EQ(format_response(buf, 600, ""), 0u);
}

TEST(UpgradeRejectionHeaders, PerRejection) {
  UpgradeDecision d;
  d.rejection_headers = RejectionHeaders::none;
  EXPECT_EQ(upgrade_rejection_headers(d), "");
  d.rejection_headers = RejectionHeaders::allow_get;
  EXPECT_EQ(upgrade_rejection_headers(d), "Allow: GET\r\n");
  d.rejection_headers = RejectionHeaders::allow_get_head;
  EXPECT_EQ(upgrade_rejection_headers(d), "Allow: GET, HEAD\r\n");
  d.rejection_headers = RejectionHeaders::upgrade_websocket;
  EXPECT_EQ(upgrade_rejection_headers(d), "Upgrade: websocket\r\n");
  d.rejection_headers = RejectionHeaders::websocket_version;
  EXPECT_EQ(upgrade_rejection_headers(d), "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
}

TEST(UpgradeRejectionHeaders, VersionMismatchResponse) {
  auto head = parse_request_head(
      "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
  ASSERT_TRUE(head.has_value());
  const UpgradeDecision d = decide_upgrade(*head, {});
  ASSERT_EQ(d.status, 426);
  EXPECT_EQ(formatted([&](std::span<char> out) {
              return format_response(out, d.status, d.reason, upgrade_rejection_headers(d));
            }),
            "HTTP/1.1 426 Upgrade Required\r\n"
            "Connection: close\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 33\r\n"
            "Upgrade: websocket\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "\r\n"
            "Sec-WebSocket-Version 13 required");
}

// ---- client side ----

TEST(FormatUpgradeRequest, Exact) {
  EXPECT_EQ(formatted([](std::span<char> out) {
              return format_upgrade_request(out, "edge:8445", "/ws?stream=s1", rfc_key, "meshedflow.v1");
            }),
            "GET /ws?stream=s1 HTTP/1.1\r\n"
            "Host: edge:8445\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: meshedflow.v1\r\n"
            "\r\n");
  EXPECT_EQ(formatted([](std::span<char> out) {
              return format_upgrade_request(out, "h", "/ws", rfc_key, "");
            }).find("Sec-WebSocket-Protocol"),
            std::string::npos);
}

TEST(FormatUpgradeRequest, RefusesFieldsThatBreakFraming) {
  std::array<char, 512> buf;
  EXPECT_EQ(format_upgrade_request(buf, "", "/ws", rfc_key, ""), 0u);
  EXPECT_EQ(format_upgrade_request(buf, "h\r\nX: y", "/ws", rfc_key, ""), 0u);
  EXPECT_EQ(format_upgrade_request(buf, "h", "ws", rfc_key, ""), 0u);
  EXPECT_EQ(format_upgrade_request(buf, "h", "/w s", rfc_key, ""), 0u);
  EXPECT_EQ(format_upgrade_request(buf, "h", "/ws", "", ""), 0u);
  EXPECT_EQ(format_upgrade_request(buf, "h", "/ws", rfc_key, "a\r\n"), 0u);
  EXPECT_GT(format_upgrade_request(buf, "h", "/ws", rfc_key, "a, b"), 0u);
}

TEST(FormatUpgradeRequest, ServerAcceptsIt) {
  std::array<char, 512> buf;
  const size_t n = format_upgrade_request(buf, "edge", "/ws", rfc_key, "chat, meshedflow.v1");
  auto head = parse_request_head(std::string_view(buf.data(), n));
  ASSERT_TRUE(head.has_value());
  const UpgradeDecision d = decide_upgrade(*head, {});
  EXPECT_EQ(d.status, 101);
  EXPECT_TRUE(d.select_subprotocol);
}

TEST(ParseResponseHead, SwitchingProtocols) {
  constexpr std::string_view text =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
      "\r\n";
  auto head = parse_response_head(text);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->status, 101);
  EXPECT_EQ(head->version_minor, 1);
  EXPECT_EQ(head->header_count, 3);
  EXPECT_EQ(head->header("sec-websocket-accept"), rfc_accept);
}

TEST(ParseResponseHead, StatusLineVariants) {
  auto head = parse_response_head("HTTP/1.0 404\r\n\r\n");  // reason omitted
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->status, 404);
  EXPECT_EQ(head->version_minor, 0);
  EXPECT_TRUE(parse_response_head("HTTP/1.1 418 \r\n\r\n").has_value());
  EXPECT_TRUE(parse_response_head("HTTP/1.1 200 Fine\tthanks \xC3\xA9\r\n\r\n").has_value());
}

TEST(ParseResponseHead, Rejections) {
  auto error = [](std::string_view text) {
    auto head = parse_response_head(text);
    EXPECT_FALSE(head.has_value()) << text;
    return head ? RequestError{0xFF} : head.error();
  };
  EXPECT_EQ(error("HTTP/2.0 200 OK\r\n\r\n"), RequestError::unsupported_version);
  for (std::string_view text : {"", "HTTP/1.1 200 OK\r\n", "HTTP/1.1 20 OK\r\n\r\n",
                                "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 600 X\r\n\r\n",
                                "HTTP/1.1 099 X\r\n\r\n", "HTTP/1.1  200 OK\r\n\r\n",
                                "HTTP/1.1 200 O\rK\r\n\r\n", "HTTP/1.1 200 OK\n\n",
                                "HTTP/1.1 200 OK\r\nX : y\r\n\r\n", "http/1.1 200 OK\r\n\r\n",
                                "HTTP/1.1 200 OK\r\nX: \x01\r\n\r\n"}) {
    EXPECT_EQ(error(text), RequestError::malformed) << text;
  }
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (size_t i = 0; i <= max_response_headers; ++i) many += "X: y\r\n";
  EXPECT_EQ(error(many + "\r\n"), RequestError::too_many_headers);
}

// The server's own 101, parsed by the client, validates.
std::string server_response(std::string_view subprotocol) {
  std::array<char, 512> buf;
  const size_t n = format_switching_protocols(buf, websocket_accept_key(rfc_key), subprotocol);
  return std::string(buf.data(), n);
}

TEST(IsValidUpgradeResponse, RoundTrip) {
  const std::string with_protocol = server_response("meshedflow.v1");
  const std::string without_protocol = server_response("");
  auto a = parse_response_head(with_protocol);
  auto b = parse_response_head(without_protocol);
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(is_valid_upgrade_response(*a, rfc_key, "meshedflow.v1"));
  EXPECT_FALSE(is_valid_upgrade_response(*a, rfc_key, ""));  // selected unasked
  EXPECT_FALSE(is_valid_upgrade_response(*a, rfc_key, "other"));
  EXPECT_TRUE(is_valid_upgrade_response(*b, rfc_key, ""));
  EXPECT_FALSE(is_valid_upgrade_response(*b, rfc_key, "meshedflow.v1"));  // not selected
  EXPECT_FALSE(is_valid_upgrade_response(*a, "AAAAAAAAAAAAAAAAAAAAAA==", "meshedflow.v1"));
}

TEST(IsValidUpgradeResponse, EachRequirement) {
  auto check = [](std::string_view text) {
    auto head = parse_response_head(text);
    EXPECT_TRUE(head.has_value()) << text;
    return head && is_valid_upgrade_response(*head, rfc_key, "");
  };
  EXPECT_TRUE(check("HTTP/1.1 101 X\r\nupgrade: WebSocket\r\nconnection: upgrade\r\n"
                    "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"));
  EXPECT_FALSE(check("HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"));
  EXPECT_FALSE(check("HTTP/1.1 101 X\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"));
  EXPECT_FALSE(check("HTTP/1.1 101 X\r\nUpgrade: websocket\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"));
  EXPECT_FALSE(check("HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"));
  EXPECT_FALSE(check("HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"));
  EXPECT_FALSE(check("HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                     "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"));
}

}  // namespace
}  // namespace mf::http
