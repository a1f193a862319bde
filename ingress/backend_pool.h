#pragma once

// The backends (edges) one mf-ingress shard relays to: their configuration,
// health, load, and the choice of a backend for a new tunnel.
//
// One BackendPool per shard, touched only by its shard. Every shard applies
// the same sequence of apply() calls, so a backend has the same index on all
// of them and indices can cross shards in messages. Health is decided on
// shard 0 (active checks, record_check) and mirrored elsewhere (set_health);
// eject() is the local, passive half.
//
// Pure: no IO, no clock (times are passed in, in ms of one monotonic clock),
// no globals. Allocation happens only in apply(); picks, counters and health
// changes never allocate.
//
// Identity. A backend is its address. Its index is given when the address is
// first seen and never reused. An address missing from a later apply() is
// `removed`: never picked again, but its counters stay so tunnels still open
// to it are accounted, and if it comes back it is revived at its old index.
//
// Eligible for a new tunnel: up, not drained, not removed, below its
// max_connections (process-wide, see GlobalActive below), and not in the
// pick's ExcludeSet (the backends this client already failed to reach).
//
// Health (HealthSettings). A backend starts up, as HAProxy starts servers:
// traffic flows at once and a dead one is caught by eject() or the checks.
// `fall` consecutive failed checks take it down, `rise` consecutive good ones
// bring it back; any other result resets the opposite streak. eject() takes it
// down at once and restarts the rise count. A backend that comes back up
// ramps in over slow_start_ms (see effective_weight()).
//
// Balancing.
//   least connections  minimize (local active + 1) / effective weight; ties
//                      go round robin from a rotating start, so equal
//                      backends share evenly.
//   stream affinity    consistent hashing with bounded loads (Mirrokni,
//                      Thorup, Zadimoghaddam 2018): a ring of virtual nodes,
//                      walked clockwise from the key, taking the first
//                      eligible backend below its bound
//                        ceil(factor * (total + 1) * w / W)
//                      where total is the local active count over the ring's
//                      backends, w the backend's effective weight and W the
//                      sum over the ring. With equal weights this is
//                      ceil(factor * (total + 1) / n): the contract's
//                      "factor * average". Only backends that are up and not
//                      drained are on the ring, so when one leaves only its
//                      keys move; the ring changes only in apply() and on a
//                      health or drain change, never per pick.
// Both use the shard's own active counts: the kernel spreads connections
// evenly over shards, so balancing each shard balances the process.

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/base/transparent_string_hash.h"

namespace mf::ingress {

inline constexpr uint32_t max_backend_weight = 256;

// One [[backend]] entry as the configuration gives it.
struct BackendSpec {
  std::string address;           // HOST:PORT, the identity
  uint32_t weight = 1;           // 1..max_backend_weight
  uint32_t max_connections = 0;  // process-wide tunnel cap, 0 = none
  bool drained = false;          // no new tunnels
};

// Far beyond any configuration (about 34 years); keeps the ramp's
// arithmetic in 64 bits.
inline constexpr uint64_t max_slow_start_ms = uint64_t{1} << 40;

struct HealthSettings {
  uint32_t fall = 3;               // >= 1
  uint32_t rise = 2;               // >= 1
  uint64_t slow_start_ms = 10000;  // 0 = none, at most max_slow_start_ms
};

struct PoolSettings {
  HealthSettings health;
  uint32_t affinity_load_factor_percent = 125;  // 100..100000
};

enum class HealthState : uint8_t { up, down };

enum class HealthTransition : uint8_t { none, went_down, went_up };

enum class ApplyError : uint8_t {
  empty_address,      // a spec with an empty address
  bad_weight,         // weight 0 or above max_backend_weight
  duplicate_address,  // two specs with the same address
};

// A backend as metrics and the admin API see it.
struct Backend {
  std::string address;
  uint32_t weight = 1;
  uint32_t max_connections = 0;
  bool drained = false;
  bool removed = false;
  HealthState health = HealthState::up;
  uint32_t consecutive_successes = 0;
  uint32_t consecutive_failures = 0;
  // When it last went up; nullopt while down and for a backend up since it
  // was added, which is never in slow start.
  std::optional<uint64_t> up_since_ms;
  // When it last went up or down; 0 until it first does.
  uint64_t last_change_ms = 0;
  uint32_t active = 0;            // tunnels open on this shard
  uint64_t tunnels_total = 0;     // tunnels ever opened on this shard
  uint64_t connect_failures = 0;  // failed connects on this shard
};

// The backends a pick must skip: those this client already failed to reach.
// A handful at most (one per connect retry), so a small array is enough.
class ExcludeSet {
 public:
  static constexpr size_t capacity = 8;

  // Adds `index`; false when the set is full (nothing is added). Adding an
  // index already present succeeds.
  bool add(uint32_t index);
  bool contains(uint32_t index) const;
  size_t size() const { return size_; }

 private:
  std::array<uint32_t, capacity> indices_{};
  uint8_t size_ = 0;
};

// Process-wide open tunnels per backend index, for the max_connections
// check: the caller's view of every shard's counts (e.g. refreshed by
// message), element i for index i. The pool caps a backend at
// max(its own local count, the view's entry), so a view that lags never lets
// this shard exceed the cap alone. An empty view (one shard, tests) or an
// index past its end uses the local count only.
using GlobalActive = std::span<const uint32_t>;

class BackendPool {
 public:
  // Aborts on settings out of the ranges above: the configuration
  // validates them first.
  explicit BackendPool(PoolSettings settings = {});

  // Takes effect from the next check and pick.
  void set_settings(const PoolSettings& settings);
  const PoolSettings& settings() const { return settings_; }

  // Reconciles with the configuration's backend list, by address. Existing
  // backends keep index, counters and health and take the new weight, cap
  // and drained flag. New ones are appended in `specs` order, up and not in
  // slow start. Backends missing from `specs` become removed; a removed one
  // listed again is revived at its old index as if new (up, streaks reset)
  // with its counters kept, since its health was not checked meanwhile.
  // Deterministic: the same sequence of calls gives the same indices and
  // ring on every shard. On error nothing changes.
  std::expected<void, ApplyError> apply(std::span<const BackendSpec> specs);

  // The index of `address`, removed backends included.
  std::optional<uint32_t> find(std::string_view address) const;

  // One active check's result (shard 0). Returns went_down on the `fall`th
  // consecutive failure of an up backend, went_up on the `rise`th
  // consecutive success of a down one (which then starts its slow start at
  // now_ms), none otherwise.
  HealthTransition record_check(uint32_t index, bool ok, uint64_t now_ms);

  // Passive ejection after a failed connect: down at once, and `rise` good
  // checks are needed to come back. went_down if it was up.
  HealthTransition eject(uint32_t index, uint64_t now_ms);

  // Mirrors a decision made on another shard. Going up starts slow start at
  // now_ms. Streaks reset. Returns the transition, none if already so.
  HealthTransition set_health(uint32_t index, bool up, uint64_t now_ms);

  // The admin API's drain and enable. Lasts until the next apply(), which
  // sets the flag from the configuration.
  void set_drained(uint32_t index, bool drained);

  // The tunnel's backend for least-connections balancing, or nullopt when no
  // backend is eligible.
  std::optional<uint32_t> pick_least_connections(uint64_t now_ms, const ExcludeSet& exclude = {},
                                                 GlobalActive global_active = {});

  // The tunnel's backend for stream affinity: `key_hash` is hash_key() of
  // the affinity parameter. nullopt when no backend is eligible. When every
  // eligible backend is at its bound (possible only when those below it are
  // excluded or capped), the key's first eligible backend is used.
  std::optional<uint32_t> pick_by_key(uint64_t key_hash, uint64_t now_ms,
                                      const ExcludeSet& exclude = {},
                                      GlobalActive global_active = {});

  // A well-mixed 64-bit hash of an affinity key (FNV-1a, then a 64-bit
  // avalanche finalizer so that short keys that differ in one byte land far
  // apart on the ring). Stable across processes and builds.
  static uint64_t hash_key(std::string_view key);

  // A tunnel to `index` begins (call it when the pick is made, connect
  // included, so the next pick sees it) and ends (every opened tunnel is
  // closed exactly once, whether or not its connect succeeded). Closing with
  // no tunnel open aborts.
  void on_tunnel_opened(uint32_t index);
  void on_tunnel_closed(uint32_t index);
  // Counts a failed connect; eject() is the caller's separate decision.
  void on_connect_failed(uint32_t index);

  // Every backend ever applied, by index, removed ones included.
  std::span<const Backend> backends() const { return backends_; }

  // Whether some backend could take a new tunnel, caps aside: up, not
  // drained, not removed. The admin /healthz answers 503 otherwise.
  bool any_up() const;

  // The backend's weight in thousandths at now_ms, slow start applied:
  //   weight * 1000 * max(0.1, (now_ms - up_since_ms) / slow_start_ms)
  // while now_ms - up_since_ms < slow_start_ms, weight * 1000 otherwise
  // (and always without an up_since_ms or with slow_start_ms 0).
  uint64_t effective_weight(uint32_t index, uint64_t now_ms) const;

 private:
  // A virtual node: a point of a backend on the ring.
  struct RingPoint {
    uint64_t hash;
    uint32_t index;
  };

  PoolSettings settings_;
  std::vector<Backend> backends_;
  std::unordered_map<std::string, uint32_t, TransparentStringHash, std::equal_to<>> by_address_;
  // Every point of every backend not removed, sorted by (hash, index):
  // built by apply(). ring_ is its subsequence for the backends on the ring
  // (up, not drained), rebuilt in place on a health or drain change within
  // the capacity reserved by apply().
  std::vector<RingPoint> all_points_;
  std::vector<RingPoint> ring_;
  // Over the backends on the ring: how many, their local active tunnels,
  // their full weights in thousandths, and when the last of their slow
  // starts ends (before that, picks sum the ramped weights instead).
  uint32_t ring_backends_ = 0;
  uint64_t ring_active_ = 0;
  uint64_t ring_weight_ = 0;
  uint64_t ring_ramp_end_ms_ = 0;
  // pick_by_key's "seen on this walk" marks, by index: backends_[i] was
  // seen on the current walk when visit_mark_[i] == visit_epoch_.
  std::vector<uint32_t> visit_mark_;
  uint32_t visit_epoch_ = 0;
  // Where pick_least_connections starts its scan.
  uint32_t next_start_ = 0;

  Backend& at(uint32_t index);
  bool on_ring(const Backend& b) const { return b.health == HealthState::up && !b.drained && !b.removed; }
  bool eligible(uint32_t index, const ExcludeSet& exclude, GlobalActive global_active) const;
  uint64_t weight_now(const Backend& b, uint64_t now_ms) const;
  HealthTransition go(Backend& b, HealthState state, uint64_t now_ms);
  void rebuild_all_points();
  void rebuild_ring();
  void recount_ring();
};

}  // namespace mf::ingress
