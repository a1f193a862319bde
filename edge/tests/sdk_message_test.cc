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

// A long unknown type is quoted cut at 64 bytes, never inside a character:
// 63 ASCII bytes then a 3-byte character (bytes 64..66) cut at 63.
TEST(SdkMessage, UnknownTypeDetailIsCutAtACharacterBoundary) {
  SdkMessageParser parser;
  std::string type = std::string(63, 'a') + "\u20ac" + "tail";  // U+20AC: e2 82 ac
  Padded text("{\"type\":\"" + type + "\"}");
  auto r = parse(parser, text);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, SdkErrorCode::unknown_type);
  EXPECT_EQ(r.error().detail, std::string(63, 'a'));
  // Within the limit, a character is kept whole.
  Padded fits("{\"type\":\"" + std::string(61, 'a') + "\u20acz\"}");
  auto kept = parse(parser, fits);
  ASSERT_FALSE(kept);
  EXPECT_EQ(kept.error().detail, std::string(61, 'a') + "\xe2\x82\xac");
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

TEST(SdkMessage, JoinWithEverything) {
  SdkMessageParser parser;
  Padded text(R"({"type":"join","streamId":"live-1","rendition":"720p","peerId":"p:1.a_b-c","session":"abc",)"
              R"("caps":{"maxPeers":12,"uploadKbps":5000,"acceptingPeers":false},)"
              R"("topology":{"region":"eu-west","country":"DE","asn":3320,"network":"wifi"},"extra":[1]})");
  auto r = parse(parser, text);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->type, MessageType::join);
  EXPECT_EQ(r->stream_id, "live-1");
  EXPECT_EQ(r->rendition, "720p");
  EXPECT_EQ(r->peer_id, "p:1.a_b-c");
  EXPECT_TRUE(r->has_session);
  EXPECT_EQ(r->session, "abc");
  EXPECT_TRUE(r->caps.has_max_peers);
  EXPECT_EQ(r->caps.max_peers, 12u);
  EXPECT_EQ(r->caps.upload_kbps, 5000u);
  EXPECT_FALSE(r->caps.accepting_peers);
  EXPECT_TRUE(r->topology.present);
  EXPECT_EQ(r->topology.region, "eu-west");
  EXPECT_EQ(r->topology.country, "DE");
  EXPECT_EQ(r->topology.asn, 3320);
  EXPECT_EQ(r->topology.network, "wifi");
}

TEST(SdkMessage, JoinFieldErrorsNameTheField) {
  SdkMessageParser parser;
  struct Case {
    std::string json;
    std::string_view message;
  } cases[] = {
      {R"({"type":"join","rendition":"r","peerId":"p"})", "streamId: missing"},
      {R"({"type":"join","streamId":"s","peerId":"p"})", "rendition: missing"},
      {R"({"type":"join","streamId":"s","rendition":"r"})", "peerId: missing"},
      {R"({"type":"join","streamId":"s s","rendition":"r","peerId":"p"})", "streamId: must be 1..128 bytes of [A-Za-z0-9._:-]"},
      {R"({"type":"join","streamId":"","rendition":"r","peerId":"p"})", "streamId: must be 1..128 bytes of [A-Za-z0-9._:-]"},
      {"{\"type\":\"join\",\"streamId\":\"" + std::string(129, 'a') + "\",\"rendition\":\"r\",\"peerId\":\"p\"}",
       "streamId: must be 1..128 bytes of [A-Za-z0-9._:-]"},
      {R"({"type":"join","streamId":"s","rendition":5,"peerId":"p"})", "rendition: must be 1..128 bytes of [A-Za-z0-9._:-]"},
      {R"({"type":"join","streamId":"s","rendition":"r","peerId":"p/"})", "peerId: must be 1..128 bytes of [A-Za-z0-9._:-]"},
      {R"({"type":"join","streamId":"s","rendition":"r","peerId":"p","caps":{"maxPeers":65}})", "caps.maxPeers: must be an integer 0..64"},
      {R"({"type":"join","streamId":"s","rendition":"r","peerId":"p","caps":{"maxPeers":1.5}})", "caps.maxPeers: must be an integer 0..64"},
      {R"({"type":"join","streamId":"s","rendition":"r","peerId":"p","caps":{"uploadKbps":-1}})", "caps.uploadKbps: must be an integer >= 0"},
      {R"({"type":"join","streamId":"s","rendition":"r","peerId":"p","caps":{"acceptingPeers":1}})", "caps.acceptingPeers: must be a boolean"},
      {R"({"type":"join","streamId":"s","rendition":"r","peerId":"p","caps":[]})", "caps: must be an object"},
      {R"({"type":"join","streamId":"s","rendition":"r","peerId":"p","topology":{"asn":"x"}})", "topology.asn: must be an integer 0..4294967295"},
      {R"({"type":"join","streamId":"s","rendition":"r","peerId":"p","topology":{"region":""}})", "topology.region: must be a string of 1..64 bytes"},
      {R"({"type":"join","streamId":"s","rendition":"r","peerId":"p","session":7})", "session: must be a string of at most 128 bytes"},
  };
  for (const Case& c : cases) {
    Padded text(c.json);
    auto r = parse(parser, text);
    ASSERT_FALSE(r) << c.json;
    EXPECT_EQ(r.error().code, SdkErrorCode::bad_request) << c.json;
    EXPECT_EQ(r.error().message, c.message) << c.json;
  }
}

TEST(SdkMessage, RefIsEchoedEvenWhenIdComesAfterTheBadField) {
  SdkMessageParser parser;
  Padded text(R"({"type":"join","streamId":"bad id","rendition":"r","peerId":"p","id":"req-9"})");
  auto r = parse(parser, text);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().id_raw, "\"req-9\"");
}

TEST(SdkMessage, SignalKeepsDataByteExact) {
  SdkMessageParser parser;
  Padded text(R"({"type":"signal","to":"peer-2","kind":"candidate","data":{"candidate":"a b\u0020c","sdpMLineIndex":0, "x":[1.50,true]} })");
  auto r = parse(parser, text);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->type, MessageType::signal);
  EXPECT_EQ(r->to, "peer-2");
  EXPECT_EQ(r->kind, SignalKind::candidate);
  EXPECT_EQ(r->data_raw, R"({"candidate":"a b\u0020c","sdpMLineIndex":0, "x":[1.50,true]})");
  for (std::string kind : {"offer", "answer", "bye"}) {
    Padded t("{\"type\":\"signal\",\"to\":\"p\",\"kind\":\"" + kind + "\",\"data\":null}");
    auto k = parse(parser, t);
    ASSERT_TRUE(k);
    EXPECT_EQ(signal_kind_text(k->kind), kind);
    EXPECT_EQ(k->data_raw, "null");
  }
  Padded bad_kind(R"({"type":"signal","to":"p","kind":"hello","data":1})");
  EXPECT_EQ(parse(parser, bad_kind).error().message, "kind: must be offer, answer, candidate or bye");
  Padded no_data(R"({"type":"signal","to":"p","kind":"offer"})");
  EXPECT_EQ(parse(parser, no_data).error().message, "data: missing");
  Padded no_to(R"({"type":"signal","kind":"offer","data":1})");
  EXPECT_EQ(parse(parser, no_to).error().message, "to: missing");
}

TEST(SdkMessage, NeedPeersCountAndExclude) {
  SdkMessageParser parser;
  Padded text(R"({"type":"need-peers","count":5,"exclude":["a","b","c"]})");
  auto r = parse(parser, text);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, MessageType::need_peers);
  EXPECT_TRUE(r->has_count);
  EXPECT_EQ(r->count, 5u);
  ASSERT_EQ(r->exclude_count, 3);
  EXPECT_EQ(r->exclude[2], "c");
  Padded zero(R"({"type":"need-peers","count":0})");
  EXPECT_EQ(parse(parser, zero).error().message, "count: must be an integer 1..64");
  std::string many = R"({"type":"need-peers","exclude":[)";
  for (int i = 0; i < 65; ++i) many += (i ? ",\"p" : "\"p") + std::to_string(i) + "\"";
  many += "]}";
  Padded too_many(many);
  EXPECT_EQ(parse(parser, too_many).error().message, "exclude: at most 64 peerIds");
  Padded bad_item(R"({"type":"need-peers","exclude":["ok",3]})");
  EXPECT_EQ(parse(parser, bad_item).error().message, "exclude: must be an array of peerIds");
}

TEST(SdkMessage, StatsUpdateLeave) {
  SdkMessageParser parser;
  Padded stats(R"({"type":"stats","p2pBytes":100,"cdnBytes":18446744073709551615,"uploadedBytes":0})");
  auto r = parse(parser, stats);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->p2p_bytes, 100u);
  EXPECT_EQ(r->cdn_bytes, 18446744073709551615ull);
  EXPECT_TRUE(r->has_uploaded_bytes);
  EXPECT_FALSE(r->has_connected_proposals);
  Padded connected(R"({"type":"stats","connectedProposals":3})");
  auto c = parse(parser, connected);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->has_connected_proposals);
  EXPECT_EQ(c->connected_proposals, 3u);
  EXPECT_FALSE(c->has_p2p_bytes);
  Padded fractional(R"({"type":"stats","connectedProposals":1.5})");
  EXPECT_EQ(parse(parser, fractional).error().message, "connectedProposals: must be an integer >= 0");
  Padded negative(R"({"type":"stats","p2pBytes":-1})");
  EXPECT_EQ(parse(parser, negative).error().message, "p2pBytes: must be an integer >= 0");
  Padded update(R"({"type":"update","topology":{"region":"us"},"caps":{"acceptingPeers":true}})");
  auto u = parse(parser, update);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->type, MessageType::update);
  EXPECT_EQ(u->topology.region, "us");
  EXPECT_TRUE(u->caps.has_accepting_peers);
  Padded leave(R"({"type":"leave"})");
  EXPECT_EQ(parse(parser, leave)->type, MessageType::leave);
}

TEST(SdkMessage, UnknownTypeWinsOverFieldErrors) {
  SdkMessageParser parser;
  Padded text(R"({"type":"teleport","streamId":"bad id"})");
  auto r = parse(parser, text);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, SdkErrorCode::unknown_type);
}

TEST(SdkMessage, NumbersOfAnyRangeAreValidJson) {
  SdkMessageParser parser;
  for (std::string t : {"123456789012345678901234567890", "-9223372036854775809", "1e400", "-0.5e-999", "0"}) {
    Padded text("{\"type\":\"ping\",\"t\":" + t + ",\"id\":" + t + "}");
    auto r = parse(parser, text);
    ASSERT_TRUE(r) << t;
    EXPECT_EQ(r->t_raw, t);
    EXPECT_EQ(r->id_raw, t);
  }
  for (std::string bad : {"01", "1.", ".5", "-", "1e", "+1", "0x10", "1.e5"}) {
    Padded text("{\"type\":\"ping\",\"t\":" + bad + "}");
    auto r = parse(parser, text);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, SdkErrorCode::bad_json) << bad;
  }
}

TEST(SdkMessage, Identifiers) {
  EXPECT_TRUE(is_valid_identifier("a"));
  EXPECT_TRUE(is_valid_identifier(std::string(128, 'Z')));
  EXPECT_FALSE(is_valid_identifier(std::string(129, 'Z')));
  EXPECT_FALSE(is_valid_identifier(""));
  EXPECT_FALSE(is_valid_identifier("a b"));
  EXPECT_FALSE(is_valid_identifier("é"));
  EXPECT_TRUE(is_valid_identifier("AZaz09._:-"));
}

}  // namespace
}  // namespace mf::edge
