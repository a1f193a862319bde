#include "origin/rendition_name.h"

#include <gtest/gtest.h>

namespace mf::origin {
namespace {

TEST(RenditionName, DirectoryColonFileName) {
  EXPECT_EQ(rendition_for_playlist("/srv/hls/live/720p/index.m3u8").value(), "720p:index");
  EXPECT_EQ(rendition_for_playlist("/live/720p/index.m3u8").value(), "720p:index");
  EXPECT_EQ(rendition_for_playlist("/srv/hls/live-42/stream_1.m3u8").value(), "live-42:stream_1");
  EXPECT_EQ(rendition_for_playlist("live/stream_1.m3u8").value(), "live:stream_1");
}

TEST(RenditionName, RefusedWhenNoIdentifierResults) {
  EXPECT_FALSE(rendition_for_playlist("index.m3u8"));
  EXPECT_FALSE(rendition_for_playlist("/x/index.txt"));
  EXPECT_FALSE(rendition_for_playlist("/x/.m3u8"));
  EXPECT_FALSE(rendition_for_playlist("/my dir/index.m3u8"));
  EXPECT_FALSE(rendition_for_playlist("/" + std::string(120, 'a') + "/" + std::string(10, 'b') + ".m3u8"));
}

TEST(RenditionName, ProtocolIdentifier) {
  EXPECT_TRUE(is_protocol_identifier("live-42:720p.v_2"));
  EXPECT_FALSE(is_protocol_identifier(""));
  EXPECT_FALSE(is_protocol_identifier("a/b"));
  EXPECT_TRUE(is_protocol_identifier(std::string(128, 'x')));
  EXPECT_FALSE(is_protocol_identifier(std::string(129, 'x')));
}

}  // namespace
}  // namespace mf::origin
