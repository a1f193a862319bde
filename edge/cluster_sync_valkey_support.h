#pragma once
// Constants and small helpers shared by the files of ValkeyClusterSync
// (cluster_sync_valkey*.cc, docs/cluster.md); not part of any interface.
#include <time.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mf::edge::cluster_support {

using std::string_view_literals::operator""sv;

// A seat taken for a join in flight lasts this long unless the join's
// registration (which follows at once) extends it to the presence TTL: a
// join abandoned between the two holds a seat at most this long.
inline constexpr uint64_t seat_reservation_ms = 2000;

// Members per register command (a refresh of a big swarm is several).
inline constexpr size_t register_batch = 64;
// The refresh period is cut into this many ticks: an owner key is written on
// the tick of its connection's slot, a swarm's registration on the tick of
// its stream (so a swarm's members still go in batches of register_batch).
inline constexpr uint32_t refresh_parts = 10;
inline constexpr uint32_t all_refresh_parts = UINT32_MAX;
// Sample asked from Valkey per wanted candidate: peers of this edge, the
// requester, excluded and non-accepting ones are in the sample too.
inline constexpr uint32_t max_sample = 256;

inline uint64_t unix_ms() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

// Integers as command arguments, without allocating.
struct Decimal {
  char digits[24];
  size_t size;
  explicit Decimal(uint64_t value) { size = static_cast<size_t>(std::to_chars(digits, digits + sizeof digits, value).ptr - digits); }
  std::string_view view() const { return {digits, size}; }
};

}  // namespace mf::edge::cluster_support
