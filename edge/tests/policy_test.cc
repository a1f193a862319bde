#include "edge/policy.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

namespace mf::edge {
namespace {

using CmafMode = Policy::CmafMode;

PolicyDocument parse_ok(std::string_view json) {
  auto document = PolicyDocument::parse(json);
  EXPECT_TRUE(document.has_value()) << json << " -> " << (document ? "" : document.error());
  return document ? *document : PolicyDocument();
}

std::string parse_error(std::string_view json) {
  auto document = PolicyDocument::parse(json);
  EXPECT_FALSE(document.has_value()) << json;
  return document ? std::string() : document.error();
}

std::string json_of(const Policy& policy) {
  char buffer[max_policy_json_bytes];
  size_t size = write_policy_json(buffer, policy);
  EXPECT_GT(size, 0u);
  return std::string(buffer, size);
}

TEST(Policy, BuiltInDefaults) {
  Policy policy;
  EXPECT_TRUE(policy.mesh_enabled);
  EXPECT_EQ(policy.max_peers, 8u);
  EXPECT_EQ(policy.max_viewers, 0u);
  EXPECT_EQ(policy.upload_cap_kbps, 0u);
  EXPECT_EQ(policy.cmaf_mode, CmafMode::off);
  EXPECT_EQ(policy.offer_timeout_ms, 10000u);
}

TEST(Policy, WritesTheSpecObjectExactly) {
  EXPECT_EQ(json_of(Policy{}),
            R"({"meshEnabled":true,"maxPeers":8,"maxViewers":0,"uploadCapKbps":0,"cmafMode":"off","offerTimeoutMs":10000})");
  Policy policy{.mesh_enabled = false,
                .max_peers = 3,
                .max_viewers = 5000,
                .upload_cap_kbps = 2500,
                .cmaf_mode = CmafMode::advertise_only,
                .offer_timeout_ms = 4000};
  EXPECT_EQ(json_of(policy),
            R"({"meshEnabled":false,"maxPeers":3,"maxViewers":5000,"uploadCapKbps":2500,"cmafMode":"advertise-only","offerTimeoutMs":4000})");
  policy.cmaf_mode = CmafMode::on;
  EXPECT_NE(json_of(policy).find(R"("cmafMode":"on")"), std::string::npos);
}

TEST(Policy, WidestPolicyFitsTheDeclaredMaximum) {
  Policy widest{.mesh_enabled = false,
                .max_peers = 4294967295u,
                .max_viewers = 4294967295u,
                .upload_cap_kbps = 4294967295u,
                .cmaf_mode = CmafMode::advertise_only,
                .offer_timeout_ms = 4294967295u};
  EXPECT_LE(json_of(widest).size(), max_policy_json_bytes);
}

TEST(Policy, TooSmallBufferWritesNothingUsable) {
  char buffer[40];
  EXPECT_EQ(write_policy_json(buffer, Policy{}), 0u);
  EXPECT_EQ(write_policy_json(std::span<char>(), Policy{}), 0u);
}

TEST(Policy, CmafModeText) {
  EXPECT_EQ(cmaf_mode_text(CmafMode::off), "off");
  EXPECT_EQ(cmaf_mode_text(CmafMode::advertise_only), "advertise-only");
  EXPECT_EQ(cmaf_mode_text(CmafMode::on), "on");
}

TEST(PolicyDocument, EmptyDocumentGivesBuiltInDefaults) {
  for (std::string_view json : {"{}", R"({"defaults":{}})", R"({"streams":{}})", " { \"defaults\" : { } , \"streams\" : { } } "}) {
    PolicyDocument document = parse_ok(json);
    EXPECT_EQ(document.defaults(), Policy{}) << json;
    EXPECT_EQ(document.effective("any"), Policy{}) << json;
    EXPECT_TRUE(document.stream_ids().empty());
    EXPECT_EQ(document.version(), PolicyDocument().version()) << json;
  }
}

TEST(PolicyDocument, EveryFieldInDefaults) {
  PolicyDocument document = parse_ok(
      R"({"defaults":{"meshEnabled":false,"maxPeers":12,"maxViewers":100000,"uploadCapKbps":3000,"cmafMode":"on","offerTimeoutMs":15000}})");
  Policy expected{.mesh_enabled = false,
                  .max_peers = 12,
                  .max_viewers = 100000,
                  .upload_cap_kbps = 3000,
                  .cmaf_mode = CmafMode::on,
                  .offer_timeout_ms = 15000};
  EXPECT_EQ(document.defaults(), expected);
  EXPECT_EQ(document.effective("unnamed"), expected);
}

TEST(PolicyDocument, MergesPerField) {
  PolicyDocument document = parse_ok(R"({
    "streams": {
      "live-1": {"maxPeers": 4},
      "live-2": {"meshEnabled": false, "cmafMode": "advertise-only"}
    },
    "defaults": {"maxViewers": 500, "maxPeers": 10}
  })");
  // Built-in, then defaults, then the stream's own fields; `defaults` after
  // `streams` in the text changes nothing.
  Policy defaults = document.defaults();
  EXPECT_EQ(defaults.max_peers, 10u);
  EXPECT_EQ(defaults.max_viewers, 500u);
  EXPECT_TRUE(defaults.mesh_enabled);
  EXPECT_EQ(defaults.offer_timeout_ms, 10000u);

  Policy one = document.effective("live-1");
  EXPECT_EQ(one.max_peers, 4u);
  EXPECT_EQ(one.max_viewers, 500u);
  EXPECT_TRUE(one.mesh_enabled);

  Policy two = document.effective("live-2");
  EXPECT_FALSE(two.mesh_enabled);
  EXPECT_EQ(two.cmaf_mode, CmafMode::advertise_only);
  EXPECT_EQ(two.max_peers, 10u);
  EXPECT_EQ(two.max_viewers, 500u);

  EXPECT_EQ(document.effective("live-3"), defaults);
  EXPECT_EQ(document.effective(""), defaults);
  EXPECT_TRUE(document.names_stream("live-1"));
  EXPECT_FALSE(document.names_stream("live-3"));
  EXPECT_EQ(document.stream_ids(), (std::vector<std::string>{"live-1", "live-2"}));
}

TEST(PolicyDocument, RangeEdgesAccepted) {
  PolicyDocument low = parse_ok(R"({"defaults":{"maxPeers":0,"maxViewers":0,"uploadCapKbps":0,"offerTimeoutMs":1000}})");
  EXPECT_EQ(low.defaults().max_peers, 0u);
  EXPECT_EQ(low.defaults().offer_timeout_ms, 1000u);
  PolicyDocument high = parse_ok(
      R"({"defaults":{"maxPeers":64,"maxViewers":4294967295,"uploadCapKbps":4294967295,"offerTimeoutMs":120000}})");
  EXPECT_EQ(high.defaults().max_peers, 64u);
  EXPECT_EQ(high.defaults().max_viewers, 4294967295u);
  EXPECT_EQ(high.defaults().upload_cap_kbps, 4294967295u);
  EXPECT_EQ(high.defaults().offer_timeout_ms, 120000u);
}

TEST(PolicyDocument, StreamIdsPerSpecSectionTwo) {
  std::string longest(128, 'a');
  PolicyDocument document = parse_ok(R"({"streams":{"A-z_0.9:x":{},")" + longest + R"(":{"maxPeers":1}}})");
  EXPECT_EQ(document.effective(longest).max_peers, 1u);
  EXPECT_EQ(document.effective("A-z_0.9:x"), Policy{});

  EXPECT_EQ(parse_error(R"({"streams":{"":{}}})"),
            R"(streams: "" is not a valid streamId (1..128 bytes of [A-Za-z0-9._:-]))");
  EXPECT_EQ(parse_error(R"({"streams":{"a b":{}}})"),
            R"(streams: "a b" is not a valid streamId (1..128 bytes of [A-Za-z0-9._:-]))");
  std::string too_long(129, 'a');
  EXPECT_NE(parse_error(R"({"streams":{")" + too_long + R"(":{}}})").find("is not a valid streamId"), std::string::npos);
  EXPECT_NE(parse_error(R"({"streams":{"caf\u00e9":{}}})").find("is not a valid streamId"), std::string::npos);
  EXPECT_NE(parse_error(R"({"streams":{"a/b":{}}})").find("is not a valid streamId"), std::string::npos);
}

TEST(PolicyDocument, ErrorsQuoteHostileTextOnOneLine) {
  std::string error = parse_error(R"({"streams":{"a\nb\"c\\":{}}})");
  EXPECT_EQ(error, R"(streams: "a\x0ab\"c\\" is not a valid streamId (1..128 bytes of [A-Za-z0-9._:-]))");
  std::string long_key(300, 'k');
  error = parse_error(R"({")" + long_key + R"(":1})");
  EXPECT_EQ(error, "unknown top-level field \"" + std::string(64, 'k') + "...\" (expected defaults or streams)");
}

TEST(PolicyDocument, NotJsonOrNotAnObject) {
  EXPECT_EQ(parse_error("").rfind("not valid JSON: ", 0), 0u);
  EXPECT_EQ(parse_error("{").rfind("not valid JSON: ", 0), 0u);
  EXPECT_EQ(parse_error(R"({"defaults":{}} x)").rfind("not valid JSON: ", 0), 0u);
  EXPECT_EQ(parse_error("{\"defaults\":{\"cmafMode\":\"\xff\"}}").rfind("not valid JSON: ", 0), 0u);
  EXPECT_EQ(parse_error("[]"), "the document must be a JSON object (got an array)");
  EXPECT_EQ(parse_error("42"), "the document must be a JSON object (got an integer)");
  EXPECT_EQ(parse_error("null"), "the document must be a JSON object (got null)");
}

TEST(PolicyDocument, UnknownFieldsAreNamed) {
  EXPECT_EQ(parse_error(R"({"default":{}})"), R"(unknown top-level field "default" (expected defaults or streams))");
  EXPECT_EQ(parse_error(R"({"defaults":{"maxpeers":3}})"),
            R"(defaults: unknown field "maxpeers" (expected meshEnabled, maxPeers, maxViewers, uploadCapKbps, cmafMode or offerTimeoutMs))");
  EXPECT_EQ(parse_error(R"({"streams":{"s1":{"maxPeers":3,"colour":"red"}}})"),
            R"(streams."s1": unknown field "colour" (expected meshEnabled, maxPeers, maxViewers, uploadCapKbps, cmafMode or offerTimeoutMs))");
}

TEST(PolicyDocument, DuplicatesAreErrors) {
  EXPECT_EQ(parse_error(R"({"defaults":{},"defaults":{}})"), R"(duplicate top-level field "defaults")");
  EXPECT_EQ(parse_error(R"({"streams":{},"streams":{}})"), R"(duplicate top-level field "streams")");
  EXPECT_EQ(parse_error(R"({"defaults":{"maxPeers":1,"maxPeers":2}})"), R"(defaults: duplicate field "maxPeers")");
  EXPECT_EQ(parse_error(R"({"defaults":{"meshEnabled":true,"meshEnabled":false}})"),
            R"(defaults: duplicate field "meshEnabled")");
  EXPECT_EQ(parse_error(R"({"defaults":{"cmafMode":"on","cmafMode":"off"}})"), R"(defaults: duplicate field "cmafMode")");
  EXPECT_EQ(parse_error(R"({"streams":{"s":{"maxPeers":1},"s":{"maxPeers":2}}})"), R"(streams: duplicate streamId "s")");
}

TEST(PolicyDocument, TypeErrors) {
  EXPECT_EQ(parse_error(R"({"defaults":[]})"), "defaults: must be an object (got an array)");
  EXPECT_EQ(parse_error(R"({"streams":[]})"), "streams: must be an object keyed by streamId (got an array)");
  EXPECT_EQ(parse_error(R"({"streams":{"s":true}})"), R"(streams."s": must be an object (got a boolean))");
  EXPECT_EQ(parse_error(R"({"defaults":{"meshEnabled":1}})"),
            "defaults.meshEnabled: must be true or false (got an integer)");
  EXPECT_EQ(parse_error(R"({"defaults":{"meshEnabled":"true"}})"),
            "defaults.meshEnabled: must be true or false (got a string)");
  EXPECT_EQ(parse_error(R"({"defaults":{"maxPeers":"8"}})"), "defaults.maxPeers: must be an integer 0..64 (got a string)");
  EXPECT_EQ(parse_error(R"({"defaults":{"maxPeers":8.0}})"),
            "defaults.maxPeers: must be an integer 0..64 (got a non-integer number)");
  EXPECT_EQ(parse_error(R"({"defaults":{"maxPeers":null}})"), "defaults.maxPeers: must be an integer 0..64 (got null)");
  EXPECT_EQ(parse_error(R"({"defaults":{"maxViewers":{}}})"),
            "defaults.maxViewers: must be an integer 0..4294967295 (got an object)");
  EXPECT_EQ(parse_error(R"({"defaults":{"uploadCapKbps":true}})"),
            "defaults.uploadCapKbps: must be an integer 0..4294967295 (got a boolean)");
  EXPECT_EQ(parse_error(R"({"defaults":{"offerTimeoutMs":1e4}})"),
            "defaults.offerTimeoutMs: must be an integer 1000..120000 (got a non-integer number)");
  EXPECT_EQ(parse_error(R"({"defaults":{"cmafMode":1}})"),
            R"(defaults.cmafMode: must be "off", "advertise-only" or "on" (got an integer))");
}

TEST(PolicyDocument, RangeErrors) {
  EXPECT_EQ(parse_error(R"({"defaults":{"maxPeers":65}})"), "defaults.maxPeers: must be an integer 0..64 (got 65)");
  EXPECT_EQ(parse_error(R"({"defaults":{"maxPeers":-1}})"), "defaults.maxPeers: must be an integer 0..64 (got -1)");
  EXPECT_EQ(parse_error(R"({"defaults":{"maxViewers":4294967296}})"),
            "defaults.maxViewers: must be an integer 0..4294967295 (got 4294967296)");
  EXPECT_EQ(parse_error(R"({"defaults":{"uploadCapKbps":18446744073709551615}})"),
            "defaults.uploadCapKbps: must be an integer 0..4294967295 (got 18446744073709551615)");
  EXPECT_EQ(parse_error(R"({"defaults":{"offerTimeoutMs":999}})"),
            "defaults.offerTimeoutMs: must be an integer 1000..120000 (got 999)");
  EXPECT_EQ(parse_error(R"({"defaults":{"offerTimeoutMs":120001}})"),
            "defaults.offerTimeoutMs: must be an integer 1000..120000 (got 120001)");
  EXPECT_EQ(parse_error(R"({"streams":{"s":{"maxPeers":100}}})"),
            R"(streams."s".maxPeers: must be an integer 0..64 (got 100))");
  EXPECT_EQ(parse_error(R"({"defaults":{"cmafMode":"advertise_only"}})"),
            R"(defaults.cmafMode: must be "off", "advertise-only" or "on" (got "advertise_only"))");
  EXPECT_EQ(parse_error(R"({"defaults":{"cmafMode":"ON"}})"),
            R"(defaults.cmafMode: must be "off", "advertise-only" or "on" (got "ON"))");
}

TEST(PolicyDocument, SerializedPolicyRoundTrips) {
  PolicyDocument document = parse_ok(
      R"({"defaults":{"maxPeers":5,"uploadCapKbps":800},"streams":{"s":{"meshEnabled":false,"cmafMode":"advertise-only","offerTimeoutMs":2000,"maxViewers":7}}})");
  for (std::string_view stream : {"s", "other"}) {
    Policy policy = document.effective(stream);
    std::string json = json_of(policy);
    // The written object is a valid partial policy naming every field.
    PolicyDocument again = parse_ok("{\"defaults\":" + json + "}");
    EXPECT_EQ(again.defaults(), policy) << json;
    // And valid JSON to an independent validating parser.
    simdjson::dom::parser parser;
    simdjson::dom::element element;
    EXPECT_EQ(parser.parse(json).get(element), simdjson::SUCCESS) << json;
  }
}

TEST(PolicyDocument, VersionFollowsContentNotFormatting) {
  PolicyDocument a = parse_ok(R"({"defaults":{"maxPeers":5},"streams":{"x":{"meshEnabled":false},"y":{}}})");
  PolicyDocument b = parse_ok(R"({ "streams" : { "y" : { }, "x" : { "meshEnabled" : false } }, "defaults" : { "maxPeers" : 5 } })");
  EXPECT_EQ(a.version(), b.version());
  PolicyDocument c = parse_ok(R"({"defaults":{"maxPeers":6},"streams":{"x":{"meshEnabled":false},"y":{}}})");
  EXPECT_NE(a.version(), c.version());
  PolicyDocument d = parse_ok(R"({"defaults":{"maxPeers":5},"streams":{"x":{"meshEnabled":false}}})");
  EXPECT_NE(a.version(), d.version());
  PolicyDocument e = parse_ok(R"({"defaults":{"maxPeers":5},"streams":{"x":{"meshEnabled":true},"y":{}}})");
  EXPECT_NE(a.version(), e.version());
  EXPECT_NE(PolicyDocument().version(), 0u);
}

TEST(PolicyChanges, IdenticalDocumentsChangeNothing) {
  PolicyDocument a = parse_ok(R"({"defaults":{"maxPeers":5},"streams":{"x":{"meshEnabled":false}}})");
  PolicyDocument b = parse_ok(R"({"streams":{"x":{"meshEnabled":false}},"defaults":{"maxPeers":5}})");
  EXPECT_TRUE(streams_changed(a, b).empty());
  EXPECT_FALSE(defaults_changed(a, b));
}

TEST(PolicyChanges, StreamOverrideChanged) {
  PolicyDocument before = parse_ok(R"({"streams":{"x":{"maxPeers":4},"y":{"maxPeers":4}}})");
  PolicyDocument after = parse_ok(R"({"streams":{"x":{"maxPeers":5},"y":{"maxPeers":4}}})");
  EXPECT_EQ(streams_changed(before, after), std::vector<std::string>{"x"});
  EXPECT_FALSE(defaults_changed(before, after));
}

TEST(PolicyChanges, StreamAddedOrRemoved) {
  PolicyDocument none = parse_ok("{}");
  PolicyDocument one = parse_ok(R"({"streams":{"new":{"meshEnabled":false}}})");
  EXPECT_EQ(streams_changed(none, one), std::vector<std::string>{"new"});
  EXPECT_EQ(streams_changed(one, none), std::vector<std::string>{"new"});
  EXPECT_FALSE(defaults_changed(none, one));
}

TEST(PolicyChanges, EntryThatRepeatsTheDefaultsIsNoChange) {
  PolicyDocument none = parse_ok(R"({"defaults":{"maxPeers":6}})");
  PolicyDocument same = parse_ok(R"({"defaults":{"maxPeers":6},"streams":{"s":{"maxPeers":6}}})");
  EXPECT_TRUE(streams_changed(none, same).empty());
  EXPECT_FALSE(defaults_changed(none, same));
}

TEST(PolicyChanges, DefaultsChangeReachesNamedStreamsThatInheritIt) {
  PolicyDocument before = parse_ok(R"({"defaults":{"maxPeers":6},"streams":{"inherits":{"meshEnabled":false},"pins":{"maxPeers":3}}})");
  PolicyDocument after = parse_ok(R"({"defaults":{"maxPeers":7},"streams":{"inherits":{"meshEnabled":false},"pins":{"maxPeers":3}}})");
  EXPECT_TRUE(defaults_changed(before, after));
  // "pins" overrides the changed field itself: unaffected.
  EXPECT_EQ(streams_changed(before, after), std::vector<std::string>{"inherits"});
}

TEST(PolicyChanges, ResultIsSortedAndUnique) {
  PolicyDocument before = parse_ok(R"({"streams":{"c":{"maxPeers":1},"a":{"maxPeers":1},"b":{"maxPeers":1}}})");
  PolicyDocument after = parse_ok(R"({"streams":{"b":{"maxPeers":2},"c":{"maxPeers":2},"a":{"maxPeers":2}}})");
  EXPECT_EQ(streams_changed(before, after), (std::vector<std::string>{"a", "b", "c"}));
}

}  // namespace
}  // namespace mf::edge
