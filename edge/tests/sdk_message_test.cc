#include "edge/sdk_message.h"

#include <gtest/gtest.h>

#include <string>

namespace mf::edge {
namespace {

// Holds text with simdjson's padding after it.
struct Padded {
  explicit Padded(std::string_view text) : storage(text) { storage.append(simdjson::SIMDJSON_PADDING, ' '); size = text.size(); }
  std::string_view view() const { return {storage.data(), size}; }
  std::string storage;
  size_t size;
};

std::expected<SdkRequest, SdkRejection> parse(SdkMessageParser& parser, const Padded& text) { return parser.parse(text.view()); }

TEST(SdkMessage, PingWithRawTAndId) {
  SdkMessageParser parser;
  Padded text(R"({"type":"ping","t": {"a" : [1, 2.50, "x\u0041"]} ,"id":"r-1"})");
  auto r = parse(parser, text);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->type, MessageType::ping);
  EXPECT_EQ(r->t_raw, R"({"a" : [1, 2.50, "x\u0041"]})");
  EXPECT_EQ(r->id_raw, R"("r-1")");
}

TEST(SdkMessage, PingWithoutTAndNumericId) {
  SdkMessageParser parser;
  Padded text(R"({"id": 42 , "type":"ping"})");
  auto r = parse(parser, text);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->t_raw.empty());
  EXPECT_EQ(r->id_raw, "42");
}

TEST(SdkMessage, ScalarTKeepsItsExactText) {
  SdkMessageParser parser;
  for (std::string t : {"1e3", "-0.0", "\"a\\\"b\"", "true", "null", "[]", "{}"}) {
    Padded text("{\"type\":\"ping\",\"t\":" + t + "}");
    auto r = parse(parser, text);
    ASSERT_TRUE(r) << t;
    EXPECT_EQ(r->t_raw, t);
  }
}

TEST(SdkMessage, BadJsonAndNonObjects) {
  SdkMessageParser parser;
  for (std::string bad : {"", "{", "nope", "{\"type\":\"ping\",}", "{\"type\" \"ping\"}", "{\"type\":\"ping\"}}",
                          "{\"type\":\"ping\"} x", "{\"type\":\"ping\",\"t\":[1,2}", "{\"a\":tru}",
                          "{\"type\":\"ping\",\"t\":\"\\x\"}"}) {
    Padded text(bad);
    auto r = parse(parser, text);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, SdkErrorCode::bad_json) << bad;
  }
  for (std::string non_object : {"[1]", "1", "\"ping\"", "null"}) {
    Padded text(non_object);
    auto r = parse(parser, text);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, SdkErrorCode::bad_json);
    EXPECT_EQ(r.error().message, "not a JSON object");
  }
}

TEST(SdkMessage, ValidatesFieldsItDoesNotRead) {
  SdkMessageParser parser;
  Padded text(R"({"type":"ping","other":[1,2,{"x":01}]})");  // leading zero: invalid
  auto r = parse(parser, text);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, SdkErrorCode::bad_json);
}

TEST(SdkMessage, DeepNestingIsRefused) {
  SdkMessageParser parser;
  std::string deep = "{\"type\":\"ping\",\"t\":" + std::string(200, '[') + std::string(200, ']') + "}";
  Padded text(deep);
  auto r = parse(parser, text);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, SdkErrorCode::bad_json);
}

TEST(SdkMessage, TypeRules) {
  SdkMessageParser parser;
  {
    Padded text(R"({"t":1,"id":7})");
    auto r = parse(parser, text);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, SdkErrorCode::bad_request);
    EXPECT_EQ(r.error().id_raw, "7");
  }
  {
    Padded text(R"({"type":5})");
    auto r = parse(parser, text);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, SdkErrorCode::bad_request);
  }
  {
    Padded text(R"({"type":"teleport","id":"x"})");
    auto r = parse(parser, text);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, SdkErrorCode::unknown_type);
    EXPECT_EQ(r.error().detail, "teleport");
    EXPECT_EQ(r.error().id_raw, "\"x\"");
  }
}

TEST(SdkMessage, IdRules) {
  SdkMessageParser parser;
  Padded long_id("{\"type\":\"ping\",\"id\":\"" + std::string(65, 'a') + "\"}");
  auto r = parse(parser, long_id);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, SdkErrorCode::bad_request);
  Padded ok_id("{\"type\":\"ping\",\"id\":\"" + std::string(64, 'a') + "\"}");
  EXPECT_TRUE(parse(parser, ok_id));
  Padded object_id(R"({"type":"ping","id":{"a":1}})");
  auto r2 = parse(parser, object_id);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, SdkErrorCode::bad_request);
}

TEST(SdkMessage, ErrorCodeTextsMatchTheSpec) {
  EXPECT_EQ(error_code_text(SdkErrorCode::bad_json), "bad-json");
  EXPECT_EQ(error_code_text(SdkErrorCode::bad_request), "bad-request");
  EXPECT_EQ(error_code_text(SdkErrorCode::unknown_type), "unknown-type");
  EXPECT_EQ(error_code_text(SdkErrorCode::not_joined), "not-joined");
  EXPECT_EQ(error_code_text(SdkErrorCode::peer_not_found), "peer-not-found");
  EXPECT_EQ(error_code_text(SdkErrorCode::peer_id_taken), "peer-id-taken");
  EXPECT_EQ(error_code_text(SdkErrorCode::stream_full), "stream-full");
  EXPECT_EQ(error_code_text(SdkErrorCode::mesh_disabled), "mesh-disabled");
  EXPECT_EQ(error_code_text(SdkErrorCode::rate_limited), "rate-limited");
}

}  // namespace
}  // namespace mf::edge
