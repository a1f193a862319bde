#pragma once
// Signals delivered per stream, on one shard. A signal is counted where it
// is delivered, on the shard of its target's connection: the only shard that
// sees it arrive, and it knows the target's stream. An entry lives while this
// shard holds at least one connection joined to the stream, so the map is
// bounded by the joined peers; when the last one leaves, the count restarts
// (readers treat a decrease as a restart, as Prometheus' rate() does).
// Shard 0 sums every shard's entries for /api/streams. Pure: no IO.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/base/transparent_string_hash.h"

namespace mf::edge {

struct StreamSignals {
  std::string stream_id;
  uint64_t signals = 0;
};

class StreamSignalCounts {
 public:
  // A connection of this shard joined / left the stream.
  void joined(std::string_view stream_id);
  void left(std::string_view stream_id);
  // A signal was delivered to a connection of this shard joined to the stream.
  void delivered(std::string_view stream_id);

  void append_to(std::vector<StreamSignals>& out) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    uint32_t members = 0;
    uint64_t signals = 0;
  };
  std::unordered_map<std::string, Entry, TransparentStringHash, std::equal_to<>> entries_;
};

}  // namespace mf::edge
