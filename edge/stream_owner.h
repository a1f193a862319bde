#pragma once
// The stream-owner role of an edge shard: the swarms of the streams whose
// streamId hashes to this shard (docs/architecture.md, "The edge on this
// runtime"). Messages in, replies out: a seat under maxViewers and the first
// candidates for a join (EnterSwarm -> EnterResult), candidates for a
// need-peers (PickPeers -> PeersResult), leaves, topology updates and stats.
// It never touches a connection; the shard sends each reply to the
// connection's shard named in it (`who`).
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "edge/edge_messages.h"
#include "edge/stream_table.h"

namespace mf::edge {

class StreamOwner {
 public:
  explicit StreamOwner(uint64_t seed, uint16_t shard = 0);

  // A seat in the stream's swarm (refused when maxViewers is reached) and,
  // when the mesh is on, up to initial_peers candidates.
  std::unique_ptr<EnterResult> enter(const EnterSwarm& m, uint64_t now_ms);
  // Candidates for a need-peers; the request's texts move into the reply.
  std::unique_ptr<PeersResult> pick(std::unique_ptr<PickPeers> m, uint64_t now_ms);
  // Both act only if `where` is still the registered member (a late message
  // from a replaced connection leaves its successor alone).
  void leave(const LeaveSwarm& m);
  void update(const UpdateMember& m);
  void add_stats(const StatsDelta& m);

  // Up to request.count candidates, best first, counted as proposals.
  CandidateList pick_candidates(std::string_view stream_id, std::string_view rendition, const PickRequest& request);

  uint32_t viewers(std::string_view stream_id) const { return streams_.viewers(stream_id); }
  size_t stream_count() const { return streams_.stream_count(); }
  void summarize(std::vector<StreamSummary>& out) const { streams_.summarize(out); }

 private:
  StreamTable streams_;
  std::vector<char> topology_scratch_;  // max_topology_json_bytes per candidate
};

}  // namespace mf::edge
