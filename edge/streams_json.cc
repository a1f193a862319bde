#include "edge/streams_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "common/base/transparent_string_hash.h"

namespace mf::edge {

std::string format_streams_json(const std::vector<std::unique_ptr<MetricsSnapshot>>& shards, std::string_view edge_id,
                                uint64_t now_ms, size_t max_streams, size_t max_bytes) {
  // Each stream's summary comes from its one owner shard; its signals are
  // counted on every shard that delivered some, so they are summed.
  std::vector<const StreamSummary*> streams;
  std::unordered_map<std::string_view, uint64_t, TransparentStringHash, std::equal_to<>> signals;
  uint64_t peers = 0;
  // The WebTorrent tracker's swarms (docs/tracker.md) beside the SDK streams:
  // each swarm lives on one shard, its relays are counted where they happen.
  TrackerTotals tracker;
  uint64_t offers_relayed = 0, answers_relayed = 0, announces = 0;
  for (const auto& shard : shards) {
    tracker.swarms += shard->tracker_swarms.swarms;
    tracker.peers += shard->tracker_swarms.peers;
    tracker.seeders += shard->tracker_swarms.seeders;
    tracker.outstanding_offers += shard->tracker_swarms.outstanding_offers;
    announces += shard->edge.tracker.announces;
    offers_relayed += shard->edge.tracker.offers_relayed;
    answers_relayed += shard->edge.tracker.answers_relayed;
  }
  for (const auto& shard : shards) {
    for (const StreamSummary& s : shard->streams) {
      streams.push_back(&s);
      peers += s.viewers;
    }
    for (const StreamSignals& s : shard->signals) signals[s.stream_id] += s.signals;
  }
  size_t keep = std::min(max_streams, streams.size());
  std::partial_sort(streams.begin(), streams.begin() + static_cast<long>(keep), streams.end(),
                    [](const StreamSummary* a, const StreamSummary* b) {
                      if (a->viewers != b->viewers) return a->viewers > b->viewers;
                      return a->stream_id < b->stream_id;
                    });
  // Ids (edge, stream, rendition) are [A-Za-z0-9._:-] (docs/protocol.md section 2,
  // checked at start-up for the edge id): nothing to escape.
  // The streams go first into `list`, busiest first, while they fit the
  // byte budget; the envelope then says how many were left out.
  std::string list;
  std::string out;
  out.reserve(256 + keep * 320);
  std::string header = fmt::format(
      "{{\"edge\":\"{}\",\"timeMs\":{},\"peers\":{},\"tracker\":{{\"swarms\":{},\"peers\":{},\"seeders\":{},"
      "\"outstandingOffers\":{},\"announces\":{},\"offersRelayed\":{},\"answersRelayed\":{}}},"
      "\"streamCount\":{},\"truncated\":false,\"streams\":[",
      edge_id, now_ms, peers, tracker.swarms, tracker.peers, tracker.seeders, tracker.outstanding_offers, announces,
      offers_relayed, answers_relayed, streams.size());
  static constexpr std::string_view trailer = "]}\n";
  size_t room = max_bytes > header.size() + trailer.size() ? max_bytes - header.size() - trailer.size() : 0;
  size_t listed = 0;
  for (size_t i = 0; i < keep; ++i) {
    out.clear();
    const StreamSummary& s = *streams[i];
    auto found = signals.find(std::string_view(s.stream_id));
    uint64_t stream_signals = found == signals.end() ? 0 : found->second;
    fmt::format_to(std::back_inserter(out), "{}{{\"streamId\":\"{}\",\"peers\":{},\"renditions\":[", i == 0 ? "" : ",",
                   s.stream_id, s.viewers);
    for (size_t r = 0; r < s.renditions.size(); ++r)
      fmt::format_to(std::back_inserter(out), "{}{{\"rendition\":\"{}\",\"peers\":{}}}", r == 0 ? "" : ",",
                     s.renditions[r].rendition, s.renditions[r].peers);
    fmt::format_to(std::back_inserter(out),
                   "],\"joins\":{},\"signals\":{},\"proposals\":{},\"connectedProposals\":{},\"p2pBytes\":{},"
                   "\"cdnBytes\":{},\"uploadedBytes\":{},\"offloadRatio\":",
                   s.joins, stream_signals, s.proposals, s.stats.connected_proposals, s.stats.p2p_bytes,
                   s.stats.cdn_bytes, s.stats.uploaded_bytes);
    // p2p bytes against all bytes the players got; null before any `stats`.
    // Summed as doubles: the two counters may each be near 2^64.
    double all = static_cast<double>(s.stats.p2p_bytes) + static_cast<double>(s.stats.cdn_bytes);
    if (all == 0) out += "null";
    else fmt::format_to(std::back_inserter(out), "{}", static_cast<double>(s.stats.p2p_bytes) / all);
    out += '}';
    if (list.size() + out.size() > room) break;
    list += out;
    ++listed;
  }
  static constexpr std::string_view not_truncated = "\"truncated\":false";
  if (listed < streams.size()) header.replace(header.find(not_truncated), not_truncated.size(), "\"truncated\":true");
  out.clear();
  out.reserve(header.size() + list.size() + trailer.size());
  out += header;
  out += list;
  out += trailer;
  return out;
}

}  // namespace mf::edge
