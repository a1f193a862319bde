#include "edge/cluster_summary.h"

#include <fmt/format.h>

#include <algorithm>

#include "edge/cluster_keys.h"

namespace mf::edge {
namespace {

std::string_view valkey_text(ValkeyState state) {
  switch (state) {
    case ValkeyState::up: return "up";
    case ValkeyState::down: return "down";
    case ValkeyState::off: break;
  }
  return "off";
}

void append_ratio(std::string& out, uint64_t p2p, uint64_t cdn) {
  double all = static_cast<double>(p2p) + static_cast<double>(cdn);
  if (all == 0) out += "null";
  else fmt::format_to(std::back_inserter(out), "{}", static_cast<double>(p2p) / all);
}

}  // namespace

std::string format_edge_summary(const std::vector<std::unique_ptr<MetricsSnapshot>>& shards, std::string_view edge_id,
                                ValkeyState valkey) {
  uint64_t connections = 0, peers = 0, joins = 0, signals = 0, errors = 0;
  bool draining = false;
  StreamStats bytes;
  std::vector<const StreamSummary*> streams;
  for (const auto& s : shards) {
    connections += s->connections;
    peers += s->peers_joined;
    joins += s->edge.joins;
    signals += s->edge.signals_relayed;
    for (uint64_t e : s->edge.errors) errors += e;
    bytes.add(s->edge.offload);
    draining = draining || s->draining;
    for (const StreamSummary& stream : s->streams) streams.push_back(&stream);
  }
  size_t keep = std::min(summary_top_streams, streams.size());
  std::partial_sort(streams.begin(), streams.begin() + static_cast<long>(keep), streams.end(),
                    [](const StreamSummary* a, const StreamSummary* b) {
                      if (a->viewers != b->viewers) return a->viewers > b->viewers;
                      return a->stream_id < b->stream_id;
                    });
  // Ids are [A-Za-z0-9._:-] (docs/protocol.md section 2; the edge id is checked at
  // start-up): nothing to escape.
  std::string out = fmt::format(
      "{{\"edge\":\"{}\",\"draining\":{},\"valkey\":\"{}\",\"shards\":{},\"connections\":{},\"peers\":{},"
      "\"joins\":{},\"signals\":{},\"errors\":{},\"p2pBytes\":{},\"cdnBytes\":{},\"uploadedBytes\":{},"
      "\"offloadRatio\":",
      edge_id, draining, valkey_text(valkey), shards.size(), connections, peers, joins, signals, errors,
      bytes.p2p_bytes, bytes.cdn_bytes, bytes.uploaded_bytes);
  append_ratio(out, bytes.p2p_bytes, bytes.cdn_bytes);
  fmt::format_to(std::back_inserter(out), ",\"streamCount\":{},\"streams\":[", streams.size());
  for (size_t i = 0; i < keep; ++i) {
    const StreamSummary& s = *streams[i];
    fmt::format_to(std::back_inserter(out), "{}{{\"streamId\":\"{}\",\"peers\":{},\"p2pBytes\":{},\"cdnBytes\":{},"
                   "\"offloadRatio\":", i == 0 ? "" : ",", s.stream_id, s.viewers, s.stats.p2p_bytes,
                   s.stats.cdn_bytes);
    append_ratio(out, s.stats.p2p_bytes, s.stats.cdn_bytes);
    out += '}';
  }
  out += "]}";
  return out;
}

std::string encode_summary_record(uint64_t expires_unix_ms, std::string_view summary) {
  std::string out;
  cluster::append_field(out, expires_unix_ms);
  cluster::append_field(out, summary);
  return out;
}

std::optional<SummaryRecord> decode_summary_record(std::string_view record) {
  std::string_view fields[2];
  if (!cluster::split_fields(record, fields)) return std::nullopt;
  auto expiry = cluster::parse_unsigned(fields[0]);
  // A summary is a JSON object written by an edge; anything else is not one.
  if (!expiry || fields[1].size() < 2 || fields[1].front() != '{' || fields[1].back() != '}') return std::nullopt;
  return SummaryRecord{*expiry, fields[1]};
}

std::string format_cluster_json(std::string_view edge_id, ValkeyState valkey, std::string_view own_summary,
                                std::span<const std::string_view> other_summaries, size_t max_bytes) {
  std::string out = fmt::format("{{\"edge\":\"{}\",\"valkey\":\"{}\",\"edgeCount\":{},\"truncated\":false,\"edges\":[",
                                edge_id, valkey_text(valkey), 1 + other_summaries.size());
  static constexpr std::string_view trailer = "]}\n";
  out += own_summary;
  size_t shown = 1;
  for (std::string_view summary : other_summaries) {
    if (shown == cluster_max_edges || out.size() + 1 + summary.size() + trailer.size() > max_bytes) break;
    out += ',';
    out += summary;
    ++shown;
  }
  if (shown < 1 + other_summaries.size()) {
    static constexpr std::string_view not_truncated = "\"truncated\":false";
    out.replace(out.find(not_truncated), not_truncated.size(), "\"truncated\":true");
  }
  out += trailer;
  return out;
}

}  // namespace mf::edge
