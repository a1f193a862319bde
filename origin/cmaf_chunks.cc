#include "origin/cmaf_chunks.h"

#include <fmt/core.h>

#include <cstring>

#include "common/config/config_schema.h"

namespace mf::origin {
namespace {

uint32_t read32(const uint8_t* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }

uint64_t read64(const uint8_t* p) { return uint64_t{read32(p)} << 32 | read32(p + 4); }

}  // namespace

std::expected<std::vector<ChunkRange>, std::string> split_cmaf_chunks(std::span<const uint8_t> segment) {
  std::vector<ChunkRange> chunks;
  uint64_t chunk_start = 0;
  bool in_fragment = false;  // a moof waits for its mdat
  uint64_t position = 0;
  const uint64_t total = segment.size();
  while (position < total) {
    uint64_t left = total - position;
    if (left < 8) return std::unexpected(fmt::format("truncated box header at byte {}", position));
    const uint8_t* header = segment.data() + position;
    uint64_t size = read32(header);
    char type[4];
    std::memcpy(type, header + 4, 4);
    uint64_t header_size = 8;
    if (size == 1) {
      if (left < 16) return std::unexpected(fmt::format("truncated box header at byte {}", position));
      size = read64(header + 8);
      header_size = 16;
    } else if (size == 0) {
      size = left;  // to the end of the file
    }
    if (size < header_size) return std::unexpected(fmt::format("box at byte {} is shorter than its header", position));
    if (size > left)
      return std::unexpected(fmt::format("box {} at byte {} runs past the end ({} bytes, {} left): truncated",
                                         config::printable(std::string_view(type, 4)), position, size, left));
    bool is_moof = std::memcmp(type, "moof", 4) == 0;
    bool is_mdat = std::memcmp(type, "mdat", 4) == 0;
    if (is_moof) {
      if (in_fragment) return std::unexpected(fmt::format("moof at byte {} follows a moof without mdat", position));
      in_fragment = true;
    } else if (is_mdat) {
      if (!in_fragment) return std::unexpected(fmt::format("mdat at byte {} without a moof before it", position));
      in_fragment = false;
      if (chunks.size() >= max_chunks_per_segment)
        return std::unexpected(fmt::format("more than {} chunks", max_chunks_per_segment));
      chunks.push_back(ChunkRange{chunk_start, position + size - chunk_start});
      chunk_start = position + size;
    }
    position += size;
  }
  if (in_fragment) return std::unexpected("the last moof has no mdat");
  if (chunks.empty()) return chunks;  // well-formed boxes, no fragment
  // Boxes after the last mdat (rare: a trailing free or mfra) join the last chunk.
  chunks.back().size = total - chunks.back().offset;
  return chunks;
}

}  // namespace mf::origin
