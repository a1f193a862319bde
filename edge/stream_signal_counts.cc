#include "edge/stream_signal_counts.h"

namespace mf::edge {

void StreamSignalCounts::joined(std::string_view stream_id) {
  auto it = entries_.find(stream_id);
  if (it == entries_.end()) it = entries_.emplace(std::string(stream_id), Entry{}).first;
  it->second.members++;
}

void StreamSignalCounts::left(std::string_view stream_id) {
  auto it = entries_.find(stream_id);
  if (it == entries_.end()) return;
  if (--it->second.members == 0) entries_.erase(it);
}

void StreamSignalCounts::delivered(std::string_view stream_id) {
  auto it = entries_.find(stream_id);
  if (it != entries_.end()) it->second.signals++;
}

void StreamSignalCounts::append_to(std::vector<StreamSignals>& out) const {
  for (const auto& [id, entry] : entries_) out.push_back(StreamSignals{id, entry.signals});
}

}  // namespace mf::edge
