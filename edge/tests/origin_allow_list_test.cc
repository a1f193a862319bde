#include "edge/origin_allow_list.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <new>
#include <string>
#include <vector>

// Counts heap allocations so that allows() can be shown to make none.
namespace {
size_t allocations = 0;
}  // namespace

// Out of line: GCC would otherwise see free() inlined against `new` and warn.
[[gnu::noinline]] void* operator new(size_t size) {
  ++allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  std::abort();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace mf::edge {
namespace {

OriginAllowList make(std::vector<std::string> patterns, bool require_origin = false) {
  auto list = OriginAllowList::create(patterns, require_origin);
  EXPECT_TRUE(list) << list.error();
  return std::move(list.value());
}

std::string creation_error(std::string pattern) {
  std::vector<std::string> patterns{std::move(pattern)};
  auto list = OriginAllowList::create(patterns, false);
  EXPECT_FALSE(list) << patterns[0];
  return list ? std::string() : list.error();
}

TEST(OriginAllowList, EmptyListAllowsEverything) {
  auto list = make({});
  EXPECT_TRUE(list.allows_all());
  EXPECT_TRUE(list.allows("https://anything.example"));
  EXPECT_TRUE(list.allows("null"));
  EXPECT_TRUE(list.allows(std::nullopt));
}

TEST(OriginAllowList, StarAllowsEverythingEvenAmongOthers) {
  auto list = make({"https://a.example.com", "*"});
  EXPECT_TRUE(list.allows_all());
  EXPECT_TRUE(list.allows("http://other.test:1234"));
  EXPECT_TRUE(list.allows("not an origin"));
}

TEST(OriginAllowList, MissingOriginAllowedUnlessRequired) {
  EXPECT_TRUE(make({"https://a.example.com"}).allows(std::nullopt));
  EXPECT_FALSE(make({"https://a.example.com"}, true).allows(std::nullopt));
  EXPECT_FALSE(make({"*"}, true).allows(std::nullopt));
  EXPECT_FALSE(make({}, true).allows(std::nullopt));
  EXPECT_TRUE(make({}, true).allows("https://x.example"));
}

TEST(OriginAllowList, ExactOrigin) {
  auto list = make({"https://player.example.com"});
  EXPECT_FALSE(list.allows_all());
  EXPECT_TRUE(list.allows("https://player.example.com"));
  EXPECT_FALSE(list.allows("http://player.example.com"));
  EXPECT_FALSE(list.allows("https://player.example.com.evil.test"));
  EXPECT_FALSE(list.allows("https://evilplayer.example.com"));
  EXPECT_FALSE(list.allows("https://x.player.example.com"));
  EXPECT_FALSE(list.allows("https://player.example.co"));
  EXPECT_FALSE(list.allows("https://player.example.com:8443"));
  EXPECT_FALSE(list.allows("wss://player.example.com"));
}

TEST(OriginAllowList, CaseInsensitiveSchemeAndHost) {
  auto list = make({"HTTPS://Player.Example.COM"});
  EXPECT_TRUE(list.allows("https://player.example.com"));
  EXPECT_TRUE(list.allows("HtTpS://PLAYER.example.com"));
}

TEST(OriginAllowList, DefaultPorts) {
  auto list = make({"https://a.com", "http://b.com:80", "http://c.com:8080", "wss://d.com", "ws://e.com:80"});
  EXPECT_TRUE(list.allows("https://a.com:443"));
  EXPECT_TRUE(list.allows("https://a.com"));
  EXPECT_FALSE(list.allows("https://a.com:80"));
  EXPECT_TRUE(list.allows("http://b.com"));
  EXPECT_TRUE(list.allows("http://b.com:80"));
  EXPECT_FALSE(list.allows("http://b.com:443"));
  EXPECT_TRUE(list.allows("http://c.com:8080"));
  EXPECT_TRUE(list.allows("http://c.com:08080"));
  EXPECT_FALSE(list.allows("http://c.com"));
  EXPECT_FALSE(list.allows("http://c.com:8081"));
  EXPECT_TRUE(list.allows("wss://d.com:443"));
  EXPECT_TRUE(list.allows("ws://e.com"));
}

TEST(OriginAllowList, SchemesWithoutDefaultPort) {
  auto list = make({"app://local", "chrome-extension://abcdef:1"});
  EXPECT_TRUE(list.allows("app://local"));
  EXPECT_FALSE(list.allows("app://local:80"));
  EXPECT_TRUE(list.allows("chrome-extension://abcdef:1"));
  EXPECT_FALSE(list.allows("chrome-extension://abcdef"));
}

TEST(OriginAllowList, WildcardSubdomains) {
  auto list = make({"https://*.example.com"});
  EXPECT_TRUE(list.allows("https://a.example.com"));
  EXPECT_TRUE(list.allows("https://a.b.example.com"));
  EXPECT_TRUE(list.allows("https://A.EXAMPLE.com:443"));
  EXPECT_TRUE(list.allows("https://x_y-z.example.com"));
  EXPECT_FALSE(list.allows("https://example.com"));
  EXPECT_FALSE(list.allows("https://.example.com"));
  EXPECT_FALSE(list.allows("https://a..example.com"));
  EXPECT_FALSE(list.allows("https://evil-example.com"));
  EXPECT_FALSE(list.allows("https://aexample.com"));
  EXPECT_FALSE(list.allows("https://a.example.com.evil.test"));
  EXPECT_FALSE(list.allows("http://a.example.com"));
  EXPECT_FALSE(list.allows("https://a.example.com:8443"));
  EXPECT_FALSE(list.allows("https://a.example.org"));
}

TEST(OriginAllowList, WildcardWithPort) {
  auto list = make({"http://*.dev.example.com:3000"});
  EXPECT_TRUE(list.allows("http://me.dev.example.com:3000"));
  EXPECT_FALSE(list.allows("http://me.dev.example.com"));
  EXPECT_FALSE(list.allows("http://dev.example.com:3000"));
}

TEST(OriginAllowList, SeveralPatterns) {
  auto list = make({"https://a.example.com", "https://*.cdn.example.net", "http://localhost:8080"});
  EXPECT_TRUE(list.allows("https://a.example.com"));
  EXPECT_TRUE(list.allows("https://edge1.cdn.example.net"));
  EXPECT_TRUE(list.allows("http://localhost:8080"));
  EXPECT_FALSE(list.allows("http://localhost"));
  EXPECT_FALSE(list.allows("https://b.example.com"));
}

TEST(OriginAllowList, IpLiterals) {
  auto list = make({"http://[::1]:8080", "http://127.0.0.1:8080", "https://[2001:DB8::1]"});
  EXPECT_TRUE(list.allows("http://[::1]:8080"));
  EXPECT_FALSE(list.allows("http://[::1]"));
  EXPECT_TRUE(list.allows("http://127.0.0.1:8080"));
  EXPECT_TRUE(list.allows("https://[2001:db8::1]:443"));
  EXPECT_FALSE(list.allows("https://[2001:db8::2]"));
  EXPECT_FALSE(list.allows("https://[2001:db8::1"));
  EXPECT_FALSE(list.allows("https://[2001:db8::1]x"));
  EXPECT_FALSE(list.allows("https://[2001:db8::1]x443"));
}

TEST(OriginAllowList, MalformedRequestOriginsRefused) {
  auto list = make({"https://a.example.com"});
  for (std::string_view bad : {"", "null", "a.example.com", "https://", "https:///", "https://a.example.com/",
                               "https://a.example.com/path", "https://a.example.com?x", "https://a.example.com#x",
                               "https://u@a.example.com", "https://a.example.com:", "https://a.example.com:99999",
                               "https://a.example.com:443x", "https://a.example.com.", " https://a.example.com",
                               "https://a.example.com ", "https:/a.example.com", "https://a.exa mple.com",
                               "https://a.example.com:-1", "https://a.example.com:+443", "1https://a.example.com"}) {
    EXPECT_FALSE(list.allows(bad)) << "'" << bad << "'";
  }
}

TEST(OriginAllowList, PatternErrorsNameThePattern) {
  std::string error = creation_error("player.example.com");
  EXPECT_NE(error.find("\"player.example.com\""), std::string::npos) << error;
  EXPECT_NE(error.find("scheme"), std::string::npos) << error;
  EXPECT_NE(creation_error("https://a.example.com/").find("path"), std::string::npos);
  EXPECT_NE(creation_error("https://*.com").find("two labels"), std::string::npos);
  EXPECT_NE(creation_error("https://a.*.example.com").find("leftmost"), std::string::npos);
  EXPECT_NE(creation_error("https://*example.com").find("leftmost"), std::string::npos);
  EXPECT_NE(creation_error("https://a.example.com:70000").find("65535"), std::string::npos);
  EXPECT_NE(creation_error("https://user@a.example.com").find("user info"), std::string::npos);
  EXPECT_NE(creation_error("https://[::1]8080").find("after the IPv6 literal"), std::string::npos);
}

TEST(OriginAllowList, MalformedPatternsRefused) {
  for (std::string bad : {"", "**", "*.example.com", "https://", "https://a.example.com:", "https://*",
                          "https://*.*.example.com", "https://u@a.example.com", "https://a.example.com?",
                          "https://a..example.com", "https://a.example.com:x", "ht tp://a.example.com",
                          "https://[::1", "https://*.[::1]", "null", "https://a.example.com.",
                          "https://a.example.com*"}) {
    creation_error(bad);
  }
}

TEST(OriginAllowList, OneBadPatternFailsTheWholeList) {
  std::vector<std::string> patterns{"https://ok.example.com", "bad"};
  EXPECT_FALSE(OriginAllowList::create(patterns, false));
}

TEST(OriginAllowList, LongHostLimits) {
  std::string label63(63, 'a');
  std::string host = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');  // 253 bytes
  ASSERT_EQ(host.size(), 253u);
  auto list = make({"https://" + host});
  EXPECT_TRUE(list.allows("https://" + host));
  creation_error("https://" + host + "b");
  creation_error("https://" + std::string(64, 'a') + ".com");
  EXPECT_FALSE(make({"https://*.example.com"}).allows("https://" + std::string(64, 'a') + ".example.com"));
}

TEST(OriginAllowList, AllowsDoesNotAllocate) {
  auto list = make({"https://a.example.com", "https://*.cdn.example.net", "http://[::1]:8080"});
  std::string origins[] = {"https://a.example.com", "https://x.cdn.example.net", "http://[::1]:8080",
                           "https://nope.example.org", "garbage"};
  size_t before = allocations;
  int allowed = 0;
  for (const std::string& origin : origins) allowed += list.allows(origin) ? 1 : 0;
  EXPECT_EQ(allocations, before);
  EXPECT_EQ(allowed, 3);
}

}  // namespace
}  // namespace mf::edge
