#include "ingress/health_probe.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "common/codec/http_request_head.h"
#include "common/codec/proxy_protocol.h"

namespace mf::ingress {
namespace {

std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// ---- format_health_request ----

TEST(FormatHealthRequest, WritesLocalHeaderThenExactRequest) {
  std::array<uint8_t, 512> out{};
  const size_t n = format_health_request(out, "10.0.0.7:8446", "/healthz");
  const std::string_view expected_http =
      "GET /healthz HTTP/1.1\r\n"
      "Host: 10.0.0.7:8446\r\n"
      "User-Agent: mf-ingress\r\n"
      "Connection: close\r\n"
      "\r\n";
  ASSERT_EQ(n, proxy::fixed_header_bytes + expected_http.size());

  std::array<uint8_t, proxy::fixed_header_bytes> local{};
  ASSERT_EQ(proxy::encode_local(local), proxy::fixed_header_bytes);
  EXPECT_TRUE(std::equal(local.begin(), local.end(), out.begin()));
  const auto header = proxy::parse(std::span<const uint8_t>(out.data(), n));
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->command, proxy::Command::local);
  EXPECT_EQ(header->length, proxy::fixed_header_bytes);

  const std::string_view http(reinterpret_cast<const char*>(out.data()) + 16, n - 16);
  EXPECT_EQ(http, expected_http);
  // The edge's own parser accepts it.
  const auto head = http::parse_request_head(http);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->method, "GET");
  EXPECT_EQ(head->path, "/healthz");
  EXPECT_EQ(head->header("Host"), "10.0.0.7:8446");
}

TEST(FormatHealthRequest, SizeIsFixedPartPlusFields) {
  std::array<uint8_t, 512> out{};
  const std::string_view host = "[2001:db8::1]:8446", path = "/healthz?deep=1";
  EXPECT_EQ(format_health_request(out, host, path),
            health_request_fixed_bytes + host.size() + path.size());
}

TEST(FormatHealthRequest, ExactRoomIsEnoughOneLessIsNot) {
  const std::string_view host = "edge:1", path = "/h";
  const size_t need = health_request_fixed_bytes + host.size() + path.size();
  std::vector<uint8_t> out(need);
  EXPECT_EQ(format_health_request(out, host, path), need);
  EXPECT_EQ(format_health_request(std::span<uint8_t>(out.data(), need - 1), host, path), 0u);
  EXPECT_EQ(format_health_request(std::span<uint8_t>(out.data(), 15), host, path), 0u);
  EXPECT_EQ(format_health_request({}, host, path), 0u);
}

TEST(FormatHealthRequest, RefusesFramingBreakingFields) {
  std::array<uint8_t, 512> out{};
  using namespace std::string_view_literals;
  for (std::string_view bad : {"/a b"sv, "/a\r\nX: y"sv, "/a\n"sv, "/a\t"sv, "/a\0b"sv, "/\x7f"sv, "/\xc3\xa9"sv}) {
    EXPECT_EQ(format_health_request(out, "edge:1", bad), 0u) << bad;
    std::string host = "edge";
    host += bad.substr(1);
    EXPECT_EQ(format_health_request(out, host, "/healthz"), 0u) << host;
  }
}

TEST(FormatHealthRequest, RefusesEmptyHostNonOriginPathAndFragment) {
  std::array<uint8_t, 512> out{};
  EXPECT_EQ(format_health_request(out, "", "/healthz"), 0u);
  EXPECT_EQ(format_health_request(out, "edge:1", ""), 0u);
  EXPECT_EQ(format_health_request(out, "edge:1", "healthz"), 0u);
  EXPECT_EQ(format_health_request(out, "edge:1", "http://edge/healthz"), 0u);
  EXPECT_EQ(format_health_request(out, "edge:1", "/healthz#top"), 0u);
  EXPECT_NE(format_health_request(out, "edge:1", "/healthz?a=1&b=%20"), 0u);
}

// ---- HealthResponseReader ----

struct Outcome {
  HealthVerdict verdict;
  uint16_t status;
};

Outcome read_whole(std::string_view s) {
  HealthResponseReader r;
  const HealthVerdict v = r.feed(bytes_of(s));
  EXPECT_EQ(v, r.verdict());
  return {v, r.status()};
}

Outcome read_bytewise(std::string_view s) {
  HealthResponseReader r;
  for (size_t i = 0; i < s.size(); ++i) r.feed(bytes_of(s.substr(i, 1)));
  return {r.verdict(), r.status()};
}

TEST(HealthResponseReader, TwoHundredIsHealthy) {
  const auto o = read_whole("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(o.verdict, HealthVerdict::healthy);
  EXPECT_EQ(o.status, 200);
}

TEST(HealthResponseReader, Every2xxIsHealthyAndTheStatusIsKept) {
  for (std::string_view line : {"HTTP/1.1 204 No Content\r\n", "HTTP/1.0 299 x\r\n", "HTTP/1.1 200\r\n",
                                "HTTP/1.1 200 \r\n", "HTTP/1.1 201 Created\tnow\r\n"}) {
    const auto o = read_whole(line);
    EXPECT_EQ(o.verdict, HealthVerdict::healthy) << line;
    EXPECT_EQ(o.status, std::stoi(std::string(line.substr(9, 3)))) << line;
  }
}

TEST(HealthResponseReader, OtherValidStatusesAreUnhealthyWithTheirCode) {
  for (uint16_t code : {100, 101, 199, 300, 301, 404, 429, 500, 503, 599}) {
    const std::string line = "HTTP/1.1 " + std::to_string(code) + " Whatever\r\n";
    const auto o = read_whole(line);
    EXPECT_EQ(o.verdict, HealthVerdict::unhealthy) << line;
    EXPECT_EQ(o.status, code) << line;
  }
}

TEST(HealthResponseReader, NonHttpOneStatusLinesAreMalformed) {
  for (std::string_view line :
       {"HTTP/2.0 200 OK\r\n", "HTTP/1.2 200 OK\r\n", "HTTP/1.1 2000 OK\r\n", "HTTP/1.1 20 OK\r\n",
        "HTTP/1.1 600 Nope\r\n", "HTTP/1.1 099 Nope\r\n", "HTTP/1.1  200 OK\r\n", "HTTP/1.1 2x0 OK\r\n",
        "http/1.1 200 OK\r\n", "HTTP/1.1 200OK\r\n", "HTTP/1.1\r\n", "SSH-2.0-OpenSSH_9.2\r\n",
        "\x15\x03\x03\x00\x02\x02\x28", "HTTP/1.1 200 O\x01K\r\n", "HTTP/1.1 200 OK\n",
        "HTTP/1.1 200 OK\rX\n", "\r\n"}) {
    EXPECT_EQ(read_whole(line).verdict, HealthVerdict::malformed) << line;
    EXPECT_EQ(read_whole(line).status, 0) << line;
  }
}

TEST(HealthResponseReader, IncompleteUntilTheLineEnds) {
  const std::string_view full = "HTTP/1.1 200 OK\r\n";
  for (size_t n = 0; n < full.size(); ++n) {
    EXPECT_EQ(read_whole(full.substr(0, n)).verdict, HealthVerdict::incomplete) << n;
    EXPECT_EQ(read_whole(full.substr(0, n)).status, 0) << n;
  }
  EXPECT_EQ(read_whole(full).verdict, HealthVerdict::healthy);
}

TEST(HealthResponseReader, ByteAtATimeGivesTheSameVerdict) {
  for (std::string_view s : {"HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.0 503 Service Unavailable\r\n",
                             "HTTP/1.1 200 OK\rX", "HTTP/3", "HTTP/1.1 200 OK\r\n"}) {
    const auto whole = read_whole(s), bytewise = read_bytewise(s);
    EXPECT_EQ(whole.verdict, bytewise.verdict) << s;
    EXPECT_EQ(whole.status, bytewise.status) << s;
  }
}

TEST(HealthResponseReader, EverySplitGivesTheSameVerdict) {
  const std::string_view s = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n";
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    HealthResponseReader r;
    r.feed(bytes_of(s.substr(0, cut)));
    r.feed(bytes_of(s.substr(cut)));
    EXPECT_EQ(r.verdict(), HealthVerdict::unhealthy) << cut;
    EXPECT_EQ(r.status(), 503) << cut;
  }
}

TEST(HealthResponseReader, FailsAtTheFirstImpossibleByte) {
  HealthResponseReader r;
  EXPECT_EQ(r.feed(bytes_of("HTTP/1.1 20")), HealthVerdict::incomplete);
  HealthResponseReader tls_alert;
  EXPECT_EQ(tls_alert.feed(bytes_of("\x15")), HealthVerdict::malformed);
  HealthResponseReader bare_lf;
  EXPECT_EQ(bare_lf.feed(bytes_of("HTTP/1.1 200 OK\n")), HealthVerdict::malformed);
  HealthResponseReader lone_cr;
  EXPECT_EQ(lone_cr.feed(bytes_of("HTTP/1.1 200 OK\r ")), HealthVerdict::malformed);
  HealthResponseReader http2;
  EXPECT_EQ(http2.feed(bytes_of("HTTP/2")), HealthVerdict::malformed);
}

TEST(HealthResponseReader, VerdictIsFinal) {
  HealthResponseReader r;
  EXPECT_EQ(r.feed(bytes_of("HTTP/1.1 200 OK\r\n")), HealthVerdict::healthy);
  EXPECT_EQ(r.feed(bytes_of("HTTP/1.1 500 No\r\n")), HealthVerdict::healthy);
  EXPECT_EQ(r.feed(bytes_of("\x00garbage")), HealthVerdict::healthy);
  EXPECT_EQ(r.status(), 200);

  HealthResponseReader bad;
  EXPECT_EQ(bad.feed(bytes_of("X")), HealthVerdict::malformed);
  EXPECT_EQ(bad.feed(bytes_of("HTTP/1.1 200 OK\r\n")), HealthVerdict::malformed);
  EXPECT_EQ(bad.status(), 0);
}

TEST(HealthResponseReader, StatusLineOfExactlyTheBoundIsAccepted) {
  std::string line = "HTTP/1.1 200 ";
  line.append(max_status_line_bytes - line.size(), 'r');
  ASSERT_EQ(line.size(), max_status_line_bytes);
  EXPECT_EQ(read_whole(line + "\r\n").verdict, HealthVerdict::healthy);
  EXPECT_EQ(read_bytewise(line + "\r\n").verdict, HealthVerdict::healthy);
  // The CR may arrive on its own once the line is full.
  EXPECT_EQ(read_whole(line + "\r").verdict, HealthVerdict::incomplete);
}

TEST(HealthResponseReader, LongerStatusLineIsMalformedWithoutWaitingForCrlf) {
  std::string line = "HTTP/1.1 200 ";
  line.append(max_status_line_bytes + 1 - line.size(), 'r');
  EXPECT_EQ(read_whole(line).verdict, HealthVerdict::malformed);
  EXPECT_EQ(read_whole(line + "\r\n").verdict, HealthVerdict::malformed);
  EXPECT_EQ(read_bytewise(line + "\r\n").verdict, HealthVerdict::malformed);
  // One byte fewer still waits.
  EXPECT_EQ(read_whole(line.substr(0, max_status_line_bytes)).verdict, HealthVerdict::incomplete);
}

TEST(HealthResponseReader, StopsReadingAtTheVerdict) {
  // Bytes after the status line, even a second line, do not matter: the
  // reader never looks past the first CRLF.
  EXPECT_EQ(read_whole("HTTP/1.1 200 OK\r\n\x01\x02\x03 not a header").verdict, HealthVerdict::healthy);
  EXPECT_EQ(read_whole("HTTP/1.1 404 Not Found\r\nHTTP/1.1 200 OK\r\n").verdict, HealthVerdict::unhealthy);
}

TEST(HealthResponseReader, EmptyFeedChangesNothing) {
  HealthResponseReader r;
  EXPECT_EQ(r.feed({}), HealthVerdict::incomplete);
  EXPECT_EQ(r.feed(bytes_of("HTTP/1.1 200 OK\r\n")), HealthVerdict::healthy);
  EXPECT_EQ(r.feed({}), HealthVerdict::healthy);
}

}  // namespace
}  // namespace mf::ingress
