#include "origin/cmaf_chunks.h"

#include <gtest/gtest.h>

#include <string>

#include "origin/tests/bmff_test_box.h"

namespace mf::origin {
namespace {

std::expected<std::vector<ChunkRange>, std::string> split(const std::string& bytes) {
  return split_cmaf_chunks(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

TEST(CmafChunks, BoxesBeforeTheFirstMoofBelongToTheFirstChunk) {
  std::string segment = bmff_test_box("styp", 12) + bmff_test_box("prft", 24) + bmff_test_box("moof", 100) + bmff_test_box("mdat", 1000);
  auto chunks = split(segment);
  ASSERT_TRUE(chunks) << chunks.error();
  ASSERT_EQ(chunks->size(), 1u);
  EXPECT_EQ((*chunks)[0], (ChunkRange{0, segment.size()}));
}

TEST(CmafChunks, OneChunkPerMoofMdatPair) {
  std::string head = bmff_test_box("styp", 12);
  std::string first = bmff_test_box("moof", 100) + bmff_test_box("mdat", 1000);
  std::string second = bmff_test_box("prft", 24) + bmff_test_box("moof", 90) + bmff_test_box("mdat", 500);
  std::string third = bmff_test_box("moof", 80) + bmff_test_box("mdat", 10);
  auto chunks = split(head + first + second + third);
  ASSERT_TRUE(chunks) << chunks.error();
  ASSERT_EQ(chunks->size(), 3u);
  EXPECT_EQ((*chunks)[0], (ChunkRange{0, head.size() + first.size()}));
  EXPECT_EQ((*chunks)[1], (ChunkRange{head.size() + first.size(), second.size()}));
  EXPECT_EQ((*chunks)[2], (ChunkRange{head.size() + first.size() + second.size(), third.size()}));
}

TEST(CmafChunks, LargeSizeAndToTheEndBoxes) {
  std::string large = std::string("\0\0\0\1mdat", 8) + std::string("\0\0\0\0\0\0\0\x28", 8) + std::string(24, 'x');
  auto chunks = split(bmff_test_box("moof", 8) + large);
  ASSERT_TRUE(chunks) << chunks.error();
  EXPECT_EQ(chunks->back().size, 16u + large.size());
  std::string to_end = std::string("\0\0\0\0mdat", 8) + std::string(30, 'y');
  chunks = split(bmff_test_box("moof", 8) + to_end);
  ASSERT_TRUE(chunks) << chunks.error();
  EXPECT_EQ(chunks->back().size, 16u + to_end.size());
}

TEST(CmafChunks, TrailingBoxesJoinTheLastChunk) {
  std::string segment = bmff_test_box("moof", 8) + bmff_test_box("mdat", 8) + bmff_test_box("free", 4);
  auto chunks = split(segment);
  ASSERT_TRUE(chunks);
  EXPECT_EQ((*chunks)[0], (ChunkRange{0, segment.size()}));
}

TEST(CmafChunks, TruncatedBoxIsAnError) {
  std::string segment = bmff_test_box("styp", 12) + bmff_test_box("moof", 100) + bmff_test_box("mdat", 1000);
  auto chunks = split(segment.substr(0, segment.size() - 1));
  ASSERT_FALSE(chunks);
  EXPECT_EQ(chunks.error(), "box 'mdat' at byte 128 runs past the end (1008 bytes, 1007 left): truncated");
  EXPECT_EQ(split(segment + std::string("\0\0\0", 3)).error(), "truncated box header at byte 1136");
}

TEST(CmafChunks, StructureErrors) {
  // Well-formed but without fragments: no chunks to list.
  EXPECT_EQ(split(bmff_test_box("styp", 16)).value().size(), 0u);
  EXPECT_EQ(split("").value().size(), 0u);
  EXPECT_EQ(split(bmff_test_box("mdat", 4)).error(), "mdat at byte 0 without a moof before it");
  EXPECT_EQ(split(bmff_test_box("moof", 4) + bmff_test_box("moof", 4)).error(), "moof at byte 12 follows a moof without mdat");
  EXPECT_EQ(split(bmff_test_box("moof", 4)).error(), "the last moof has no mdat");
  EXPECT_EQ(split(std::string("\0\0\0\4moof", 8)).error(), "box at byte 0 is shorter than its header");
}

}  // namespace
}  // namespace mf::origin
