#pragma once
// The streams one shard owns (those whose streamId hashes to it): their
// swarms per rendition, viewer count and offload totals. Every enter, leave,
// pick and update of a stream happens here, on one thread, so the viewer cap
// and the candidates are consistent without locks. Pure: no IO, no clock
// (time is passed in).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/base/transparent_string_hash.h"
#include "edge/swarm.h"

namespace mf::edge {

// Offload telemetry from `stats`, summed over a stream's peers.
struct StreamStats {
  uint64_t p2p_bytes = 0;
  uint64_t cdn_bytes = 0;
  uint64_t uploaded_bytes = 0;
  uint64_t connected_proposals = 0;  // the `connectedProposals` extension (docs/protocol.md)

  // Adds `delta`, saturating at 2^64 - 1: a total never wraps (a counter
  // that wrapped would go down).
  void add(const StreamStats& delta) {
    p2p_bytes = saturating_add(p2p_bytes, delta.p2p_bytes);
    cdn_bytes = saturating_add(cdn_bytes, delta.cdn_bytes);
    uploaded_bytes = saturating_add(uploaded_bytes, delta.uploaded_bytes);
    connected_proposals = saturating_add(connected_proposals, delta.connected_proposals);
  }
  static uint64_t saturating_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
};

struct RenditionPeers {
  std::string rendition;
  uint32_t peers = 0;
};

// What the stream's owner knows of it, for /metrics and /api/streams. The
// counters live with the stream's state: they start when its first peer
// joins and are dropped with it when its last peer leaves.
struct StreamSummary {
  std::string stream_id;
  uint32_t viewers = 0;
  uint64_t joins = 0;      // entries into the stream (switches of rendition included)
  uint64_t proposals = 0;  // candidates sent in `peers`
  StreamStats stats;
  std::vector<RenditionPeers> renditions;  // by name
};

enum class EnterOutcome : uint8_t {
  entered,   // a new viewer of the stream
  moved,     // the peer was already a viewer (takeover, or a switch of rendition): count unchanged
  full,      // max_viewers reached: not added
};

// One candidate written by pick(): the views live until the table changes.
struct PickedPeer {
  std::string_view peer_id;
  std::string_view rendition;
  std::string_view topology_json;
};

class StreamTable {
 public:
  // `shard`: the owning shard, part of every stream key it makes.
  explicit StreamTable(uint64_t seed, uint16_t shard = 0);

  EnterOutcome enter(std::string_view stream_id, std::string_view rendition, const Member& member,
                     uint32_t max_viewers);
  // Removes the peer if `who` is still where it is registered (a late leave
  // from a replaced connection leaves its successor alone).
  bool leave(std::string_view stream_id, std::string_view peer_id, const MemberLocation& who);
  bool update(std::string_view stream_id, std::string_view peer_id, const MemberLocation& who,
              const Topology& topology, bool accepting_peers);

  // Up to request.count candidates from (stream, rendition), best first,
  // counted as the stream's proposals. Topology JSON is rendered into
  // `topology_scratch` (max_topology_json_bytes per candidate).
  size_t pick(std::string_view stream_id, std::string_view rendition, const PickRequest& request,
              std::span<PickedPeer> out, std::span<char> topology_scratch);

  void add_stats(std::string_view stream_id, const StreamStats& delta);

  uint32_t viewers(std::string_view stream_id) const;
  // The stream's key while it has members (0: none): unique on this edge
  // for the life of the process (the owning shard and a counter), so two
  // joined connections are in the same stream exactly when their keys are
  // equal; a stream that empties and starts again gets a new key. The relay
  // compares keys instead of streamIds (docs/architecture.md, "The relay path").
  uint64_t key(std::string_view stream_id) const;
  size_t stream_count() const { return streams_.size(); }
  // Appends one summary per stream (metrics, /api/streams).
  void summarize(std::vector<StreamSummary>& out) const;

 private:
  struct MemberRef {
    std::string rendition;
    MemberHandle handle;
  };
  struct Stream {
    std::unordered_map<std::string, Swarm, TransparentStringHash, std::equal_to<>> swarms;
    std::unordered_map<std::string, MemberRef, TransparentStringHash, std::equal_to<>> members;  // by peerId
    StreamStats stats;
    uint64_t joins = 0;
    uint64_t proposals = 0;
    uint64_t key = 0;
  };
  using MemberMap = std::unordered_map<std::string, MemberRef, TransparentStringHash, std::equal_to<>>;
  using StreamMap = std::unordered_map<std::string, Stream, TransparentStringHash, std::equal_to<>>;
  // A member found where `who` registered it; swarm == nullptr: not found.
  struct FoundMember {
    StreamMap::iterator stream;
    MemberMap::iterator member;
    Swarm* swarm = nullptr;
  };
  FoundMember find_member(std::string_view stream_id, std::string_view peer_id, const MemberLocation& who);
  static bool same_location(const MemberLocation& a, const MemberLocation& b);
  void remove_member(Stream& stream, MemberMap::iterator member);

  StreamMap streams_;
  Rng rng_;
  uint64_t seed_;
  uint64_t key_base_;       // (shard + 1) << 48
  uint64_t streams_made_ = 0;
};

}  // namespace mf::edge
