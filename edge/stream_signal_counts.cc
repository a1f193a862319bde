#include "edge/stream_signal_counts.h"

namespace mf::edge {

uint32_t StreamSignalCounts::joined(std::string_view stream_id) {
  auto it = index_.find(stream_id);
  if (it != index_.end()) {
    entries_[it->second].members++;
    return it->second;
  }
  uint32_t index = free_;
  if (index == no_entry) {
    index = static_cast<uint32_t>(entries_.size());
    entries_.emplace_back();
  } else {
    free_ = entries_[index].next_free;
  }
  Entry& entry = entries_[index];
  entry.stream_id.assign(stream_id);
  entry.members = 1;
  entry.signals = 0;
  entry.next_free = no_entry;
  index_.emplace(std::string(stream_id), index);
  return index;
}

void StreamSignalCounts::left(uint32_t index) {
  if (index >= entries_.size() || entries_[index].members == 0) return;
  Entry& entry = entries_[index];
  if (--entry.members != 0) return;
  index_.erase(entry.stream_id);
  entry.next_free = free_;
  free_ = index;
}

void StreamSignalCounts::append_to(std::vector<StreamSignals>& out) const {
  for (const Entry& entry : entries_)
    if (entry.members != 0) out.push_back(StreamSignals{entry.stream_id, entry.signals});
}

}  // namespace mf::edge
