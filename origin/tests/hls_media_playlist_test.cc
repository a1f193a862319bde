#include "origin/hls_media_playlist.h"

#include <gtest/gtest.h>

namespace mf::origin {
namespace {

MediaPlaylist media(std::string_view text) {
  auto parsed = parse_playlist(text);
  EXPECT_TRUE(parsed) << parsed.error();
  if (!parsed) return {};
  EXPECT_EQ(parsed->kind, PlaylistKind::media);
  return parsed->media;
}

std::string error_of(std::string_view text) {
  auto parsed = parse_playlist(text);
  EXPECT_FALSE(parsed);
  return parsed ? "" : parsed.error();
}

TEST(HlsMediaPlaylist, LiveCmafWithInit) {
  MediaPlaylist p = media(
      "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:42\n"
      "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init_0.mp4\"\n"
      "#EXTINF:1.001,\nseg_42.m4s\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00Z\n#EXTINF:0.999,\nseg_43.m4s\n");
  EXPECT_EQ(p.target_duration_s, 1u);
  EXPECT_EQ(p.media_sequence, 42u);
  EXPECT_FALSE(p.ended);
  ASSERT_TRUE(p.init);
  EXPECT_EQ(p.init->uri, "init_0.mp4");
  EXPECT_FALSE(p.init->range);
  ASSERT_EQ(p.segments.size(), 2u);
  EXPECT_EQ(p.segments[0], (PlaylistSegment{"seg_42.m4s", 42, std::nullopt}));
  EXPECT_EQ(p.segments[1], (PlaylistSegment{"seg_43.m4s", 43, std::nullopt}));
}

TEST(HlsMediaPlaylist, VodWithCrLfAndSubdirectories) {
  MediaPlaylist p = media(
      "#EXTM3U\r\n#EXT-X-TARGETDURATION:4\r\n#EXT-X-PLAYLIST-TYPE:VOD\r\n#EXTINF:4,\r\na/0.ts\r\n"
      "#EXTINF:4,title, with comma\r\na/1.ts\r\n#EXT-X-ENDLIST\r\n");
  EXPECT_TRUE(p.ended);
  EXPECT_EQ(p.media_sequence, 0u);
  ASSERT_EQ(p.segments.size(), 2u);
  EXPECT_EQ(p.segments[1].uri, "a/1.ts");
  EXPECT_EQ(p.segments[1].sequence_number, 1u);
}

TEST(HlsMediaPlaylist, ByteRangesContinueTheSameResource) {
  MediaPlaylist p = media(
      "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"main.mp4\",BYTERANGE=\"720@0\"\n"
      "#EXTINF:2,\n#EXT-X-BYTERANGE:10000@720\nmain.mp4\n#EXTINF:2,\n#EXT-X-BYTERANGE:12000\nmain.mp4\n"
      "#EXT-X-ENDLIST\n");
  ASSERT_TRUE(p.init && p.init->range);
  EXPECT_EQ(*p.init->range, (ByteRange{720, 0}));
  ASSERT_EQ(p.segments.size(), 2u);
  EXPECT_EQ(*p.segments[0].range, (ByteRange{10000, 720}));
  EXPECT_EQ(*p.segments[1].range, (ByteRange{12000, 10720}));
}

TEST(HlsMediaPlaylist, ByteRangeWithoutOffsetNeedsAPreviousRangeOfTheSameFile) {
  EXPECT_NE(error_of("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n#EXT-X-BYTERANGE:100\na.mp4\n"),
            "");
  EXPECT_NE(error_of("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n#EXT-X-BYTERANGE:100@0\na.mp4\n"
                     "#EXTINF:2,\n#EXT-X-BYTERANGE:100\nb.mp4\n"),
            "");
  EXPECT_NE(error_of("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n#EXT-X-BYTERANGE:0@0\na.mp4\n"), "");
}

TEST(HlsMediaPlaylist, GapsAreCountedButNotListed) {
  MediaPlaylist p = media(
      "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:1,\n#EXT-X-GAP\ngap.m4s\n"
      "#EXTINF:1,\nok.m4s\n#EXT-X-PART:DURATION=0.5,URI=\"part.m4s\"\n");
  ASSERT_EQ(p.segments.size(), 1u);
  EXPECT_EQ(p.segments[0], (PlaylistSegment{"ok.m4s", 8, std::nullopt}));
}

TEST(HlsMediaPlaylist, MultivariantIsRecognisedNotAnError) {
  auto parsed = parse_playlist("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n360p/index.m3u8\n");
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->kind, PlaylistKind::multivariant);
}

TEST(HlsMediaPlaylist, NotHlsIsOneLine) {
  EXPECT_EQ(error_of(""), "empty: not an HLS playlist");
  EXPECT_EQ(error_of("<html>\n"), "line 1: does not start with #EXTM3U: not an HLS playlist");
  EXPECT_EQ(error_of("#EXTM3U\n#EXTINF:1,\nx.ts\n"), "no EXT-X-TARGETDURATION: not a media playlist");
  EXPECT_EQ(error_of("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n"), "line 3: the last #EXTINF has no URI");
  EXPECT_EQ(error_of("#EXTM3U\n#EXT-X-TARGETDURATION:1\nx.ts\n"), "line 3: URI 'x.ts' without #EXTINF");
}

TEST(HlsMediaPlaylist, UrisOutsideTheDirectoryAreRefused) {
  for (std::string_view uri : {"http://cdn/x.ts", "/abs/x.ts", "../x.ts", "a/../../x.ts", "x.ts?token=1",
                               "x%20y.ts", "a//b.ts", "./x.ts"}) {
    std::string text = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n" + std::string(uri) + "\n";
    std::string error = error_of(text);
    EXPECT_TRUE(error.starts_with("line 4: segment URI")) << uri << ": " << error;
  }
}

TEST(HlsMediaPlaylist, TwoDifferentInitSegmentsAreRefused) {
  EXPECT_EQ(error_of("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI=\"a.mp4\"\n#EXTINF:1,\nx.m4s\n"
                     "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"b.mp4\"\n#EXTINF:1,\ny.m4s\n"),
            "line 7: a second, different EXT-X-MAP: a manifest lists one init segment");
  // The same map repeated is fine.
  MediaPlaylist p = media("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI=\"a.mp4\"\n#EXTINF:1,\nx.m4s\n"
                          "#EXT-X-MAP:URI=\"a.mp4\"\n#EXTINF:1,\ny.m4s\n");
  EXPECT_EQ(p.segments.size(), 2u);
}

TEST(HlsMediaPlaylist, BadTagValuesAreRefused) {
  EXPECT_NE(error_of("#EXTM3U\n#EXT-X-TARGETDURATION:0\n"), "");
  EXPECT_NE(error_of("#EXTM3U\n#EXT-X-TARGETDURATION:-1\n"), "");
  EXPECT_NE(error_of("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:x\n"), "");
  EXPECT_NE(error_of("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n"), "");
  EXPECT_NE(error_of("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI=\"a.mp4\n"), "");
}

}  // namespace
}  // namespace mf::origin
