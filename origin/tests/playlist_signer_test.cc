// The signer and the verifier on real files in a scratch directory.
#include "origin/playlist_signer.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "origin/jws_compact.h"
#include "origin/manifest_verifier.h"
#include "origin/tests/bmff_test_box.h"

namespace mf::origin {
namespace {

void write(const std::string& path, std::string_view content) {
  std::ofstream(path, std::ios::binary) << content;
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

constexpr int64_t now = 1'800'000'000;

class PlaylistSignerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/mf-sign-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    root_ = pattern;
    dir_ = root_ + "/720p";
    ::mkdir(dir_.c_str(), 0755);
    auto key = P256PrivateKey::generate();
    ASSERT_TRUE(key);
    key_.emplace(std::move(*key));
    write(dir_ + "/init.mp4", bmff_test_box("ftyp", 16, 'i') + bmff_test_box("moov", 100, 'm'));
    for (int n = 5; n < 8; ++n) write(segment(n), segment_bytes(n));
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::string segment(int n) const { return dir_ + "/seg_" + std::to_string(n) + ".m4s"; }
  static std::string segment_bytes(int n) {
    return bmff_test_box("styp", 12, 's') + bmff_test_box("moof", 40, 'a') + bmff_test_box("mdat", 300 + n, 'b') + bmff_test_box("prft", 12, 'p') +
           bmff_test_box("moof", 40, 'c') + bmff_test_box("mdat", 200, static_cast<char>('0' + n));
  }
  std::string playlist(int first, int last, bool ended = false) const {
    std::string text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:" +
                       std::to_string(first) + "\n#EXT-X-MAP:URI=\"init.mp4\"\n";
    for (int n = first; n <= last; ++n) text += "#EXTINF:1.0,\nseg_" + std::to_string(n) + ".m4s\n";
    if (ended) text += "#EXT-X-ENDLIST\n";
    return text;
  }
  PlaylistSigner signer(bool chunks = true) {
    return PlaylistSigner(*key_, SignerSettings{"live-42", key_->public_key().default_kid(), 0, chunks},
                          [] { return now; });
  }
  SegmentManifest signed_manifest(const std::string& playlist_path) {
    std::string text = read(manifest_path_for(playlist_path));
    auto parts = parse_jws_compact(text);
    EXPECT_TRUE(parts);
    if (!parts) return {};
    EXPECT_TRUE(key_->public_key().verify(parts->signing_input, parts->signature));
    EXPECT_EQ(parts->header_json, manifest_jws_header(key_->public_key().default_kid()));
    auto manifest = parse_manifest_payload(parts->payload_json);
    EXPECT_TRUE(manifest) << manifest.error();
    return manifest ? *manifest : SegmentManifest{};
  }

  std::string root_, dir_;
  std::optional<P256PrivateKey> key_;
};

TEST_F(PlaylistSignerTest, SignsEverySegmentAndChunk) {
  std::string path = dir_ + "/index.m3u8";
  write(path, playlist(5, 7));
  PlaylistSigner s = signer();
  auto result = s.sign(path);
  ASSERT_TRUE(result) << result.error();
  ASSERT_TRUE(*result);
  EXPECT_EQ((*result)->rendition, "720p:index");
  EXPECT_EQ((*result)->segments, 3u);

  SegmentManifest m = signed_manifest(path);
  EXPECT_EQ(m.stream, "live-42");
  EXPECT_EQ(m.rendition, "720p:index");
  EXPECT_EQ(m.playlist, "index.m3u8");
  EXPECT_EQ(m.media_sequence, 5u);
  EXPECT_EQ(m.issued_at, now);
  EXPECT_EQ(m.expires_at, now + 3);  // three target durations, live
  ASSERT_TRUE(m.init);
  std::string init = read(dir_ + "/init.mp4");
  EXPECT_EQ(m.init->bytes, (DigestedBytes{init.size(), sha256(init)}));
  ASSERT_EQ(m.segments.size(), 3u);
  for (int n = 5; n < 8; ++n) {
    const ManifestSegment& entry = m.segments[static_cast<size_t>(n - 5)];
    std::string bytes = segment_bytes(n);
    EXPECT_EQ(entry.uri, "seg_" + std::to_string(n) + ".m4s");
    EXPECT_EQ(entry.sequence_number, static_cast<uint64_t>(n));
    EXPECT_EQ(entry.bytes, (DigestedBytes{bytes.size(), sha256(bytes)}));
    ASSERT_EQ(entry.chunks.size(), 2u);
    size_t first = 20 + 48 + 308 + n;  // styp, moof, mdat
    EXPECT_EQ(entry.chunks[0], (DigestedBytes{first, sha256(std::string_view(bytes).substr(0, first))}));
    EXPECT_EQ(entry.chunks[1], (DigestedBytes{bytes.size() - first, sha256(std::string_view(bytes).substr(first))}));
  }
  EXPECT_TRUE(verify_playlist(path, key_->public_key(), {"live-42", key_->public_key().default_kid(), now}).empty());
}

TEST_F(PlaylistSignerTest, EndedPlaylistsLiveADay) {
  std::string path = dir_ + "/index.m3u8";
  write(path, playlist(5, 6, true));
  PlaylistSigner s = signer(false);
  ASSERT_TRUE(s.sign(path));
  SegmentManifest m = signed_manifest(path);
  EXPECT_EQ(m.expires_at, now + 86400);
  EXPECT_TRUE(m.segments[0].chunks.empty());
}

TEST_F(PlaylistSignerTest, TtlOverridesBothDefaults) {
  std::string path = dir_ + "/index.m3u8";
  PlaylistSigner s(*key_, SignerSettings{"live-42", "k", 10, false}, [] { return now; });
  for (bool ended : {false, true}) {
    write(path, playlist(5, 6, ended));
    ASSERT_TRUE(s.sign(path));
    std::string text = read(manifest_path_for(path));
    auto parts = parse_jws_compact(text);
    ASSERT_TRUE(parts);
    EXPECT_EQ(parse_manifest_payload(parts->payload_json)->expires_at, now + 10);
  }
}

TEST_F(PlaylistSignerTest, UnchangedSegmentsAreNotReadAgain) {
  std::string path = dir_ + "/index.m3u8";
  write(path, playlist(5, 6));
  PlaylistSigner s = signer();
  ASSERT_TRUE(s.sign(path));
  EXPECT_EQ(s.digest_stats().files_read, 3u);  // init + 2 segments
  write(path, playlist(5, 7));
  ASSERT_TRUE(s.sign(path));
  EXPECT_EQ(s.digest_stats().files_read, 4u);  // only seg_7
  EXPECT_EQ(s.digest_stats().reused, 3u);
  // A rewritten segment (new size) is read again.
  write(segment(6), segment_bytes(6) + bmff_test_box("free", 1, 'f'));
  ASSERT_TRUE(s.sign(path));
  EXPECT_EQ(s.digest_stats().files_read, 5u);
}

TEST_F(PlaylistSignerTest, BadInputLeavesNoManifest) {
  std::string path = dir_ + "/index.m3u8";
  write(path, playlist(5, 7));
  PlaylistSigner s = signer();
  ASSERT_TRUE(s.sign(path));
  ASSERT_TRUE(std::filesystem::exists(manifest_path_for(path)));

  write(path, playlist(5, 8));  // seg_8 does not exist
  auto missing = s.sign(path);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), "segment 'seg_8.m4s': No such file or directory");
  EXPECT_FALSE(std::filesystem::exists(manifest_path_for(path)));

  write(path, playlist(5, 7));
  std::string truncated = segment_bytes(7);
  write(segment(7), truncated.substr(0, truncated.size() - 3));
  auto cut = s.sign(path);
  ASSERT_FALSE(cut);
  EXPECT_TRUE(cut.error().starts_with("segment 'seg_7.m4s': box 'mdat'")) << cut.error();
  EXPECT_FALSE(std::filesystem::exists(manifest_path_for(path)));

  // A FIFO where a segment should be is refused, not waited on.
  write(segment(7), segment_bytes(7));
  ASSERT_EQ(::mkfifo(segment(8).c_str(), 0644), 0);
  write(path, playlist(5, 8));
  EXPECT_EQ(s.sign(path).error(), "segment 'seg_8.m4s': not a regular file");

  write(path, "<html>not a playlist</html>\n");
  EXPECT_EQ(s.sign(path).error(), "line 1: does not start with #EXTM3U: not an HLS playlist");
}

TEST_F(PlaylistSignerTest, MultivariantPlaylistsAreNotSigned) {
  std::string path = root_ + "/master.m3u8";
  write(path, "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n");
  PlaylistSigner s = signer();
  auto result = s.sign(path);
  ASSERT_TRUE(result);
  EXPECT_FALSE(*result);
  EXPECT_FALSE(std::filesystem::exists(manifest_path_for(path)));
}

TEST_F(PlaylistSignerTest, VerifierNamesTheCorruptedSegment) {
  std::string path = dir_ + "/index.m3u8";
  write(path, playlist(5, 7));
  PlaylistSigner s = signer();
  ASSERT_TRUE(s.sign(path));
  std::string bytes = segment_bytes(6);
  bytes[bytes.size() - 10] ^= 1;
  write(segment(6), bytes);
  VerifySettings settings{"live-42", key_->public_key().default_kid(), now};
  auto problems = verify_playlist(path, key_->public_key(), settings);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], segment(6) + ": segment sha256 differs from the manifest");

  // Another key, another kid, a later clock.
  auto other = P256PrivateKey::generate();
  ASSERT_TRUE(other);
  problems = verify_playlist(path, other->public_key(), settings);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], manifest_path_for(path) + ": the signature does not verify with the public key");
  problems = verify_playlist(path, key_->public_key(), {"live-42", "other", now});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_TRUE(problems[0].find("kid") != std::string::npos) << problems[0];
  problems = verify_playlist(path, key_->public_key(), {"live-43", settings.kid, now + 10});
  EXPECT_EQ(problems.size(), 3u);  // stream, expired, and still the segment
}

}  // namespace
}  // namespace mf::origin
