#include "common/http/admin_guard.h"

#include <gtest/gtest.h>

#include <string>

namespace mf {
namespace {

// Parses a POST (or `method`) with the given extra header lines.
struct Request {
  std::string text;
  http::RequestHead head;
  explicit Request(std::string_view headers, std::string_view method = "POST") {
    text = std::string(method) + " /api/backends/drain?address=x HTTP/1.1\r\n" + std::string(headers) + "\r\n";
    auto parsed = http::parse_request_head(text);
    EXPECT_TRUE(parsed.has_value()) << text;
    if (parsed) head = *parsed;
  }
};

TEST(AdminGuard, HostsThatNameTheListenerPass) {
  AdminGuard guard("secret", {"admin.internal"});
  for (std::string_view host : {"127.0.0.1:9446", "127.0.0.1", "10.1.2.3:80", "[::1]:9446", "[::1]", "localhost:9446",
                                "LOCALHOST", "admin.internal:9446", "Admin.Internal"})
    EXPECT_TRUE(guard.host_allowed(host)) << host;
}

TEST(AdminGuard, RebindingNamesAreRefused) {
  AdminGuard guard("secret", {"admin.internal"});
  for (std::string_view host : {"evil.example:9446", "evil.example", "127.0.0.1.evil.example", "localhost.evil",
                                "admin.internal.evil", "[::1", "[nothex]:1", "", ":9446", "[::1]x"})
    EXPECT_FALSE(guard.host_allowed(host)) << host;
}

TEST(AdminGuard, OnlyTheListenersOwnOriginPasses) {
  AdminGuard guard("secret", {"admin.internal"});
  Request own("Host: 127.0.0.1:9446\r\nOrigin: http://127.0.0.1:9446\r\nAuthorization: Bearer secret\r\n");
  EXPECT_FALSE(guard.check_state_change(own.head));
  Request named("Host: admin.internal:9446\r\nOrigin: http://Admin.Internal:9446\r\n", "GET");
  EXPECT_FALSE(guard.check_request(named.head));
  // Another port, scheme or name of the same machine is another page.
  for (std::string_view origin : {"http://127.0.0.1:9445", "https://127.0.0.1:9446", "http://127.0.0.1",
                                  "http://localhost:9446", "http://127.0.0.1:9446/", "http://127.0.0.1:94466"}) {
    Request other("Host: 127.0.0.1:9446\r\nOrigin: " + std::string(origin) + "\r\nAuthorization: Bearer secret\r\n");
    auto refused = guard.check_state_change(other.head);
    ASSERT_TRUE(refused) << origin;
    EXPECT_EQ(refused->status, 403) << origin;
  }
  // The own origin still needs the token for a state change.
  Request no_token("Host: 127.0.0.1:9446\r\nOrigin: http://127.0.0.1:9446\r\n");
  ASSERT_TRUE(guard.check_state_change(no_token.head));
  EXPECT_EQ(guard.check_state_change(no_token.head)->status, 401);
}

TEST(AdminGuard, OriginIsRefusedWhateverElse) {
  AdminGuard guard("secret", {});
  Request r("Host: 127.0.0.1:9446\r\nOrigin: https://evil.example\r\nAuthorization: Bearer secret\r\n");
  auto refused = guard.check_state_change(r.head);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
  Request get("Host: 127.0.0.1:9446\r\nOrigin: null\r\n", "GET");
  ASSERT_TRUE(guard.check_request(get.head));
  EXPECT_EQ(guard.check_request(get.head)->status, 403);
}

TEST(AdminGuard, WrongOrMissingHostIs421) {
  AdminGuard guard("secret", {});
  Request wrong("Host: rebound.example:9446\r\nAuthorization: Bearer secret\r\n");
  ASSERT_TRUE(guard.check_state_change(wrong.head));
  EXPECT_EQ(guard.check_state_change(wrong.head)->status, 421);
  Request missing("Authorization: Bearer secret\r\n", "GET");
  ASSERT_TRUE(guard.check_request(missing.head));
  EXPECT_EQ(guard.check_request(missing.head)->status, 421);
}

TEST(AdminGuard, TokenIsRequiredAndCompared) {
  AdminGuard guard("secret", {});
  Request none("Host: 127.0.0.1:1\r\n");
  ASSERT_TRUE(guard.check_state_change(none.head));
  EXPECT_EQ(guard.check_state_change(none.head)->status, 401);
  EXPECT_FALSE(guard.check_request(none.head)) << "a GET needs no token";
  for (std::string_view bad : {"Bearer secre", "Bearer secrets", "Bearer ", "Basic secret", "secret", "Bearer SECRET"}) {
    Request r("Host: 127.0.0.1:1\r\nAuthorization: " + std::string(bad) + "\r\n");
    ASSERT_TRUE(guard.check_state_change(r.head)) << bad;
    EXPECT_EQ(guard.check_state_change(r.head)->status, 401) << bad;
  }
  Request good("Host: 127.0.0.1:1\r\nAuthorization: Bearer secret\r\n");
  EXPECT_FALSE(guard.check_state_change(good.head));
  Request scheme_case("Host: 127.0.0.1:1\r\nAuthorization: bearer secret\r\n");
  EXPECT_FALSE(guard.check_state_change(scheme_case.head)) << "the scheme is case-insensitive (RFC 9110 11.1)";
}

TEST(AdminGuard, WithoutATokenStateChangesFailClosed) {
  AdminGuard guard("", {});
  Request r("Host: 127.0.0.1:1\r\nAuthorization: Bearer \r\n");
  ASSERT_TRUE(guard.check_state_change(r.head));
  EXPECT_EQ(guard.check_state_change(r.head)->status, 403);
  Request empty("Host: 127.0.0.1:1\r\n");
  EXPECT_EQ(guard.check_state_change(empty.head)->status, 403);
}

}  // namespace
}  // namespace mf
