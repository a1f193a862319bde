#include "edge/edge_history.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "edge/sdk_message.h"

namespace mf::edge {
namespace {

uint64_t grew(uint64_t now, uint64_t before) { return now > before ? now - before : 0; }

uint32_t clamp32(uint64_t value) {
  return static_cast<uint32_t>(std::min<uint64_t>(value, std::numeric_limits<uint32_t>::max()));
}

}  // namespace

EdgeHistory::EdgeHistory(size_t capacity, const HistoryTotals& start) : ring_(std::max<size_t>(capacity, 1)), last_(start) {}

void EdgeHistory::record(const HistoryTotals& now) {
  if (now.time_ms <= last_.time_ms) return;
  HistorySample& s = ring_[next_];
  s.time_ms = now.time_ms;
  s.period_ms = clamp32(now.time_ms - last_.time_ms);
  s.peers = clamp32(now.peers);
  s.connections = clamp32(now.connections);
  s.joins = clamp32(grew(now.joins, last_.joins));
  s.signals = clamp32(grew(now.signals, last_.signals));
  for (size_t i = 0; i < history_error_codes; ++i) s.errors[i] = clamp32(grew(now.errors[i], last_.errors[i]));
  s.p2p_bytes = grew(now.p2p_bytes, last_.p2p_bytes);
  s.cdn_bytes = grew(now.cdn_bytes, last_.cdn_bytes);
  last_ = now;
  next_ = (next_ + 1) % ring_.size();
  size_ = std::min(size_ + 1, ring_.size());
}

std::string format_history_json(const EdgeHistory& history, std::string_view edge_id, uint64_t now_ms,
                                uint32_t period_ms, size_t max_bytes) {
  // The edge id is [A-Za-z0-9._:-] (checked at start-up): nothing to escape.
  std::string header = fmt::format("{{\"edge\":\"{}\",\"timeMs\":{},\"periodMs\":{},\"capacity\":{},\"errorCodes\":[",
                                   edge_id, now_ms, period_ms, history.capacity());
  for (size_t i = 0; i < history_error_codes; ++i)
    fmt::format_to(std::back_inserter(header), "{}\"{}\"", i == 0 ? "" : ",",
                   error_code_text(static_cast<SdkErrorCode>(i)));
  header += "],\"truncated\":false,\"samples\":[";
  static constexpr std::string_view trailer = "]}\n";
  size_t room = max_bytes > header.size() + trailer.size() ? max_bytes - header.size() - trailer.size() : 0;
  // Newest first into `parts` while they fit, then written oldest first.
  std::vector<std::string> parts;
  size_t used = 0;
  std::string one;
  for (size_t k = history.size(); k-- > 0;) {
    const HistorySample& s = history.at(k);
    one.clear();
    double seconds = s.period_ms / 1000.0;
    fmt::format_to(std::back_inserter(one),
                   "{{\"timeMs\":{},\"periodMs\":{},\"peers\":{},\"connections\":{},\"joins\":{},\"signals\":{},"
                   "\"signalsPerSecond\":{:.3f},\"p2pBytes\":{},\"cdnBytes\":{},\"offloadRatio\":",
                   s.time_ms, s.period_ms, s.peers, s.connections, s.joins, s.signals, s.signals / seconds,
                   s.p2p_bytes, s.cdn_bytes);
    double all = static_cast<double>(s.p2p_bytes) + static_cast<double>(s.cdn_bytes);
    if (all == 0) one += "null";
    else fmt::format_to(std::back_inserter(one), "{}", static_cast<double>(s.p2p_bytes) / all);
    one += ",\"errors\":[";
    for (size_t i = 0; i < history_error_codes; ++i)
      fmt::format_to(std::back_inserter(one), "{}{}", i == 0 ? "" : ",", s.errors[i]);
    one += "]}";
    if (used + one.size() + 1 > room) break;
    used += one.size() + 1;
    parts.push_back(one);
  }
  static constexpr std::string_view not_truncated = "\"truncated\":false";
  if (parts.size() < history.size())
    header.replace(header.find(not_truncated), not_truncated.size(), "\"truncated\":true");
  std::string out;
  out.reserve(header.size() + used + trailer.size());
  out += header;
  for (size_t i = parts.size(); i-- > 0;) {
    out += parts[i];
    if (i != 0) out += ',';
  }
  out += trailer;
  return out;
}

}  // namespace mf::edge
