#include "edge/json_reader.h"

#include <gtest/gtest.h>

#include <string>

namespace mf::edge {
namespace {

// Text followed by json_reader_padding bytes that would be wrong to use.
struct Padded {
  explicit Padded(std::string_view text) : storage(text), size(text.size()) {
    storage.append(json_reader_padding, '"');
  }
  std::string_view view() const { return {storage.data(), size}; }
  std::string storage;
  size_t size;
};

TEST(JsonReader, MembersValuesAndTheirText) {
  Padded text(R"( { "a" : [1, {"b":"c"}] , "s":"x\"y" ,"n":-1.5e3,"t":true,"f":false,"z":null,"o":{}} )");
  JsonReader in(text.view());
  ASSERT_EQ(in.peek(), '{');
  ASSERT_TRUE(in.enter_object());
  JsonString key;
  JsonValue v;
  ASSERT_TRUE(in.next_member(key));
  EXPECT_EQ(key.body, "a");
  ASSERT_TRUE(in.read_value(v));
  EXPECT_EQ(v.type, JsonType::array);
  EXPECT_EQ(v.text, R"([1, {"b":"c"}])");
  ASSERT_TRUE(in.next_member(key));
  ASSERT_TRUE(in.read_value(v));
  EXPECT_EQ(v.type, JsonType::string);
  EXPECT_EQ(v.text, R"("x\"y")");
  EXPECT_EQ(v.string.body, R"(x\"y)");
  EXPECT_TRUE(v.string.escaped);
  ASSERT_TRUE(in.next_member(key));
  ASSERT_TRUE(in.read_value(v));
  EXPECT_EQ(v.type, JsonType::number);
  EXPECT_EQ(v.text, "-1.5e3");
  ASSERT_TRUE(in.next_member(key));
  ASSERT_TRUE(in.read_value(v));
  EXPECT_EQ(v.type, JsonType::boolean);
  EXPECT_TRUE(v.boolean);
  ASSERT_TRUE(in.next_member(key));
  ASSERT_TRUE(in.read_value(v));
  EXPECT_FALSE(v.boolean);
  ASSERT_TRUE(in.next_member(key));
  ASSERT_TRUE(in.read_value(v));
  EXPECT_EQ(v.type, JsonType::null);
  ASSERT_TRUE(in.next_member(key));
  EXPECT_EQ(key.body, "o");
  ASSERT_TRUE(in.enter_object());
  EXPECT_FALSE(in.next_member(key));
  EXPECT_FALSE(in.next_member(key));  // the root closes
  EXPECT_FALSE(in.failed());
  EXPECT_TRUE(in.at_end());
}

TEST(JsonReader, ArraysElementByElement) {
  Padded text(R"([ "a" , 2 ,[]])");
  JsonReader in(text.view());
  ASSERT_TRUE(in.enter_array());
  JsonValue v;
  int n = 0;
  while (in.next_element()) {
    ASSERT_TRUE(in.read_value(v));
    ++n;
  }
  EXPECT_FALSE(in.failed());
  EXPECT_EQ(n, 3);
  EXPECT_EQ(v.text, "[]");
  Padded trailing_comma("[1,]");
  JsonReader bad(trailing_comma.view());
  ASSERT_TRUE(bad.enter_array());
  while (bad.next_element()) {
    if (!bad.read_value(v)) break;
  }
  EXPECT_TRUE(bad.failed());
}

// The padding holds quotes: a string cut by the end must not be closed by them.
TEST(JsonReader, NeverDecidesOnBytesPastTheEnd) {
  for (std::string text : {R"(["abc)", R"(["a\)", R"(["\u00)", R"(["\ud83d\ude0)", "[\"\xe2\x82", "[\"abcdefghijklmnopq"}) {
    Padded padded(text);
    JsonReader in(padded.view());
    JsonValue v;
    ASSERT_TRUE(in.enter_array());
    ASSERT_TRUE(in.next_element());
    EXPECT_FALSE(in.read_value(v)) << text;
    EXPECT_TRUE(in.failed()) << text;
  }
  // Cut at and around a scan block's length (32 bytes with AVX2, 16 with SSE2).
  for (size_t length : {15u, 16u, 17u, 31u, 32u, 33u}) {
    Padded padded("[\"" + std::string(length, 'a'));
    JsonReader in(padded.view());
    JsonValue v;
    ASSERT_TRUE(in.enter_array());
    ASSERT_TRUE(in.next_element());
    EXPECT_FALSE(in.read_value(v)) << length;
  }
  // A key cut by the end.
  Padded key(R"({"ab)");
  JsonReader in(key.view());
  JsonString name;
  ASSERT_TRUE(in.enter_object());
  EXPECT_FALSE(in.next_member(name));
  EXPECT_TRUE(in.failed());
}

// Keys and values of every length across two scan blocks: the inline case
// (closing quote in the first block) and the general loop agree.
TEST(JsonReader, StringsOfEveryLengthAroundTheScanBlock) {
  for (size_t length = 0; length <= 70; ++length) {
    const std::string body(length, 'k');
    Padded padded("{\"" + body + "\":\"" + body + "\"}");
    JsonReader in(padded.view());
    JsonString key;
    JsonValue v;
    ASSERT_TRUE(in.enter_object());
    ASSERT_TRUE(in.next_member(key)) << length;
    EXPECT_EQ(key.body, body);
    ASSERT_TRUE(in.read_value(v)) << length;
    EXPECT_EQ(v.string.body, body);
    EXPECT_FALSE(v.string.escaped);
    EXPECT_FALSE(in.next_member(key));
    EXPECT_FALSE(in.failed()) << length;
    EXPECT_TRUE(in.at_end());
  }
}

// Strings inside a container (skipped whole: the first block's scan, then
// two blocks per test while the text holds them, then one) of every length
// up to 200, with an escape, a two-byte character, a control character or
// a byte that starts no character at every position: accepted exactly when
// valid, and the container's text ends where it should.
TEST(JsonReader, NestedStringsOfEveryLengthWithAStopAtEveryPosition) {
  struct Stop {
    std::string bytes;
    bool valid;
  };
  const Stop stops[] = {{"\\n", true}, {"\xc3\xa9", true}, {"\x01", false}, {"\xff", false}, {"\\q", false}};
  for (size_t length = 0; length <= 200; ++length) {
    for (size_t at = 0; at <= length; ++at) {
      for (const Stop& stop : stops) {
        const bool plain = at == length;
        const std::string body = std::string(at, 'p') + (plain ? "" : stop.bytes) + std::string(length - at, 'q');
        const std::string value = "[{\"k\":[\"" + body + "\"]},1]";
        Padded padded("[" + value + "]");
        JsonReader in(padded.view());
        JsonValue v;
        ASSERT_TRUE(in.enter_array());
        ASSERT_TRUE(in.next_element());
        const bool valid = plain || stop.valid;
        ASSERT_EQ(in.read_value(v), valid) << length << " " << at << " " << stop.bytes;
        if (valid) {
          EXPECT_EQ(v.text, value) << length << " " << at;
        }
        if (plain) break;
      }
    }
  }
}

TEST(JsonReader, FailureIsSticky) {
  Padded text(R"({"a":x,"b":1})");
  JsonReader in(text.view());
  ASSERT_TRUE(in.enter_object());
  JsonString key;
  JsonValue v;
  ASSERT_TRUE(in.next_member(key));
  EXPECT_FALSE(in.read_value(v));
  EXPECT_FALSE(in.next_member(key));
  EXPECT_FALSE(in.read_value(v));
  EXPECT_TRUE(in.failed());
}

TEST(JsonReader, Unescape) {
  const std::string body = R"(a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00\u0000z)";
  char out[64];
  const size_t size = unescape_json_string(body, out);
  EXPECT_EQ(std::string(out, size), std::string("a\"b\\c/d\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") + '\0' + "z");
  EXPECT_EQ(unescape_json_string("plain", out), 5u);
}

TEST(JsonReader, Numbers) {
  for (std::string good : {"0", "-0", "1", "-12.5", "1e9", "1E+9", "1e-9", "0.0", "123456789012345678901234567890"}) {
    const char* end = good.data() + good.size();
    EXPECT_EQ(scan_json_number(good.data(), end), end) << good;
  }
  for (std::string bad : {"", "-", "+1", ".5", "1.", "1e", "1e+", "-a"}) {
    EXPECT_EQ(scan_json_number(bad.data(), bad.data() + bad.size()), nullptr) << bad;
  }
  // The number ends where the grammar does; what follows is the caller's.
  const std::string leading_zero = "01";
  EXPECT_EQ(scan_json_number(leading_zero.data(), leading_zero.data() + 2), leading_zero.data() + 1);
}

TEST(JsonReader, Integers) {
  bool negative = false;
  uint64_t magnitude = 0;
  ASSERT_TRUE(json_integer("18446744073709551615", negative, magnitude));
  EXPECT_FALSE(negative);
  EXPECT_EQ(magnitude, 18446744073709551615ull);
  ASSERT_TRUE(json_integer("-0", negative, magnitude));
  EXPECT_TRUE(negative);
  EXPECT_EQ(magnitude, 0u);
  ASSERT_TRUE(json_integer("-9223372036854775808", negative, magnitude));
  EXPECT_EQ(magnitude, 9223372036854775808ull);
  for (std::string_view not_integer : {"18446744073709551616", "1.0", "1e3", "-", ""}) {
    EXPECT_FALSE(json_integer(not_integer, negative, magnitude)) << not_integer;
  }
}

}  // namespace
}  // namespace mf::edge
