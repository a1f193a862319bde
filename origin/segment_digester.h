#pragma once
// Reads media segments (a whole file or an EXT-X-BYTERANGE of it) once and
// digests them: SHA-256 and size of the bytes and, on request, of each CMAF
// chunk. A result is kept by path and range together with the file's size
// and modification time, and reused while both are unchanged, so a live
// playlist's update re-reads only its new segments. A file that changes
// while it is read is an error (the caller tries again on the next update).
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "origin/hls_media_playlist.h"
#include "origin/segment_manifest.h"

namespace mf::origin {

struct SegmentDigest {
  DigestedBytes bytes;
  std::vector<DigestedBytes> chunks;  // empty unless asked for
};

// Larger is not a media segment worth reading into memory.
inline constexpr uint64_t max_segment_bytes = uint64_t{1} << 30;

class SegmentDigester {
 public:
  struct Stats {
    uint64_t files_read = 0;
    uint64_t bytes_read = 0;
    uint64_t reused = 0;
  };

  std::expected<SegmentDigest, std::string> digest(const std::string& path, std::optional<ByteRange> range,
                                                   bool with_chunks);
  // Drops every result not asked for since the previous call: called after
  // each version of a playlist, it keeps exactly that version's segments.
  void forget_unused();
  const Stats& stats() const { return stats_; }

 private:
  struct Entry {
    uint64_t file_size = 0;
    int64_t mtime_ns = 0;
    bool with_chunks = false;
    bool used = false;
    SegmentDigest digest;
  };
  std::unordered_map<std::string, Entry> entries_;  // by "path\0offset\0length"
  std::vector<uint8_t> buffer_;
  Stats stats_;
};

}  // namespace mf::origin
