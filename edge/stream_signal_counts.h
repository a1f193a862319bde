#pragma once
// Signals delivered per stream, on one shard. A signal is counted where it
// is delivered, on the shard of its target's connection: the only shard that
// sees it arrive, and it knows the target's stream. An entry lives while this
// shard holds at least one connection joined to the stream, so the table is
// bounded by the joined peers; when the last one leaves, the count restarts
// (readers treat a decrease as a restart, as Prometheus' rate() does).
// Shard 0 sums every shard's entries for /api/streams. Pure: no IO.
//
// A joining connection looks its stream up once and keeps the entry's index;
// a delivery then counts by index, without hashing the streamId
// (docs/architecture.md, "The relay path").
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
  static constexpr uint32_t no_entry = UINT32_MAX;
  // A connection of this shard joined the stream: the entry's index, valid
  // until the connection's left().
  uint32_t joined(std::string_view stream_id);
  // The connection that joined with `index` left (no_entry: nothing).
  void left(uint32_t index);
  // A signal was delivered to a connection of this shard joined with `index`.
  void delivered(uint32_t index) {
    if (index < entries_.size() && entries_[index].members != 0) entries_[index].signals++;
  }

  void append_to(std::vector<StreamSignals>& out) const;
  size_t size() const { return index_.size(); }

 private:
  struct Entry {
    std::string stream_id;
    uint32_t members = 0;  // 0: free
    uint64_t signals = 0;
    uint32_t next_free = no_entry;
  };
  std::vector<Entry> entries_;
  uint32_t free_ = no_entry;
  std::unordered_map<std::string, uint32_t, TransparentStringHash, std::equal_to<>> index_;
};

}  // namespace mf::edge
