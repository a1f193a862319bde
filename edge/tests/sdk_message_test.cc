#include "edge/sdk_message.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "edge/json_document.h"
#include "edge/json_string_scan.h"

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

// parse() reads the SDK's own compact signal by its fixed pieces and walks
// anything else; both ways must give the same result for every text.
void expect_same_as_walk(std::string_view text) {
  SdkMessageParser fast, walk;
  const Padded padded(text);
  EXPECT_TRUE(same_parse(fast.parse(padded.view()), walk.parse_by_walk(padded.view()))) << text;
}

std::string compact_signal(std::string_view to, std::string_view kind, std::string_view data) {
  return std::string(R"({"type":"signal","to":")") + std::string(to) + R"(","kind":")" + std::string(kind) +
         R"(","data":)" + std::string(data) + "}";
}

TEST(SdkCompactSignal, TheSdksSignalIsReadByItsPieces) {
  for (const char* kind : {"offer", "answer", "candidate", "bye"}) {
    const Padded text(compact_signal("L1a2b3c4d-123", kind, R"({"sdp":"v=0\r\n","n":[1,2.5e3,true,null]})"));
    SignalFields request;
    ASSERT_TRUE(read_compact_signal(text.view(), request)) << kind;
    EXPECT_EQ(request.to, "L1a2b3c4d-123");
    EXPECT_EQ(signal_kind_text(request.kind), kind);
    EXPECT_EQ(request.data_raw, R"({"sdp":"v=0\r\n","n":[1,2.5e3,true,null]})");
    expect_same_as_walk(text.view());
  }
}

TEST(SdkCompactSignal, WhatItDoesNotMatchIsWalked) {
  const std::vector<std::string> texts = {
      compact_signal(std::string(31, 'a'), "offer", "{}"),
      compact_signal(std::string(32, 'a'), "offer", "{}"),
      compact_signal(std::string(33, 'a'), "offer", "{}"),
      compact_signal(std::string(128, 'a'), "offer", "{}"),
      compact_signal(std::string(129, 'a'), "offer", "{}"),
      compact_signal("", "offer", "{}"),
      compact_signal("a b", "offer", "{}"),
      compact_signal(R"(a\u0062)", "offer", "{}"),
      compact_signal("caf\xc3\xa9", "offer", "{}"),
      compact_signal("ok", "offerx", "{}"),
      compact_signal("ok", "Offer", "{}"),
      compact_signal("ok", "", "{}"),
      compact_signal("ok", "offer", ""),
      compact_signal("ok", "offer", R"("text")"),
      compact_signal("ok", "offer", "12"),
      compact_signal("ok", "offer", "-"),
      compact_signal("ok", "offer", R"({"a":})"),
      compact_signal("ok", "offer", "{\"a\":\"\xff\"}"),
      compact_signal("ok", "offer", " {} "),
      // `data` is a member of the root: its own containers count from depth 1.
      compact_signal("ok", "offer", std::string(64, '[') + std::string(64, ']')),
      compact_signal("ok", "offer", std::string(65, '[') + std::string(65, ']')),
      compact_signal("ok", "offer", std::string(66, '[') + std::string(66, ']')),
      compact_signal("ok", "offer", R"({},"id":7)"),
      compact_signal("ok", "offer", R"({},"to":"other")"),
      compact_signal("ok", "offer", "{}") + " ",
      compact_signal("ok", "offer", "{}") + "}",
      compact_signal("ok", "offer", "{}").substr(0, 40),
      R"({"type":"signal","kind":"offer","to":"ok","data":{}})",
      R"({"type":"signal","to":"ok","kind":"offer","data":{},"id":"x"})",
      R"({"id":1,"type":"signal","to":"ok","kind":"offer","data":{}})",
      R"({ "type":"signal","to":"ok","kind":"offer","data":{}})",
  };
  for (const std::string& text : texts) expect_same_as_walk(text);
}

// Every prefix of a compact signal, and every byte of it changed to every
// value: the same result both ways (most of them are not compact signals
// any more, some still are).
TEST(SdkCompactSignal, EveryPrefixAndEveryByteChanged) {
  const std::string signal = compact_signal("L1a2b3c4d-123", "candidate", R"({"c":"x","m":0,"n":[{}]})");
  for (size_t size = 0; size <= signal.size(); ++size) expect_same_as_walk(signal.substr(0, size));
  for (size_t at = 0; at < signal.size(); ++at) {
    for (int value = 0; value < 256; ++value) {
      std::string changed = signal;
      changed[at] = static_cast<char>(value);
      SdkMessageParser fast, walk;
      const Padded padded(changed);
      ASSERT_TRUE(same_parse(fast.parse(padded.view()), walk.parse_by_walk(padded.view())))
          << "byte " << value << " at " << at;
    }
  }
}

TEST(SdkMessage, SignalKeepsDataByteExact) {
  SdkMessageParser parser;
  Padded text(R"({"type":"signal","to":"peer-2","kind":"candidate","data":{"candidate":"a b\u0020c","sdpMLineIndex":0, "x":[1.50,true]} })");
  auto r = parse(parser, text);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->type, MessageType::signal);
  EXPECT_EQ(r->signal.to, "peer-2");
  EXPECT_EQ(r->signal.kind, SignalKind::candidate);
  EXPECT_EQ(r->signal.data_raw, R"({"candidate":"a b\u0020c","sdpMLineIndex":0, "x":[1.50,true]})");
  for (std::string kind : {"offer", "answer", "bye"}) {
    Padded t("{\"type\":\"signal\",\"to\":\"p\",\"kind\":\"" + kind + "\",\"data\":null}");
    auto k = parse(parser, t);
    ASSERT_TRUE(k);
    EXPECT_EQ(signal_kind_text(k->signal.kind), kind);
    EXPECT_EQ(k->signal.data_raw, "null");
  }
  Padded bad_kind(R"({"type":"signal","to":"p","kind":"hello","data":1})");
  EXPECT_EQ(parse(parser, bad_kind).error().message, "kind: must be offer, answer, candidate or bye");
  Padded no_data(R"({"type":"signal","to":"p","kind":"offer"})");
  EXPECT_EQ(parse(parser, no_data).error().message, "data: missing");
  Padded no_to(R"({"type":"signal","kind":"offer","data":1})");
  EXPECT_EQ(parse(parser, no_to).error().message, "to: missing");
}

// Names are compared with loads of their first and last bytes: a name
// that differs from a known one in any single byte is not that name.
TEST(SdkMessage, ANameOneByteOffIsAnotherName) {
  SdkMessageParser parser;
  const auto off_by_one_byte = [](const std::string& name, size_t at) {
    std::string other = name;
    other[at] = other[at] == 'x' ? 'y' : 'x';
    return other;
  };
  for (std::string type : {"join", "ping", "leave", "stats", "signal", "update", "need-peers"}) {
    Padded exact("{\"type\":\"" + type + "\"}");
    auto r = parse(parser, exact);
    EXPECT_TRUE(r || r.error().code != SdkErrorCode::unknown_type) << type;
    for (size_t at = 0; at < type.size(); ++at) {
      Padded other("{\"type\":\"" + off_by_one_byte(type, at) + "\"}");
      auto o = parse(parser, other);
      ASSERT_FALSE(o) << off_by_one_byte(type, at);
      EXPECT_EQ(o.error().code, SdkErrorCode::unknown_type) << off_by_one_byte(type, at);
    }
  }
  for (std::string kind : {"offer", "answer", "candidate", "bye"}) {
    for (size_t at = 0; at < kind.size(); ++at) {
      Padded other("{\"type\":\"signal\",\"to\":\"p\",\"kind\":\"" + off_by_one_byte(kind, at) + "\",\"data\":1}");
      auto o = parse(parser, other);
      ASSERT_FALSE(o);
      EXPECT_EQ(o.error().message, "kind: must be offer, answer, candidate or bye") << off_by_one_byte(kind, at);
    }
  }
  // Keys of 2 to 18 bytes: a near miss is an unknown field, ignored.
  struct Field {
    std::string key, value;
  };
  for (const Field& f : std::vector<Field>{{"to", "\"q\""}, {"streamId", "\"s\""}, {"rendition", "\"r\""},
                                           {"peerId", "\"p\""}, {"session", "\"x\""}, {"p2pBytes", "1"},
                                           {"uploadedBytes", "1"}, {"connectedProposals", "1"}}) {
    Padded exact("{\"type\":\"ping\",\"" + f.key + "\":" + f.value + "}");
    ASSERT_TRUE(parse(parser, exact)) << f.key;
    for (size_t at = 0; at < f.key.size(); ++at) {
      const std::string key = off_by_one_byte(f.key, at);
      Padded other("{\"type\":\"stats\",\"" + key + "\":\"not a number\"}");
      EXPECT_TRUE(parse(parser, other)) << key << " was read as " << f.key;
    }
  }
}

TEST(SdkMessage, NeedPeersCountAndExclude) {
  SdkMessageParser parser;
  Padded text(R"({"type":"need-peers","count":5,"exclude":["a","b","c"]})");
  auto r = parse(parser, text);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, MessageType::need_peers);
  EXPECT_TRUE(r->has_count);
  EXPECT_EQ(r->count, 5u);
  ASSERT_EQ(r->exclude.size(), 3u);
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

// Every byte value at every position of every length up to 40 is judged as
// docs/protocol.md section 2 defines an identifier's bytes.
TEST(SdkIdentifier, EveryByteAtEveryPositionOfEveryLength) {
  const auto allowed = [](unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == ':' || c == '-';
  };
  for (size_t size = 1; size <= 40; ++size) {
    for (size_t at = 0; at < size; ++at) {
      for (int value = 0; value < 256; ++value) {
        std::string text(size, 'k');
        text[at] = static_cast<char>(value);
        ASSERT_EQ(is_valid_identifier(text), allowed(static_cast<unsigned char>(value)))
            << "byte " << value << " at " << at << " of " << size;
      }
    }
  }
}

// The compact signal's scan of `to` (json_scan::identifier_run, a block at
// a time) judges every byte at every position of every length as the walk
// does, across and beyond a block.
TEST(SdkIdentifier, TheCompactSignalsToIsJudgedAsTheWalkJudgesIt) {
  for (size_t size = 1; size <= 2 * json_scan::string_block + 1; ++size) {
    for (size_t at = 0; at < size; ++at) {
      for (int value = 0; value < 256; ++value) {
        std::string to(size, 'k');
        to[at] = static_cast<char>(value);
        expect_same_as_walk(compact_signal(to, "offer", "{}"));
      }
    }
  }
  for (size_t size : {size_t{127}, size_t{128}, size_t{129}}) {
    const Padded text(compact_signal(std::string(size, 'q'), "bye", "{}"));
    SignalFields signal;
    EXPECT_EQ(read_compact_signal(text.view(), signal), size <= max_identifier_bytes) << size;
    expect_same_as_walk(text.view());
  }
}

TEST(SdkIdentifier, IdentifierRunStopsAtTheFirstOtherByte) {
  std::string block(json_scan::string_block + 64, 'a');
  EXPECT_EQ(json_scan::identifier_run(block.data()), json_scan::string_block);
  for (size_t at = 0; at < json_scan::string_block; ++at) {
    for (int value = 0; value < 256; ++value) {
      std::string text(json_scan::string_block + 64, 'Z');
      text[at] = static_cast<char>(value);
      const size_t expected = is_valid_identifier(std::string(1, static_cast<char>(value))) ? json_scan::string_block : at;
      ASSERT_EQ(json_scan::identifier_run(text.data()), expected) << "byte " << value << " at " << at;
    }
  }
}

// ---- one walk: what the walk must still refuse and keep ----------------------

std::string signal_with_data(std::string_view data) {
  return std::string(R"({"type":"signal","to":"peer-2","kind":"offer","data":)") + std::string(data) + "}";
}

std::string_view bad_json_message(SdkMessageParser& parser, std::string_view text) {
  Padded padded(text);
  auto r = parser.parse(padded.view());
  if (r || r.error().code != SdkErrorCode::bad_json) return "accepted as JSON";
  return r.error().message;
}

TEST(SdkMessageOneWalk, NestedDataIsKeptByteForByte) {
  SdkMessageParser parser;
  const std::string data =
      R"({ "sdp" : "v=0\r\n\u0061=x \/ \"q\"" , "a":[ {"b":[[],{}]} , -0.5E+2, 1e400, true,false,null ],)"
      R"("u":"\ud83d\ude00 \u00e9 é ☃ 😀 \u0000" })";
  Padded text(signal_with_data(data));
  auto r = parser.parse(text.view());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->signal.data_raw, data);
}

TEST(SdkMessageOneWalk, InvalidUtf8InsideDataIsNotJson) {
  SdkMessageParser parser;
  for (std::string bytes : {"\xc0\x80", "\xed\xa0\x80", "\xf5\x80\x80\x80", "\xe2\x82", "\x80", "\xf4\x90\x80\x80",
                            "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xc2", "\xff"}) {
    EXPECT_EQ(bad_json_message(parser, signal_with_data("{\"sdp\":\"a" + bytes + "b\"}")), "not valid JSON") << bytes;
    EXPECT_EQ(bad_json_message(parser, signal_with_data("[\"" + bytes + "\"]")), "not valid JSON") << bytes;
  }
  // The longest forms at the edges of the ranges are valid.
  for (std::string bytes : {"\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80", "\xf0\x90\x80\x80",
                            "\xf4\x8f\xbf\xbf", "\x7f"}) {
    Padded text(signal_with_data("\"" + bytes + "\""));
    EXPECT_TRUE(parser.parse(text.view())) << bytes;
  }
}

TEST(SdkMessageOneWalk, ControlCharactersAndEscapes) {
  SdkMessageParser parser;
  for (std::string bad : {std::string("\"a\x01\""), std::string("\"a\tb\""), std::string("\"a\n\""), std::string("\"\\\x01\""),
                          std::string("\"\\x\""), std::string("\"\\u12G4\""), std::string("\"\\u123\""),
                          std::string("\"\\udc00\""), std::string("\"\\ud800\""), std::string("\"\\ud800x\""),
                          std::string("\"\\ud800\\u0041\""), std::string("\"\\ud800\\ud800\""), std::string("\"\\'\""),
                          std::string("\"\\U0041\""), std::string("\"a"), std::string("\"\\\"")}) {
    EXPECT_EQ(bad_json_message(parser, signal_with_data(bad)), "not valid JSON") << bad;
  }
  for (std::string good : {"\"\\u0000\"", "\"\\ud83d\\ude00\"", "\"\\uDBFF\\uDFFF\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
                           "\"\\uFFFF\"", "\"\x7f\""}) {
    Padded text(signal_with_data(good));
    auto r = parser.parse(text.view());
    ASSERT_TRUE(r) << good;
    EXPECT_EQ(r->signal.data_raw, good);
  }
}

TEST(SdkMessageOneWalk, EscapedKeysAndValuesAreReadUnescaped) {
  SdkMessageParser parser;
  Padded text(R"({"\u0074ype":"si\u0067nal","t\u006f":"p\u0041","kin\u0064":"bye","\u0064ata":1,"id":"\u00e9"})");
  auto r = parser.parse(text.view());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->type, MessageType::signal);
  EXPECT_EQ(r->signal.to, "pA");
  EXPECT_EQ(r->signal.kind, SignalKind::bye);
  EXPECT_EQ(r->signal.data_raw, "1");
  EXPECT_EQ(r->id_raw, R"("\u00e9")");
  Padded join(R"({"type":"join","streamId":"s\u002d1","rendition":"r","peerId":"p","session":"a\nb",)"
              R"("topology":{"r\u0065gion":"\u00e9u"},"exclude":["x\u0031"]})");
  auto j = parser.parse(join.view());
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_EQ(j->stream_id, "s-1");
  EXPECT_EQ(j->session, "a\nb");
  EXPECT_EQ(j->topology.region, "\xc3\xa9u");
  ASSERT_EQ(j->exclude.size(), 1u);
  EXPECT_EQ(j->exclude[0], "x1");
  // An escape that unescapes to a character outside the identifier set.
  Padded bad_to(R"({"type":"signal","to":"p\u0020q","kind":"bye","data":1})");
  EXPECT_EQ(parser.parse(bad_to.view()).error().message, "to: must be a peerId (1..128 bytes of [A-Za-z0-9._:-])");
  // The unknown type is quoted unescaped.
  Padded unknown(R"({"type":"\u00e9t\u00e9"})");
  EXPECT_EQ(parser.parse(unknown.view()).error().detail, "\xc3\xa9t\xc3\xa9");
}

TEST(SdkMessageOneWalk, IdAndSessionLimitsCountUnescapedBytes) {
  SdkMessageParser parser;
  std::string escaped_64, escaped_65;
  for (int i = 0; i < 64; ++i) escaped_64 += "\\u0041";
  escaped_65 = escaped_64 + "\\u0041";
  Padded ok("{\"type\":\"ping\",\"id\":\"" + escaped_64 + "\"}");
  auto r = parser.parse(ok.view());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id_raw, "\"" + escaped_64 + "\"");
  Padded long_id("{\"type\":\"ping\",\"id\":\"" + escaped_65 + "\"}");
  EXPECT_EQ(parser.parse(long_id.view()).error().message, "id: string longer than 64 bytes");
  std::string session_128 = escaped_64 + escaped_64;
  Padded session("{\"type\":\"join\",\"streamId\":\"s\",\"rendition\":\"r\",\"peerId\":\"p\",\"session\":\"" + session_128 + "\"}");
  auto s = parser.parse(session.view());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->session, std::string(128, 'A'));
  Padded long_session("{\"type\":\"join\",\"streamId\":\"s\",\"rendition\":\"r\",\"peerId\":\"p\",\"session\":\"" + session_128 +
                      "B\"}");
  EXPECT_EQ(parser.parse(long_session.view()).error().message, "session: must be a string of at most 128 bytes");
}

TEST(SdkMessageOneWalk, DuplicatedKeys) {
  SdkMessageParser parser;
  Padded twice(R"({"type":"ping","type":"signal","to":"a","to":"b","kind":"offer","data":1,"data":[2]})");
  auto r = parser.parse(twice.view());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, MessageType::signal);
  EXPECT_EQ(r->signal.to, "b");
  EXPECT_EQ(r->signal.data_raw, "[2]");
  for (std::string text : {R"({"type":"ping","type":5})", R"({"type":5,"type":"ping"})"}) {
    Padded p(text);
    EXPECT_EQ(parser.parse(p.view()).error().message, "type: must be a string") << text;
  }
  Padded ids(R"({"id":"a","type":"ping","id":{}})");
  auto i = parser.parse(ids.view());
  ASSERT_FALSE(i);
  EXPECT_EQ(i.error().message, "id: must be a string or a number");
  EXPECT_EQ(i.error().id_raw, R"("a")");
  Padded excludes(R"({"type":"need-peers","exclude":["a"],"exclude":["b","c"]})");
  auto e = parser.parse(excludes.view());
  ASSERT_TRUE(e);
  ASSERT_EQ(e->exclude.size(), 3u);
  EXPECT_EQ(e->exclude[2], "c");
}

TEST(SdkMessageOneWalk, TrailingDataAndNonObjects) {
  SdkMessageParser parser;
  for (std::string text : {"{} x", "{}}", "{} {}", "{}\x01", "{} \"closed\"", "{} \\\"", "{}]", "{} 1"}) {
    EXPECT_EQ(bad_json_message(parser, text), "trailing data after the JSON object") << text;
  }
  // simdjson's first pass looked at the whole text: an unclosed string, a
  // control character in a string or bad UTF-8 anywhere made it not JSON.
  for (std::string text : {"{} \"open", "{} \"a\x01\"", "{} \xff", "{} \\\"\"", "[1,\"a", "[\xc3]", "\"a\x1f\"", "x", "", " \t\r\n",
                           "\x0b{}", "{}\"", "}", ",", "\xef\xbb\xbf{}", "+1", ".5"}) {
    EXPECT_EQ(bad_json_message(parser, text), "not valid JSON") << text;
  }
  for (std::string text : {"[1,", "[", "\"open\" x", "nope", "true", "falsey", "-", "0 0", "123abc", " \n[]", "\"\\\"\"", "[\"\\x\"]"}) {
    EXPECT_EQ(bad_json_message(parser, text), "not a JSON object") << text;
  }
  Padded spaced(" \t\r\n{ \t\r\n\"type\" \t\r\n: \t\r\n\"ping\" \t\r\n} \t\r\n");
  EXPECT_TRUE(parser.parse(spaced.view()));
}

TEST(SdkMessageOneWalk, GrammarErrorsInsideTheObject) {
  SdkMessageParser parser;
  for (std::string text :
       {R"({"type":"ping",})", R"({,"type":"ping"})", R"({"type":"ping",,"t":1})", R"({"type""ping"})", R"({"type":"ping" "t":1})",
        R"({"type":"ping","t":[1,]})", R"({"type":"ping","t":[,1]})", R"({"type":"ping","t":[1 2]})", R"({"type":"ping","t":{"a"}})",
        R"({"type":"ping","t":{"a":}})", R"({"type":"ping","t":{1:2}})", R"({"type":"ping","t":tru})", R"({"type":"ping","t":nul})",
        R"({"type":"ping","t":truex})", R"({"type":"ping","t":True})", R"({"type":"ping","t":1x})", R"({"type":"ping","t":"a"b})",
        R"({"type":"ping","t":[1}})", R"({"type":"ping","t":{"a":1]})", R"({"type":"ping","t":01})", R"({"type":"ping","t":-01})",
        R"({"type":"ping","t":1.})", R"({"type":"ping","t":1e+})", R"({"type":"ping","t":Infinity})", R"({"type":"ping","t":NaN})",
        R"({"type":"ping","t":'a'})", R"({"type":"ping","t":1)", R"({"type":"ping","t":[1,2)", R"({"type":"ping")", R"({"type")",
        R"({"type":)", "{\"type\":\"ping\"\x0b}", R"({"type":"ping","t":"\u00"})"}) {
    EXPECT_EQ(bad_json_message(parser, text), "not valid JSON") << text;
  }
}

// A value deeper than max_json_depth (the root is at depth 0) is refused,
// whatever its type; an empty container at the limit is not.
TEST(SdkMessageOneWalk, NestingLimit) {
  SdkMessageParser parser;
  auto arrays = [](size_t depth, std::string_view inner) {
    return std::string(depth, '[') + std::string(inner) + std::string(depth, ']');
  };
  auto objects = [](size_t depth, std::string_view inner) {
    std::string text;
    for (size_t i = 0; i < depth; ++i) text += "{\"a\":";
    text += inner;
    text += std::string(depth, '}');
    return text;
  };
  // `t` is at depth 1: k containers around a scalar put it at depth k + 1.
  for (auto nest : {+arrays, +objects}) {
    Padded scalar_at_limit("{\"type\":\"ping\",\"t\":" + nest(max_json_depth - 1, "1") + "}");
    EXPECT_TRUE(parser.parse(scalar_at_limit.view()));
    Padded empty_at_limit("{\"type\":\"ping\",\"t\":" + nest(max_json_depth - 1, "[]") + "}");
    EXPECT_TRUE(parser.parse(empty_at_limit.view()));
    Padded scalar_beyond("{\"type\":\"ping\",\"t\":" + nest(max_json_depth, "1") + "}");
    EXPECT_EQ(bad_json_message(parser, scalar_beyond.view()), "not valid JSON");
    Padded empty_beyond("{\"type\":\"ping\",\"t\":" + nest(max_json_depth, "{}") + "}");
    EXPECT_EQ(bad_json_message(parser, empty_beyond.view()), "not valid JSON");
  }
  Padded deep_data(signal_with_data(arrays(max_json_depth, "")));
  EXPECT_TRUE(parser.parse(deep_data.view()));
  Padded too_deep_data(signal_with_data(arrays(max_json_depth + 1, "")));
  EXPECT_EQ(bad_json_message(parser, too_deep_data.view()), "not valid JSON");
  // Deep nesting in a field the edge reads member by member.
  Padded deep_caps(R"({"type":"update","caps":{"x":)" + arrays(max_json_depth - 1, "") + "}}");
  EXPECT_TRUE(parser.parse(deep_caps.view()));
  Padded too_deep_caps(R"({"type":"update","caps":{"x":)" + arrays(max_json_depth, "") + "}}");
  EXPECT_EQ(bad_json_message(parser, too_deep_caps.view()), "not valid JSON");
}

TEST(SdkMessageOneWalk, SizeLimit) {
  SdkMessageParser parser;
  const std::string head = R"({"type":"ping","t":")";
  std::string at_limit = head + std::string(max_sdk_message_text_bytes - head.size() - 2, 'x') + "\"}";
  ASSERT_EQ(at_limit.size(), max_sdk_message_text_bytes);
  Padded fits(at_limit);
  EXPECT_TRUE(parser.parse(fits.view()));
  std::string over = head + std::string(max_sdk_message_text_bytes - head.size() - 1, 'x') + "\"}";
  EXPECT_EQ(bad_json_message(parser, over), "not valid JSON");
}

TEST(SdkMessageOneWalk, IntegersAsBefore) {
  SdkMessageParser parser;
  Padded zero(R"({"type":"stats","p2pBytes":-0,"cdnBytes":0,"uploadedBytes":18446744073709551615})");
  auto r = parser.parse(zero.view());
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->has_p2p_bytes);
  EXPECT_EQ(r->p2p_bytes, 0u);
  EXPECT_EQ(r->uploaded_bytes, 18446744073709551615ull);
  for (std::string bad : {"18446744073709551616", "99999999999999999999", "1e3", "1.0", "-1", "1E0", "\"1\"", "null"}) {
    Padded p("{\"type\":\"stats\",\"cdnBytes\":" + bad + "}");
    EXPECT_EQ(parser.parse(p.view()).error().message, "cdnBytes: must be an integer >= 0") << bad;
  }
  Padded asn(R"({"type":"update","topology":{"asn":-0}})");
  auto a = parser.parse(asn.view());
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->topology.has_asn);
  EXPECT_EQ(a->topology.asn, 0);
  Padded asn_max(R"({"type":"update","topology":{"asn":4294967295}})");
  EXPECT_EQ(parser.parse(asn_max.view())->topology.asn, 4294967295LL);
  for (std::string bad : {"4294967296", "-1", "9223372036854775808", "-9223372036854775809", "1.5"}) {
    Padded p("{\"type\":\"update\",\"topology\":{\"asn\":" + bad + "}}");
    EXPECT_EQ(parser.parse(p.view()).error().message, "topology.asn: must be an integer 0..4294967295") << bad;
  }
  Padded count(R"({"type":"need-peers","count":-0})");
  EXPECT_EQ(parser.parse(count.view()).error().message, "count: must be an integer 1..64");
  Padded max_peers(R"({"type":"update","caps":{"maxPeers":64,"uploadKbps":-0}})");
  auto m = parser.parse(max_peers.view());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->caps.max_peers, 64u);
  EXPECT_TRUE(m->caps.has_upload_kbps);
}

// The JSON verdict is the one simdjson's On-Demand validation (still used
// for tracker messages, edge/json_document.h) gives the same text.
TEST(SdkMessageOneWalk, SameVerdictAsTheOnDemandValidator) {
  SdkMessageParser parser;
  simdjson::ondemand::parser reference(max_sdk_message_text_bytes);
  std::vector<std::string> texts = {
      "", " ", "{}", "{} ", "{}x", "{}}", "[]", "[", "\"a", "\"a\"", "nul", "null", "{\"a\":1}", "{\"a\":01}", "{\"a\":\"\\x\"}",
      "{\"a\":\"\x01\"}", "{\"a\":\"\xff\"}", "{\"a\":[1,{\"b\":[true,false,null,\"\\ud83d\\ude00\",-1.5e-3]}]}",
      "{\"a\":1} \"b", "{\"a\":1} \\\"", "{\"a\":1}\xc3", "[\xc3", "{\"a\"\x00:1}", "{\"a\":1e400,\"b\":-123456789012345678901234}",
      "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":[1,]}", "{\"a\":{}}{", "{\"\\u0000\":0}", "\t{\"a\":[]}\r\n"};
  for (size_t depth : {max_json_depth - 1, max_json_depth, max_json_depth + 1})
    texts.push_back("{\"a\":" + std::string(depth, '[') + std::string(depth, ']') + "}");
  for (const std::string& text : texts) {
    Padded padded(text);
    std::string_view expected = "valid";
    simdjson::ondemand::document doc;
    if (reference.iterate(simdjson::padded_string_view(padded.view().data(), text.size(), padded.storage.size()))
            .get(doc)) {
      expected = "not valid JSON";
    } else {
      switch (check_object_document(doc)) {
        case DocumentCheck::object: break;
        case DocumentCheck::not_json: expected = "not valid JSON"; break;
        case DocumentCheck::not_object: expected = "not a JSON object"; break;
        case DocumentCheck::trailing_data: expected = "trailing data after the JSON object"; break;
      }
    }
    auto r = parser.parse(padded.view());
    std::string_view got = (r || r.error().code != SdkErrorCode::bad_json) ? "valid" : r.error().message;
    EXPECT_EQ(got, expected) << text;
  }
}

}  // namespace
}  // namespace mf::edge
