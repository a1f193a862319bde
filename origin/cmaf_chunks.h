#pragma once
// Splits a CMAF (fragmented ISO BMFF) media segment into its chunks, one
// per `moof`+`mdat` pair, for the manifest's `chunks` list (docs/origin.md,
// "The manifest"). A chunk runs from the end of the previous chunk's `mdat`
// to the end of its own `mdat`: boxes before a `moof` (`styp`, `prft`,
// `sidx`) belong to the chunk that follows them, so the first chunk starts
// at byte 0; boxes after the last `mdat` join the last chunk. The chunk sizes
// add up to the segment's size. Pure: bytes in, ranges out.
//
// Refused with one line: a box shorter than its header or running past the
// end (a truncated segment), a `moof` not followed by an `mdat` before the
// next `moof`, an `mdat` before any `moof`. Well-formed boxes without any
// `moof` (a segment that is only `styp`, as ffmpeg 5.1 writes its first one
// when it fragments within segments) give no chunks: the segment is listed
// whole, without `chunks`.
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <vector>

namespace mf::origin {

struct ChunkRange {
  uint64_t offset = 0;
  uint64_t size = 0;
  bool operator==(const ChunkRange&) const = default;
};

inline constexpr size_t max_chunks_per_segment = 4096;

std::expected<std::vector<ChunkRange>, std::string> split_cmaf_chunks(std::span<const uint8_t> segment);

}  // namespace mf::origin
