#include "common/codec/http_request_head.h"

#include <gtest/gtest.h>

#include <string>

namespace mf::http {
namespace {

using namespace std::literals;

constexpr std::string_view browser_upgrade =
    "GET /ws?stream=abc&token=x.y.z HTTP/1.1\r\n"
    "Host: edge.example.com:8445\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Upgrade: websocket\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "User-Agent:   Mozilla/5.0 \t\r\n"
    "\r\n";

RequestError parse_error(std::string_view head) {
  auto parsed = parse_request_head(head);
  EXPECT_FALSE(parsed.has_value()) << head;
  return parsed ? RequestError{0xFF} : parsed.error();
}

// ---- find_head_end ----

TEST(FindHeadEnd, ReturnsOffsetPastBlankLine) {
  EXPECT_EQ(find_head_end(browser_upgrade), browser_upgrade.size());
  std::string with_body = std::string(browser_upgrade) + "frame bytes";
  EXPECT_EQ(find_head_end(with_body), browser_upgrade.size());
}

TEST(FindHeadEnd, ZeroUntilComplete) {
  EXPECT_EQ(find_head_end(""), 0u);
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\r\nHost: a\r\n"), 0u);
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\n\n"), 0u);  // LF-only never ends a head
  EXPECT_EQ(find_head_end("\r\n\r\n"), 4u);
}

TEST(FindHeadEnd, TerminatorSplitAcrossFeeds) {
  // The caller re-checks its accumulated buffer after every read; whichever
  // byte of the terminator arrives last, the end is found exactly then.
  for (size_t split = 1; split < browser_upgrade.size(); ++split) {
    std::string buffered(browser_upgrade.substr(0, split));
    const size_t before = find_head_end(buffered);
    buffered += browser_upgrade.substr(split);
    EXPECT_EQ(before, 0u) << split;
    EXPECT_EQ(find_head_end(buffered), browser_upgrade.size()) << split;
  }
}

TEST(FindHeadEnd, LimitBoundary) {
  // A head of exactly max_request_head_bytes (terminator included) is allowed;
  // one byte more is past the limit the caller enforces.
  const std::string prefix = "GET / HTTP/1.1\r\nX-Pad: ";
  std::string at_limit = prefix + std::string(max_request_head_bytes - prefix.size() - 4, 'a') + "\r\n\r\n";
  ASSERT_EQ(at_limit.size(), max_request_head_bytes);
  EXPECT_EQ(find_head_end(at_limit), max_request_head_bytes);
  EXPECT_TRUE(parse_request_head(at_limit).has_value());

  std::string over = prefix + std::string(max_request_head_bytes - prefix.size() - 3, 'a') + "\r\n\r\n";
  EXPECT_EQ(find_head_end(over), max_request_head_bytes + 1);
  EXPECT_GT(find_head_end(over), max_request_head_bytes);

  std::string unterminated(max_request_head_bytes + 1, 'a');
  EXPECT_EQ(find_head_end(unterminated), 0u);
}

// ---- parse_request_head: accepted ----

TEST(ParseRequestHead, BrowserUpgrade) {
  auto parsed = parse_request_head(browser_upgrade);
  ASSERT_TRUE(parsed.has_value());
  const RequestHead& h = *parsed;
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/ws?stream=abc&token=x.y.z");
  EXPECT_EQ(h.path, "/ws");
  EXPECT_EQ(h.query, "stream=abc&token=x.y.z");
  EXPECT_EQ(h.version_minor, 1);
  ASSERT_EQ(h.header_count, 6);
  EXPECT_EQ(h.headers[0].name, "Host");
  EXPECT_EQ(h.headers[0].value, "edge.example.com:8445");
  EXPECT_EQ(h.headers[5].name, "User-Agent");
  EXPECT_EQ(h.headers[5].value, "Mozilla/5.0");  // OWS trimmed both sides
}

TEST(ParseRequestHead, ViewsPointIntoCallerBuffer) {
  auto parsed = parse_request_head(browser_upgrade);
  ASSERT_TRUE(parsed.has_value());
  auto inside = [&](std::string_view v) {
    return v.data() >= browser_upgrade.data() &&
           v.data() + v.size() <= browser_upgrade.data() + browser_upgrade.size();
  };
  EXPECT_TRUE(inside(parsed->method));
  EXPECT_TRUE(inside(parsed->target));
  EXPECT_TRUE(inside(parsed->path));
  EXPECT_TRUE(inside(parsed->query));
  for (const Header& h : parsed->fields()) {
    EXPECT_TRUE(inside(h.name));
    EXPECT_TRUE(inside(h.value));
  }
}

TEST(ParseRequestHead, Http10AndNoHeaders) {
  auto parsed = parse_request_head("HEAD /healthz HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->method, "HEAD");
  EXPECT_EQ(parsed->path, "/healthz");
  EXPECT_EQ(parsed->query, "");
  EXPECT_EQ(parsed->version_minor, 0);
  EXPECT_EQ(parsed->header_count, 0);
}

TEST(ParseRequestHead, PathAndQuerySplitAtFirstQuestionMark) {
  auto parsed = parse_request_head("GET /ws?a=1?b HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->path, "/ws");
  EXPECT_EQ(parsed->query, "a=1?b");
  parsed = parse_request_head("GET /ws? HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->path, "/ws");
  EXPECT_EQ(parsed->query, "");
}

TEST(ParseRequestHead, EmptyValueAndObsTextAllowed) {
  auto parsed = parse_request_head("GET / HTTP/1.1\r\nX-Empty:\r\nX-Spaces:   \r\nX-Utf8: caf\xC3\xA9\r\n\r\n");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->header("x-empty"), "");
  EXPECT_EQ(parsed->header("x-spaces"), "");
  EXPECT_EQ(parsed->header("x-utf8"), "caf\xC3\xA9");
}

TEST(ParseRequestHead, HtabInsideValueAllowed) {
  auto parsed = parse_request_head("GET / HTTP/1.1\r\nX-Tab: a\tb\r\n\r\n");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->header("X-Tab"), "a\tb");
}

TEST(ParseRequestHead, ExactlyMaxHeaders) {
  std::string head = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i < max_request_headers; ++i) head += "X-H" + std::to_string(i) + ": v\r\n";
  head += "\r\n";
  auto parsed = parse_request_head(head);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->header_count, max_request_headers);
  EXPECT_EQ(parsed->header("x-h47"), "v");
}

// ---- parse_request_head: rejected ----

TEST(ParseRequestHead, TooManyHeaders) {
  std::string head = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i <= max_request_headers; ++i) head += "X-H" + std::to_string(i) + ": v\r\n";
  head += "\r\n";
  EXPECT_EQ(parse_error(head), RequestError::too_many_headers);
}

TEST(ParseRequestHead, UnsupportedVersions) {
  EXPECT_EQ(parse_error("GET / HTTP/2.0\r\n\r\n"), RequestError::unsupported_version);
  EXPECT_EQ(parse_error("GET / HTTP/1.2\r\n\r\n"), RequestError::unsupported_version);
  EXPECT_EQ(parse_error("GET / HTTP/0.9\r\n\r\n"), RequestError::unsupported_version);
}

TEST(ParseRequestHead, BadRequestLine) {
  for (std::string_view head : {
           "\r\n\r\n",                             // empty request line
           "\r\nGET / HTTP/1.1\r\n\r\n",           // leading empty line
           "GET\r\n\r\n",                          // no target
           "GET / \r\n\r\n",                       // no version
           "GET /\r\n\r\n",
           " GET / HTTP/1.1\r\n\r\n",              // leading space
           "GET  / HTTP/1.1\r\n\r\n",              // double space
           "GET /  HTTP/1.1\r\n\r\n",
           "GET / HTTP/1.1 \r\n\r\n",              // trailing space
           "G(T / HTTP/1.1\r\n\r\n",               // method not a token
           "GET ws HTTP/1.1\r\n\r\n",              // not origin-form
           "GET http://a/ws HTTP/1.1\r\n\r\n",     // absolute-form
           "OPTIONS * HTTP/1.1\r\n\r\n",           // asterisk-form
           "GET /a b HTTP/1.1\r\n\r\n",            // space in target
           "GET /a\tb HTTP/1.1\r\n\r\n",           // tab in target
           "GET /a#frag HTTP/1.1\r\n\r\n",         // fragment
           "GET /a\x7F HTTP/1.1\r\n\r\n",          // DEL
           "GET /caf\xC3\xA9 HTTP/1.1\r\n\r\n",    // non-ASCII
           "GET / http/1.1\r\n\r\n",               // version is case-sensitive
           "GET / HTTP/1.10\r\n\r\n",
           "GET / HTTP/11\r\n\r\n",
           "GET / HTTP/1.1\r\r\n\r\n",
       }) {
    EXPECT_EQ(parse_error(head), RequestError::malformed) << head;
  }
  EXPECT_EQ(parse_error("GET /a\0b HTTP/1.1\r\n\r\n"sv), RequestError::malformed);
}

TEST(ParseRequestHead, LfOnlyLinesAreMalformed) {
  EXPECT_EQ(parse_error("GET / HTTP/1.1\n\n"), RequestError::malformed);
  EXPECT_EQ(parse_error("GET / HTTP/1.1\nHost: a\r\n\r\n"), RequestError::malformed);
  EXPECT_EQ(parse_error("GET / HTTP/1.1\r\nHost: a\n\r\n"), RequestError::malformed);
  EXPECT_EQ(parse_error("GET / HTTP/1.1\r\nHost: a\r\n\n"), RequestError::malformed);
  EXPECT_EQ(parse_error("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"), RequestError::malformed);
}

TEST(ParseRequestHead, BadHeaderLines) {
  for (std::string_view head : {
           "GET / HTTP/1.1\r\nHost a\r\n\r\n",            // no colon
           "GET / HTTP/1.1\r\n: a\r\n\r\n",               // empty name
           "GET / HTTP/1.1\r\nHost : a\r\n\r\n",          // space before colon
           "GET / HTTP/1.1\r\nHo st: a\r\n\r\n",          // space in name
           "GET / HTTP/1.1\r\nHo\"st: a\r\n\r\n",         // separator in name
           "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",        // obs-fold (SP)
           "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n",       // obs-fold (HTAB)
           "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",           // bare CR in value
           "GET / HTTP/1.1\r\nX: a\x01\r\n\r\n",          // control char
           "GET / HTTP/1.1\r\nX: a\x7F\r\n\r\n",          // DEL
           "GET / HTTP/1.1\r\nX: a\x1B[0m\r\n\r\n",       // escape
           "GET / HTTP/1.1\r\nX: a\r\n",                  // no blank line
           "GET / HTTP/1.1\r\nX: a\r\n\r\nbody",          // bytes after the head
           "GET / HTTP/1.1\r\nX: a\r\n\r\n\r\n",
           "GET / HTTP/1.1\r\n",
           "GET / HTTP/1.1",
       }) {
    EXPECT_EQ(parse_error(head), RequestError::malformed) << head;
  }
  EXPECT_EQ(parse_error("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"sv), RequestError::malformed);
  EXPECT_EQ(parse_error("GET / HTTP/1.1\r\nX\0: a\r\n\r\n"sv), RequestError::malformed);
}

TEST(ParseRequestHead, EveryTruncationOfAValidHeadIsRejected) {
  for (size_t n = 0; n < browser_upgrade.size(); ++n) {
    EXPECT_FALSE(parse_request_head(browser_upgrade.substr(0, n)).has_value()) << n;
  }
}

// ---- header lookup ----

TEST(RequestHeadHeader, CaseInsensitiveFirstOccurrence) {
  auto parsed = parse_request_head("GET / HTTP/1.1\r\nX-Dup: one\r\nx-dup: two\r\n\r\n");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->header("X-DUP"), "one");
  EXPECT_EQ(parsed->header("x-dup"), "one");
  EXPECT_EQ(parsed->header("X-Du"), std::nullopt);
  EXPECT_EQ(parsed->header("X-Dupe"), std::nullopt);
  EXPECT_EQ(count_headers(parsed->fields(), "X-DUP"), 2u);
}

TEST(RequestHeadHeader, TokenInListAcrossRepeatedHeaders) {
  auto parsed = parse_request_head(
      "GET / HTTP/1.1\r\n"
      "Connection: keep-alive\r\n"
      "Connection: ,, Upgrade ,\r\n"
      "X-List: a,b\tc, d\r\n"
      "\r\n");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_TRUE(parsed->header_has_token("connection", "upgrade"));
  EXPECT_TRUE(parsed->header_has_token("CONNECTION", "Keep-Alive"));
  EXPECT_FALSE(parsed->header_has_token("Connection", "close"));
  EXPECT_FALSE(parsed->header_has_token("Connection", "upgrad"));
  EXPECT_FALSE(parsed->header_has_token("Connection", ""));
  EXPECT_TRUE(parsed->header_has_token("X-List", "a"));
  EXPECT_TRUE(parsed->header_has_token("X-List", "b\tc"));  // no split on inner OWS
  EXPECT_FALSE(parsed->header_has_token("X-List", "b"));
  EXPECT_TRUE(parsed->header_has_token("X-List", "d"));
  EXPECT_FALSE(parsed->header_has_token("X-Missing", "a"));
}

TEST(NextListElement, SkipsEmptyAndTrims) {
  std::string_view list = " , a ,\tb,,c , ";
  EXPECT_EQ(next_list_element(list), "a");
  EXPECT_EQ(next_list_element(list), "b");
  EXPECT_EQ(next_list_element(list), "c");
  EXPECT_EQ(next_list_element(list), "");
  EXPECT_EQ(next_list_element(list), "");
}

TEST(EqualsIgnoreCase, LettersOnlyFold) {
  EXPECT_TRUE(equals_ignore_case("Sec-WebSocket-Key", "sec-websocket-KEY"));
  EXPECT_TRUE(equals_ignore_case("", ""));
  EXPECT_FALSE(equals_ignore_case("a", "ab"));
  // Pairs that differ only in bit 0x20 but are not letters.
  EXPECT_FALSE(equals_ignore_case("x^", "x~"));
  EXPECT_FALSE(equals_ignore_case("[", "{"));
  EXPECT_FALSE(equals_ignore_case("@", "`"));
  EXPECT_FALSE(equals_ignore_case("\xC1", "\xE1"));
}

TEST(IsToken, Rules) {
  EXPECT_TRUE(is_token("meshedflow.v1"));
  EXPECT_TRUE(is_token("!#$%&'*+-.^_`|~09azAZ"));
  EXPECT_FALSE(is_token(""));
  EXPECT_FALSE(is_token("a b"));
  EXPECT_FALSE(is_token("a,b"));
  EXPECT_FALSE(is_token("a\r\nb"));
}

// ---- query_param ----

TEST(QueryParam, FindsRawValues) {
  constexpr std::string_view q = "stream=abc-123&token=eyJ.eyJ.sig_-&empty=&flag";
  EXPECT_EQ(query_param(q, "stream"), "abc-123");
  EXPECT_EQ(query_param(q, "token"), "eyJ.eyJ.sig_-");
  EXPECT_EQ(query_param(q, "empty"), "");
  EXPECT_EQ(query_param(q, "flag"), "");
  EXPECT_EQ(query_param(q, "missing"), std::nullopt);
}

TEST(QueryParam, ExactKeyFirstOccurrence) {
  EXPECT_EQ(query_param("a=1&a=2", "a"), "1");
  EXPECT_EQ(query_param("ab=1&a=2", "a"), "2");
  EXPECT_EQ(query_param("a=1", "ab"), std::nullopt);
  EXPECT_EQ(query_param("A=1", "a"), std::nullopt);  // case-sensitive
  EXPECT_EQ(query_param("x=a=b", "x"), "a=b");       // first '=' splits
  EXPECT_EQ(query_param("%73tream=1", "stream"), std::nullopt);  // no decoding
  EXPECT_EQ(query_param("t=a%2Bb", "t"), "a%2Bb");
}

TEST(QueryParam, EmptyPiecesAndEmptyKey) {
  EXPECT_EQ(query_param("", "a"), std::nullopt);
  EXPECT_EQ(query_param("&&a=1&", "a"), "1");
  EXPECT_EQ(query_param("=1", "a"), std::nullopt);
  EXPECT_EQ(query_param("=1&a=2", ""), std::nullopt);
  EXPECT_EQ(query_param("a", "a"), "");
}

}  // namespace
}  // namespace mf::http
