#include "origin/segment_manifest.h"

#include <gtest/gtest.h>

namespace mf::origin {
namespace {

SegmentManifest example() {
  SegmentManifest m;
  m.stream = "live-42";
  m.rendition = "720p:index";
  m.playlist = "index.m3u8";
  m.media_sequence = 7;
  m.issued_at = 1700000000;
  m.expires_at = 1700000003;
  m.init = ManifestInit{"init.mp4", DigestedBytes{720, sha256(std::string_view("init"))}};
  m.segments.push_back(ManifestSegment{"seg_7.m4s", 7, DigestedBytes{3, sha256(std::string_view("abc"))}, {}});
  m.segments.push_back(ManifestSegment{"seg \"8\".m4s", 8, DigestedBytes{10, sha256(std::string_view("x"))},
                                       {DigestedBytes{4, sha256(std::string_view("a"))},
                                        DigestedBytes{6, sha256(std::string_view("b"))}}});
  return m;
}

TEST(SegmentManifest, PayloadIsTheSpecsJson) {
  SegmentManifest m = example();
  m.init.reset();
  m.segments.resize(1);
  // sha256("abc") in base64url.
  EXPECT_EQ(manifest_payload_json(m),
            R"({"v":1,"stream":"live-42","rendition":"720p:index","playlist":"index.m3u8","mediaSequence":7,)"
            R"("issuedAt":1700000000,"expiresAt":1700000003,"segments":[{"uri":"seg_7.m4s","sn":7,"size":3,)"
            R"("sha256":"ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"}]})");
}

TEST(SegmentManifest, RoundTrip) {
  SegmentManifest m = example();
  auto back = parse_manifest_payload(manifest_payload_json(m));
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(*back, m);
}

TEST(SegmentManifest, BadPayloadsAreRefused) {
  EXPECT_EQ(parse_manifest_payload("[]").error(), "not a JSON object");
  EXPECT_EQ(parse_manifest_payload(R"({"v":2})").error(), "\"v\" is not 1");
  std::string json = manifest_payload_json(example());
  std::string short_digest = json;
  short_digest.replace(short_digest.find("\"sha256\":\"") + 10, 4, "");
  EXPECT_FALSE(parse_manifest_payload(short_digest));
  std::string no_segments = json.substr(0, json.find(",\"segments\"")) + "}";
  EXPECT_EQ(parse_manifest_payload(no_segments).error(), "\"segments\" is missing or not an array");
}

}  // namespace
}  // namespace mf::origin
