#include "ingress/backend_pool.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

// Heap allocations made by this thread: the pool promises none outside
// apply().
namespace {
thread_local size_t allocations = 0;
}  // namespace

// Out of line, so that GCC does not see malloc meet a new-expression.
[[gnu::noinline]] void* operator new(size_t size) {
  ++allocations;
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) std::abort();
  return p;
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace mf::ingress {
namespace {

BackendSpec spec(std::string address, uint32_t weight = 1, uint32_t max_connections = 0, bool drained = false) {
  return BackendSpec{std::move(address), weight, max_connections, drained};
}

std::vector<BackendSpec> equal_specs(size_t n) {
  std::vector<BackendSpec> specs;
  for (size_t i = 0; i < n; ++i) specs.push_back(spec("10.0.0." + std::to_string(i + 1) + ":8446"));
  return specs;
}

PoolSettings settings(uint32_t fall = 3, uint32_t rise = 2, uint64_t slow_start_ms = 10000,
                      uint32_t factor = 125) {
  return PoolSettings{HealthSettings{fall, rise, slow_start_ms}, factor};
}

BackendPool pool_of(const std::vector<BackendSpec>& specs, PoolSettings s = settings()) {
  BackendPool pool(s);
  EXPECT_TRUE(pool.apply(specs).has_value());
  return pool;
}

uint64_t key(int i) { return BackendPool::hash_key("stream-" + std::to_string(i)); }

// Picks `n` tunnels by least connections at `now`, keeping them open, and
// returns how many each backend got.
std::vector<int> open_least_connections(BackendPool& pool, int n, uint64_t now) {
  std::vector<int> got(pool.backends().size());
  for (int k = 0; k < n; ++k) {
    auto i = pool.pick_least_connections(now);
    if (!i) {
      ADD_FAILURE() << "no backend at pick " << k;
      break;
    }
    pool.on_tunnel_opened(*i);
    ++got[*i];
  }
  return got;
}

// ---- apply ----

TEST(BackendPoolApply, NewBackendsAreAppendedUpInOrder) {
  BackendPool pool = pool_of({spec("a:1", 2, 10), spec("b:1"), spec("c:1", 1, 0, true)});
  ASSERT_EQ(pool.backends().size(), 3u);
  EXPECT_EQ(pool.backends()[0].address, "a:1");
  EXPECT_EQ(pool.backends()[0].weight, 2u);
  EXPECT_EQ(pool.backends()[0].max_connections, 10u);
  EXPECT_EQ(pool.backends()[2].address, "c:1");
  EXPECT_TRUE(pool.backends()[2].drained);
  for (const Backend& b : pool.backends()) {
    EXPECT_EQ(b.health, HealthState::up);
    EXPECT_FALSE(b.removed);
    EXPECT_FALSE(b.up_since_ms.has_value());  // up since added: no slow start
  }
  EXPECT_EQ(pool.find("b:1"), 1u);
  EXPECT_EQ(pool.find("x:1"), std::nullopt);
  EXPECT_TRUE(pool.any_up());
}

TEST(BackendPoolApply, ExistingKeepIndexCountersAndHealthAndTakeNewSettings) {
  BackendPool pool = pool_of({spec("a:1"), spec("b:1")});
  pool.on_tunnel_opened(1);
  pool.on_connect_failed(1);
  pool.eject(1, 50);
  ASSERT_TRUE(pool.apply(std::vector{spec("new:1"), spec("b:1", 7, 3, true), spec("a:1")}).has_value());
  ASSERT_EQ(pool.backends().size(), 3u);
  const Backend& b = pool.backends()[1];
  EXPECT_EQ(b.address, "b:1");
  EXPECT_EQ(b.weight, 7u);
  EXPECT_EQ(b.max_connections, 3u);
  EXPECT_TRUE(b.drained);
  EXPECT_EQ(b.health, HealthState::down);
  EXPECT_EQ(b.active, 1u);
  EXPECT_EQ(b.tunnels_total, 1u);
  EXPECT_EQ(b.connect_failures, 1u);
  EXPECT_EQ(pool.backends()[2].address, "new:1");
  EXPECT_EQ(pool.find("new:1"), 2u);
}

TEST(BackendPoolApply, MissingBecomeRemovedNeverPickedCountersKept) {
  BackendPool pool = pool_of({spec("a:1"), spec("b:1")});
  pool.on_tunnel_opened(0);
  ASSERT_TRUE(pool.apply(std::vector{spec("b:1")}).has_value());
  ASSERT_EQ(pool.backends().size(), 2u);
  EXPECT_TRUE(pool.backends()[0].removed);
  EXPECT_EQ(pool.backends()[0].active, 1u);
  EXPECT_EQ(pool.find("a:1"), 0u);
  for (int k = 0; k < 50; ++k) {
    EXPECT_EQ(pool.pick_least_connections(0), 1u);
    EXPECT_EQ(pool.pick_by_key(key(k), 0), 1u);
  }
  // The tunnel still open to it closes normally.
  pool.on_tunnel_closed(0);
  EXPECT_EQ(pool.backends()[0].active, 0u);
  ASSERT_TRUE(pool.apply(std::vector<BackendSpec>{}).has_value());
  EXPECT_FALSE(pool.any_up());
  EXPECT_EQ(pool.pick_least_connections(0), std::nullopt);
  EXPECT_EQ(pool.pick_by_key(key(1), 0), std::nullopt);
}

TEST(BackendPoolApply, RevivedBackendKeepsItsIndexAndCounters) {
  BackendPool pool = pool_of({spec("a:1"), spec("b:1"), spec("c:1")});
  pool.on_tunnel_opened(1);
  pool.eject(1, 10);
  pool.set_health(1, true, 20);  // in slow start when removed
  ASSERT_TRUE(pool.backends()[1].up_since_ms.has_value());
  ASSERT_TRUE(pool.apply(std::vector{spec("a:1"), spec("c:1")}).has_value());
  EXPECT_TRUE(pool.backends()[1].removed);
  ASSERT_TRUE(pool.apply(std::vector{spec("c:1"), spec("d:1"), spec("b:1", 4)}).has_value());
  ASSERT_EQ(pool.backends().size(), 4u);
  EXPECT_EQ(pool.find("b:1"), 1u);
  EXPECT_EQ(pool.find("d:1"), 3u);
  const Backend& b = pool.backends()[1];
  EXPECT_FALSE(b.removed);
  EXPECT_EQ(b.weight, 4u);
  EXPECT_EQ(b.tunnels_total, 1u);
  EXPECT_EQ(b.active, 1u);
  // Revived as new: up, not in slow start.
  EXPECT_EQ(b.health, HealthState::up);
  EXPECT_FALSE(b.up_since_ms.has_value());
  EXPECT_TRUE(pool.backends()[0].removed);
}

TEST(BackendPoolApply, RejectsBadSpecsAndChangesNothing) {
  BackendPool pool = pool_of({spec("a:1")});
  EXPECT_EQ(pool.apply(std::vector{spec("b:1"), spec("b:1")}).error(), ApplyError::duplicate_address);
  EXPECT_EQ(pool.apply(std::vector{spec("b:1", 0)}).error(), ApplyError::bad_weight);
  EXPECT_EQ(pool.apply(std::vector{spec("b:1", max_backend_weight + 1)}).error(), ApplyError::bad_weight);
  EXPECT_EQ(pool.apply(std::vector{spec("")}).error(), ApplyError::empty_address);
  ASSERT_EQ(pool.backends().size(), 1u);
  EXPECT_FALSE(pool.backends()[0].removed);
  EXPECT_TRUE(pool.apply(std::vector{spec("b:1", max_backend_weight)}).has_value());
}

// ---- health ----

TEST(BackendPoolHealth, DownAfterFallConsecutiveFailures) {
  BackendPool pool = pool_of(equal_specs(1), settings(3, 2));
  EXPECT_EQ(pool.record_check(0, false, 1), HealthTransition::none);
  EXPECT_EQ(pool.record_check(0, false, 2), HealthTransition::none);
  EXPECT_EQ(pool.record_check(0, true, 3), HealthTransition::none);  // resets the streak
  EXPECT_EQ(pool.record_check(0, false, 4), HealthTransition::none);
  EXPECT_EQ(pool.record_check(0, false, 5), HealthTransition::none);
  EXPECT_EQ(pool.backends()[0].consecutive_failures, 2u);
  EXPECT_EQ(pool.backends()[0].health, HealthState::up);
  EXPECT_EQ(pool.record_check(0, false, 6), HealthTransition::went_down);
  EXPECT_EQ(pool.backends()[0].health, HealthState::down);
  EXPECT_EQ(pool.backends()[0].last_change_ms, 6u);
  EXPECT_EQ(pool.record_check(0, false, 7), HealthTransition::none);
  EXPECT_FALSE(pool.any_up());
}

TEST(BackendPoolHealth, UpAfterRiseConsecutiveSuccesses) {
  BackendPool pool = pool_of(equal_specs(1), settings(1, 3));
  EXPECT_EQ(pool.record_check(0, false, 1), HealthTransition::went_down);
  EXPECT_EQ(pool.record_check(0, true, 2), HealthTransition::none);
  EXPECT_EQ(pool.record_check(0, true, 3), HealthTransition::none);
  EXPECT_EQ(pool.record_check(0, false, 4), HealthTransition::none);  // resets the streak
  EXPECT_EQ(pool.record_check(0, true, 5), HealthTransition::none);
  EXPECT_EQ(pool.record_check(0, true, 6), HealthTransition::none);
  EXPECT_EQ(pool.backends()[0].consecutive_successes, 2u);
  EXPECT_EQ(pool.record_check(0, true, 7), HealthTransition::went_up);
  EXPECT_EQ(pool.backends()[0].health, HealthState::up);
  EXPECT_EQ(pool.backends()[0].up_since_ms, 7u);
  EXPECT_EQ(pool.record_check(0, true, 8), HealthTransition::none);
}

TEST(BackendPoolHealth, FallAndRiseOfOne) {
  BackendPool pool = pool_of(equal_specs(1), settings(1, 1));
  EXPECT_EQ(pool.record_check(0, false, 1), HealthTransition::went_down);
  EXPECT_EQ(pool.record_check(0, true, 2), HealthTransition::went_up);
}

TEST(BackendPoolHealth, EjectIsImmediateAndNeedsRiseChecksToReturn) {
  BackendPool pool = pool_of(equal_specs(2), settings(3, 2));
  EXPECT_EQ(pool.eject(0, 100), HealthTransition::went_down);
  EXPECT_EQ(pool.backends()[0].health, HealthState::down);
  EXPECT_EQ(pool.backends()[0].last_change_ms, 100u);
  for (int k = 0; k < 20; ++k) EXPECT_EQ(pool.pick_least_connections(100), 1u);
  EXPECT_EQ(pool.record_check(0, true, 200), HealthTransition::none);
  // A second failure during recovery restarts the count.
  EXPECT_EQ(pool.eject(0, 250), HealthTransition::none);
  EXPECT_EQ(pool.backends()[0].consecutive_successes, 0u);
  EXPECT_EQ(pool.record_check(0, true, 300), HealthTransition::none);
  EXPECT_EQ(pool.record_check(0, true, 400), HealthTransition::went_up);
  EXPECT_EQ(pool.backends()[0].up_since_ms, 400u);
}

TEST(BackendPoolHealth, SetHealthMirrorsAnotherShard) {
  BackendPool pool = pool_of(equal_specs(2));
  EXPECT_EQ(pool.set_health(1, false, 10), HealthTransition::went_down);
  EXPECT_EQ(pool.set_health(1, false, 11), HealthTransition::none);
  EXPECT_EQ(pool.backends()[1].last_change_ms, 10u);
  for (int k = 0; k < 10; ++k) EXPECT_EQ(pool.pick_by_key(key(k), 10), 0u);
  EXPECT_EQ(pool.set_health(1, true, 20), HealthTransition::went_up);
  EXPECT_EQ(pool.set_health(1, true, 21), HealthTransition::none);
  EXPECT_EQ(pool.backends()[1].up_since_ms, 20u);
  EXPECT_EQ(pool.effective_weight(1, 20), 100u);  // slow start begins
}

TEST(BackendPoolHealth, AnyUpIgnoresDownDrainedAndRemoved) {
  BackendPool pool = pool_of({spec("a:1"), spec("b:1", 1, 0, true), spec("c:1")});
  EXPECT_TRUE(pool.any_up());
  pool.eject(0, 1);
  EXPECT_TRUE(pool.any_up());
  ASSERT_TRUE(pool.apply(std::vector{spec("a:1"), spec("b:1", 1, 0, true)}).has_value());
  EXPECT_FALSE(pool.any_up());
  pool.set_drained(1, false);
  EXPECT_TRUE(pool.any_up());
}

// ---- slow start ----

TEST(BackendPoolSlowStart, EffectiveWeightRampsFromTenPercent) {
  BackendPool pool = pool_of({spec("a:1", 4), spec("b:1", 4)}, settings(3, 2, 10000));
  EXPECT_EQ(pool.effective_weight(0, 0), 4000u);  // up since added
  pool.set_health(1, false, 1000);
  pool.set_health(1, true, 2000);
  EXPECT_EQ(pool.effective_weight(1, 1500), 400u);   // clock before up_since: the floor
  EXPECT_EQ(pool.effective_weight(1, 2000), 400u);
  EXPECT_EQ(pool.effective_weight(1, 2500), 400u);   // 5% < 10% floor
  EXPECT_EQ(pool.effective_weight(1, 4000), 800u);   // 20%
  EXPECT_EQ(pool.effective_weight(1, 7000), 2000u);  // 50%
  EXPECT_EQ(pool.effective_weight(1, 11999), 3999u);
  EXPECT_EQ(pool.effective_weight(1, 12000), 4000u);
  EXPECT_EQ(pool.effective_weight(1, 99999), 4000u);
}

TEST(BackendPoolSlowStart, ZeroMeansNone) {
  BackendPool pool = pool_of(equal_specs(2), settings(3, 2, 0));
  pool.eject(1, 0);
  pool.set_health(1, true, 100);
  EXPECT_EQ(pool.effective_weight(1, 100), 1000u);
}

// A returning backend's share of new tunnels follows its ramp.
TEST(BackendPoolSlowStart, ShareOfNewTunnelsFollowsTheRamp) {
  struct Phase {
    uint64_t elapsed;
    double share;  // of B: w / (1 + w)
  };
  for (const Phase& phase : {Phase{0, 0.1 / 1.1}, Phase{5000, 0.5 / 1.5}, Phase{10000, 0.5}}) {
    BackendPool pool = pool_of(equal_specs(2), settings(3, 2, 10000));
    pool.eject(1, 0);
    pool.set_health(1, true, 1000);
    const auto got = open_least_connections(pool, 3300, 1000 + phase.elapsed);
    EXPECT_NEAR(got[1] / 3300.0, phase.share, 0.01) << phase.elapsed;
  }
}

TEST(BackendPoolSlowStart, LowersTheAffinityBound) {
  // Every key goes to B first; B in slow start at 10% of its weight may
  // hold only ceil(1.25 * (total + 1) * 0.1 / 1.1) tunnels.
  BackendPool pool = pool_of(equal_specs(2), settings(3, 2, 10000, 125));
  pool.eject(1, 0);
  pool.set_health(1, true, 1000);
  std::vector<int> got(2);
  for (int k = 0; k < 2000; ++k) {
    const uint64_t h = key(k);
    pool.set_drained(0, true);
    const bool to_b = pool.pick_by_key(h, 1000) == 1u;
    pool.set_drained(0, false);
    if (!to_b) continue;
    auto i = pool.pick_by_key(h, 1000);
    ASSERT_TRUE(i.has_value());
    pool.on_tunnel_opened(*i);
    ++got[*i];
  }
  const int total = got[0] + got[1];
  EXPECT_LE(got[1], std::ceil(1.25 * total * 0.1 / 1.1) + 1);
  EXPECT_GT(got[1], 0);
}

// ---- least connections ----

TEST(BackendPoolLeastConnections, EqualBackendsShareEvenly) {
  BackendPool pool = pool_of(equal_specs(4));
  const auto got = open_least_connections(pool, 4000, 0);
  for (int g : got) EXPECT_EQ(g, 1000);
}

TEST(BackendPoolLeastConnections, TiesRotateWhenTunnelsAreShort) {
  // Every tunnel closes before the next pick: all counts stay 0, and only the
  // rotating start keeps one backend from taking everything.
  BackendPool pool = pool_of(equal_specs(3));
  std::vector<int> got(3);
  for (int k = 0; k < 300; ++k) {
    auto i = pool.pick_least_connections(0);
    ASSERT_TRUE(i.has_value());
    pool.on_tunnel_opened(*i);
    pool.on_tunnel_closed(*i);
    ++got[*i];
  }
  for (int g : got) EXPECT_EQ(g, 100);
}

TEST(BackendPoolLeastConnections, PrefersTheLeastLoaded) {
  BackendPool pool = pool_of(equal_specs(3));
  for (int k = 0; k < 5; ++k) pool.on_tunnel_opened(0);
  for (int k = 0; k < 2; ++k) pool.on_tunnel_opened(1);
  for (int k = 0; k < 3; ++k) pool.on_tunnel_opened(2);
  EXPECT_EQ(pool.pick_least_connections(0), 1u);
}

TEST(BackendPoolLeastConnections, SharesFollowWeights) {
  BackendPool pool = pool_of({spec("a:1", 3), spec("b:1", 1), spec("c:1", 6)});
  const auto got = open_least_connections(pool, 10000, 0);
  EXPECT_NEAR(got[0], 3000, 2);
  EXPECT_NEAR(got[1], 1000, 2);
  EXPECT_NEAR(got[2], 6000, 2);
}

TEST(BackendPoolLeastConnections, LocalCapIsRespected) {
  BackendPool pool = pool_of({spec("a:1", 1, 2), spec("b:1", 1, 3)});
  const auto got = open_least_connections(pool, 5, 0);
  EXPECT_EQ(got[0], 2);
  EXPECT_EQ(got[1], 3);
  EXPECT_EQ(pool.pick_least_connections(0), std::nullopt);
  EXPECT_EQ(pool.pick_by_key(key(1), 0), std::nullopt);
  pool.on_tunnel_closed(0);
  EXPECT_EQ(pool.pick_least_connections(0), 0u);
}

TEST(BackendPoolLeastConnections, GlobalCapUsesTheProcessWideView) {
  BackendPool pool = pool_of({spec("a:1", 1, 10), spec("b:1", 1, 0), spec("c:1", 1, 4)});
  // Other shards hold 10 tunnels to a: it is full though this shard has none.
  const std::vector<uint32_t> global = {10, 50, 3};
  for (int k = 0; k < 20; ++k) {
    auto i = pool.pick_least_connections(0, {}, global);
    ASSERT_TRUE(i.has_value());
    EXPECT_NE(*i, 0u);
    auto j = pool.pick_by_key(key(k), 0, {}, global);
    ASSERT_TRUE(j.has_value());
    EXPECT_NE(*j, 0u);
  }
  // c: 3 process-wide, one more allowed.
  const std::vector<uint32_t> c_has_room = {10, 50, 3};
  for (int k = 0; k < 3; ++k) pool.on_tunnel_opened(1);
  EXPECT_EQ(pool.pick_least_connections(0, {}, c_has_room), 2u);
  // A lagging view never hides this shard's own tunnels: c holds 4 here.
  for (int k = 0; k < 4; ++k) pool.on_tunnel_opened(2);
  const std::vector<uint32_t> stale = {0, 0, 1};
  for (int k = 0; k < 20; ++k) {
    EXPECT_NE(pool.pick_least_connections(0, {}, stale), 2u);
    EXPECT_NE(pool.pick_by_key(key(k), 0, {}, stale), 2u);
  }
  BackendPool lone = pool_of({spec("c:1", 1, 4)});
  for (int k = 0; k < 4; ++k) lone.on_tunnel_opened(0);
  const std::vector<uint32_t> lagging = {1};
  EXPECT_EQ(lone.pick_least_connections(0, {}, lagging), std::nullopt);
  EXPECT_EQ(lone.pick_by_key(key(1), 0, {}, lagging), std::nullopt);
  // A view shorter than the pool: the rest uses local counts.
  const std::vector<uint32_t> short_view = {10};
  EXPECT_EQ(pool.pick_least_connections(0, {}, short_view), 1u);
}

TEST(BackendPoolLeastConnections, ExcludedBackendsAreSkipped) {
  BackendPool pool = pool_of(equal_specs(3));
  ExcludeSet exclude;
  ASSERT_TRUE(exclude.add(0));
  ASSERT_TRUE(exclude.add(2));
  for (int k = 0; k < 10; ++k) {
    EXPECT_EQ(pool.pick_least_connections(0, exclude), 1u);
    EXPECT_EQ(pool.pick_by_key(key(k), 0, exclude), 1u);
  }
  ASSERT_TRUE(exclude.add(1));
  EXPECT_EQ(pool.pick_least_connections(0, exclude), std::nullopt);
  EXPECT_EQ(pool.pick_by_key(key(1), 0, exclude), std::nullopt);
}

TEST(ExcludeSet, HoldsUpToCapacityAndIgnoresRepeats) {
  ExcludeSet set;
  EXPECT_FALSE(set.contains(0));
  for (uint32_t i = 0; i < ExcludeSet::capacity; ++i) EXPECT_TRUE(set.add(i * 7));
  EXPECT_TRUE(set.add(7));  // already there
  EXPECT_EQ(set.size(), ExcludeSet::capacity);
  EXPECT_FALSE(set.add(1000));
  EXPECT_FALSE(set.contains(1000));
  EXPECT_TRUE(set.contains(7 * (ExcludeSet::capacity - 1)));
  EXPECT_FALSE(set.contains(1));
}

TEST(BackendPoolLeastConnections, DrainedAndDownAreNeverPicked) {
  BackendPool pool = pool_of({spec("a:1", 1, 0, true), spec("b:1"), spec("c:1"), spec("d:1")});
  pool.set_drained(2, true);
  pool.eject(3, 0);
  for (int k = 0; k < 50; ++k) {
    EXPECT_EQ(pool.pick_least_connections(0), 1u);
    EXPECT_EQ(pool.pick_by_key(key(k), 0), 1u);
  }
  pool.set_drained(1, true);
  EXPECT_EQ(pool.pick_least_connections(0), std::nullopt);
  EXPECT_EQ(pool.pick_by_key(key(1), 0), std::nullopt);
  pool.set_drained(0, false);
  EXPECT_EQ(pool.pick_least_connections(0), 0u);
  EXPECT_EQ(pool.pick_by_key(key(1), 0), 0u);
}

// ---- counters ----

TEST(BackendPoolCounters, OpenCloseAndConnectFailures) {
  BackendPool pool = pool_of(equal_specs(2));
  pool.on_tunnel_opened(1);
  pool.on_tunnel_opened(1);
  pool.on_tunnel_closed(1);
  pool.on_connect_failed(1);
  const Backend& b = pool.backends()[1];
  EXPECT_EQ(b.active, 1u);
  EXPECT_EQ(b.tunnels_total, 2u);
  EXPECT_EQ(b.connect_failures, 1u);
  EXPECT_EQ(b.health, HealthState::up);  // counting alone does not eject
  EXPECT_EQ(pool.backends()[0].tunnels_total, 0u);
}

TEST(BackendPoolDeathTest, ImpossibleCallsAbort) {
  EXPECT_DEATH(
      {
        BackendPool pool = pool_of(equal_specs(1));
        pool.on_tunnel_closed(0);
      },
      "");
  EXPECT_DEATH(
      {
        BackendPool pool = pool_of(equal_specs(1));
        pool.on_tunnel_opened(1);
      },
      "");
  EXPECT_DEATH(BackendPool(settings(0, 2)), "");
  EXPECT_DEATH(BackendPool(settings(3, 0)), "");
  EXPECT_DEATH(BackendPool(settings(3, 2, 0, 99)), "");
  EXPECT_DEATH(BackendPool(settings(3, 2, max_slow_start_ms + 1)), "");
  BackendPool widest(settings(1, 1, max_slow_start_ms, 100000));
  ASSERT_TRUE(widest.apply(std::vector{spec("a:1", max_backend_weight)}).has_value());
  widest.set_health(0, false, 0);
  widest.set_health(0, true, 0);
  EXPECT_EQ(widest.effective_weight(0, max_slow_start_ms - 1), max_backend_weight * 1000 - 1);
  EXPECT_EQ(widest.effective_weight(0, max_slow_start_ms), max_backend_weight * 1000);
}

// ---- stream affinity ----

// Where a key goes when `index` is not on the ring: the next backend
// clockwise, which is also where it spills when `index` is full.
std::optional<uint32_t> without(BackendPool& pool, uint32_t index, uint64_t h) {
  pool.set_drained(index, true);
  const auto i = pool.pick_by_key(h, 0);
  pool.set_drained(index, false);
  return i;
}

TEST(BackendPoolAffinity, SameKeySameBackend) {
  BackendPool pool = pool_of(equal_specs(8));
  for (int k = 0; k < 200; ++k) {
    const auto first = pool.pick_by_key(key(k), 0);
    ASSERT_TRUE(first.has_value());
    for (int r = 0; r < 3; ++r) EXPECT_EQ(pool.pick_by_key(key(k), 0), first);
  }
}

TEST(BackendPoolAffinity, KeysSpreadByWeight) {
  BackendPool equal = pool_of(equal_specs(8));
  std::vector<int> got(8);
  const int keys = 40000;
  for (int k = 0; k < keys; ++k) ++got[*equal.pick_by_key(key(k), 0)];
  for (int g : got) EXPECT_NEAR(g, keys / 8, keys / 8 * 0.3);

  BackendPool weighted = pool_of({spec("a:1", 3), spec("b:1", 1)});
  int to_a = 0;
  for (int k = 0; k < keys; ++k) to_a += weighted.pick_by_key(key(k), 0) == 0u;
  EXPECT_NEAR(to_a / double(keys), 0.75, 0.07);
}

TEST(BackendPoolAffinity, FullBackendSpillsToTheNextOnTheRing) {
  BackendPool pool = pool_of(equal_specs(3), settings(3, 2, 0, 125));
  const uint64_t h = key(42);
  const uint32_t home = *pool.pick_by_key(h, 0);
  const uint32_t next = *without(pool, home, h);
  ASSERT_NE(home, next);
  const uint32_t last = 3 - home - next;
  // Every tunnel for this one key: home takes up to its bound, then next,
  // then the last one.
  for (int k = 0; k < 30; ++k) {
    uint64_t total = 0;
    for (const Backend& b : pool.backends()) total += b.active;
    const uint32_t bound = static_cast<uint32_t>(std::ceil(1.25 * (total + 1) / 3));
    const uint32_t i = *pool.pick_by_key(h, 0);
    const uint32_t expected = pool.backends()[home].active < bound   ? home
                              : pool.backends()[next].active < bound ? next
                                                                     : last;
    EXPECT_EQ(i, expected) << k;
    pool.on_tunnel_opened(i);
  }
  EXPECT_GT(pool.backends()[next].active, 0u);
  EXPECT_GE(pool.backends()[home].active, pool.backends()[next].active);
}

TEST(BackendPoolAffinity, WhenOnlyFullBackendsAreEligibleTheKeysOwnIsUsed) {
  // a, the only backend below its bound, is excluded: every key falls back
  // to its first eligible backend on the ring rather than to none.
  const auto specs = std::vector{spec("a:1"), spec("b:1"), spec("c:1")};
  BackendPool idle = pool_of(specs, settings(3, 2, 0, 100));
  BackendPool pool = pool_of(specs, settings(3, 2, 0, 100));
  for (int k = 0; k < 10; ++k) {
    pool.on_tunnel_opened(1);
    pool.on_tunnel_opened(2);
  }
  ExcludeSet exclude;
  exclude.add(0);
  std::vector<int> got(3);
  for (int k = 0; k < 300; ++k) {
    const uint32_t home = *idle.pick_by_key(key(k), 0);
    const uint32_t expected = home != 0 ? home : *without(idle, 0, key(k));
    const auto i = pool.pick_by_key(key(k), 0, exclude);
    ASSERT_TRUE(i.has_value());
    EXPECT_EQ(*i, expected) << k;
    ++got[*i];
  }
  EXPECT_GT(got[1], 0);
  EXPECT_GT(got[2], 0);
}

TEST(BackendPoolAffinity, NoPickExceedsTheBound) {
  for (uint32_t factor : {100u, 125u, 200u}) {
    BackendPool pool = pool_of({spec("a:1", 3), spec("b:1"), spec("c:1"), spec("d:1", 2)},
                               settings(3, 2, 0, factor));
    const double weight_sum = 7;
    for (int k = 0; k < 3000; ++k) {
      uint64_t total = 0;
      for (const Backend& b : pool.backends()) total += b.active;
      // Skewed keys: a few hot streams.
      const uint32_t i = *pool.pick_by_key(key(k % 5), 0);
      const double bound = std::ceil(factor / 100.0 * (total + 1) * pool.backends()[i].weight / weight_sum);
      ASSERT_LT(pool.backends()[i].active, bound) << factor << " " << k;
      pool.on_tunnel_opened(i);
      if (k % 3 == 0) pool.on_tunnel_closed(i);
    }
  }
}

TEST(BackendPoolAffinity, OnlyTheLeavingBackendsKeysMove) {
  const int keys = 20000;
  BackendPool pool = pool_of(equal_specs(8));
  std::vector<uint32_t> before(keys);
  for (int k = 0; k < keys; ++k) before[k] = *pool.pick_by_key(key(k), 0);

  pool.eject(3, 0);
  int moved = 0;
  for (int k = 0; k < keys; ++k) {
    const uint32_t now = *pool.pick_by_key(key(k), 0);
    if (before[k] != 3) {
      EXPECT_EQ(now, before[k]) << k;
    } else {
      EXPECT_NE(now, 3u);
      ++moved;
    }
  }
  EXPECT_LT(moved, keys / 8 * 1.3);
  EXPECT_GT(moved, keys / 8 * 0.7);

  // Back up: every key returns to where it was.
  pool.set_health(3, true, 0);
  for (int k = 0; k < keys; ++k) EXPECT_EQ(pool.pick_by_key(key(k), 0), before[k]) << k;

  // Removed by the configuration, and drained: the same.
  for (int mode = 0; mode < 2; ++mode) {
    BackendPool other = pool_of(equal_specs(8));
    if (mode == 0) {
      auto specs = equal_specs(8);
      specs.erase(specs.begin() + 5);
      ASSERT_TRUE(other.apply(specs).has_value());
    } else {
      other.set_drained(5, true);
    }
    for (int k = 0; k < keys; ++k) {
      if (before[k] != 5) {
        EXPECT_EQ(other.pick_by_key(key(k), 0), before[k]) << mode << " " << k;
      }
    }
  }
}

TEST(BackendPoolAffinity, AddingABackendMovesOnlyKeysToIt) {
  const int keys = 20000;
  BackendPool pool = pool_of(equal_specs(7));
  std::vector<uint32_t> before(keys);
  for (int k = 0; k < keys; ++k) before[k] = *pool.pick_by_key(key(k), 0);
  ASSERT_TRUE(pool.apply(equal_specs(8)).has_value());
  int moved = 0;
  for (int k = 0; k < keys; ++k) {
    const uint32_t now = *pool.pick_by_key(key(k), 0);
    if (now != before[k]) {
      EXPECT_EQ(now, 7u);
      ++moved;
    }
  }
  EXPECT_LT(moved, keys / 8 * 1.3);
}

TEST(BackendPoolAffinity, LargeWeightsStayWithinTheRingCap) {
  // 64 backends of weight 256 would be 1.6 M points uncapped; the ring is
  // capped, and shares still follow weights.
  std::vector<BackendSpec> specs;
  for (int i = 0; i < 64; ++i) specs.push_back(spec("b" + std::to_string(i) + ":1", i == 0 ? 1 : 256));
  BackendPool pool = pool_of(specs);
  std::vector<int> got(64);
  const int keys = 64000;
  for (int k = 0; k < keys; ++k) ++got[*pool.pick_by_key(key(k), 0)];
  EXPECT_LT(got[0], keys / 63 / 10);  // weight 1 of 16129
  for (int i = 1; i < 64; ++i) EXPECT_NEAR(got[i], keys / 63.0, keys / 63.0 * 0.35) << i;
}

// ---- allocation ----

TEST(BackendPoolAllocation, OnlyApplyAllocates) {
  BackendPool pool = pool_of({spec("a:1", 3, 100), spec("b:1"), spec("c:1", 1, 0, true), spec("d:1", 256)});
  const std::vector<uint32_t> global = {5, 5, 5, 5};
  const size_t before = allocations;
  ExcludeSet exclude;
  exclude.add(1);
  int picked = 0;
  for (int k = 0; k < 1000; ++k) {
    const uint64_t now = static_cast<uint64_t>(k) * 37;
    auto i = pool.pick_least_connections(now, exclude, global);
    auto j = pool.pick_by_key(BackendPool::hash_key("stream"), now, {}, global);
    picked += i.has_value() + j.has_value();
    if (i) pool.on_tunnel_opened(*i);
    if (j) pool.on_tunnel_opened(*j);
    if (i && k % 2) pool.on_tunnel_closed(*i);
    if (j) pool.on_connect_failed(*j);
    pool.record_check(static_cast<uint32_t>(k % 4), k % 5 != 0, now);
    if (k % 50 == 0) pool.eject(3, now);
    if (k % 70 == 0) pool.set_health(3, true, now);
    pool.set_drained(2, k % 2 == 0);
    pool.any_up();
  }
  EXPECT_EQ(allocations, before);
  EXPECT_GT(picked, 1000);
  ASSERT_TRUE(pool.apply(equal_specs(9)).has_value());
  EXPECT_GT(allocations, before);  // the counter does count
}

// ---- determinism ----

TEST(BackendPoolDeterminism, SameSequenceSameIndicesAndPicks) {
  BackendPool a(settings()), b(settings());
  auto run = [](BackendPool& p) {
    EXPECT_TRUE(p.apply(equal_specs(5)).has_value());
    p.eject(2, 10);
    auto specs = equal_specs(7);
    specs.erase(specs.begin() + 1);
    specs[0].weight = 5;
    EXPECT_TRUE(p.apply(specs).has_value());
    p.set_health(2, true, 20);
    p.set_drained(4, true);
  };
  run(a);
  run(b);
  ASSERT_EQ(a.backends().size(), b.backends().size());
  for (size_t i = 0; i < a.backends().size(); ++i) {
    EXPECT_EQ(a.backends()[i].address, b.backends()[i].address);
    EXPECT_EQ(a.backends()[i].removed, b.backends()[i].removed);
    EXPECT_EQ(a.backends()[i].health, b.backends()[i].health);
  }
  for (int k = 0; k < 2000; ++k) {
    EXPECT_EQ(a.pick_by_key(key(k), 5000), b.pick_by_key(key(k), 5000));
    EXPECT_EQ(a.pick_least_connections(5000), b.pick_least_connections(5000));
  }
}

TEST(BackendPoolHashKey, StableAndWellMixed) {
  // Pinned: a change would move every stream to another edge on upgrade.
  // Values computed independently: FNV-1a 64, then MurmurHash3's fmix64.
  EXPECT_EQ(BackendPool::hash_key(""), 0xefd01f60ba992926ULL);
  EXPECT_EQ(BackendPool::hash_key("stream-1"), 0x72ffe9260a44924eULL);
  EXPECT_NE(BackendPool::hash_key("a"), BackendPool::hash_key("b"));
  EXPECT_NE(BackendPool::hash_key("ab"), BackendPool::hash_key("ba"));
  // One flipped input bit flips about half the output bits.
  double flipped = 0;
  int samples = 0;
  for (int k = 0; k < 200; ++k) {
    std::string s = "stream-" + std::to_string(k);
    const uint64_t h = BackendPool::hash_key(s);
    for (size_t byte = 0; byte < s.size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string t = s;
        t[byte] = static_cast<char>(t[byte] ^ (1 << bit));
        flipped += std::popcount(h ^ BackendPool::hash_key(t));
        ++samples;
      }
    }
  }
  EXPECT_NEAR(flipped / samples, 32, 1.0);
}

}  // namespace
}  // namespace mf::ingress
