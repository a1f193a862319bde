#pragma once
// Small helpers shared by the files of EdgeShard's roles (edge_shard*.cc);
// not part of any interface.
#include <time.h>

#include <cstdint>
#include <string_view>

#include "common/base/keyed_hash.h"
#include "edge/sdk_message.h"
#include "edge/swarm.h"

namespace mf::edge::shard_support {

// /api/streams lists at most this many streams (the busiest): the answer
// stays small enough for a page refreshed every second.
inline constexpr size_t max_api_streams = 1000;

// Keyed (common/base/keyed_hash.h): a client cannot choose ids that all land on
// one shard.
inline uint64_t hash_text(std::string_view text) { return keyed_hash(text); }

inline uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000 + static_cast<uint64_t>(ts.tv_nsec);
}

inline Topology topology_from(const TopologyFields& fields) {
  // The parser already bounded every string to the capacity; asn -1 = none.
  auto t = make_topology(fields.region, fields.country, fields.has_asn ? fields.asn : -1, fields.network);
  return t ? *t : Topology{};
}

}  // namespace mf::edge::shard_support
