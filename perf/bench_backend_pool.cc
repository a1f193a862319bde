// Cost of choosing a backend for each new mf-ingress tunnel, per balancing
// mode and pool size (2, 8, 64 backends). Each iteration is one pick plus
// the bookkeeping a tunnel does (open, and the close of the oldest of 1,024
// tunnels kept open), so the counts the picks see keep moving as in a
// running proxy. Weights vary (1..4). The second argument puts one backend
// in slow start for the whole run (1) or not (0): while any backend ramps,
// stream affinity sums the ramped weights on every pick.

#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ingress/backend_pool.h"

namespace {

using mf::ingress::BackendPool;
using mf::ingress::BackendSpec;

constexpr size_t open_tunnels = 1024;

// The pool for state.range(0) backends, and the time its picks happen at.
std::pair<BackendPool, uint64_t> make_pool(const benchmark::State& state) {
  const int64_t backends = state.range(0);
  const bool ramping = state.range(1) != 0;
  BackendPool pool;
  std::vector<BackendSpec> specs;
  for (int64_t i = 0; i < backends; ++i) {
    specs.push_back({"10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ":8446",
                     static_cast<uint32_t>(1 + i % 4), 0, false});
  }
  if (!pool.apply(specs)) std::abort();
  pool.set_health(0, false, 0);
  pool.set_health(0, true, 1000);  // ramping until 11000 (default slow start)
  return {std::move(pool), ramping ? 5000 : 20000};
}

// Keeps `open_tunnels` tunnels open, closing the oldest for each new one.
class Tunnels {
 public:
  void open(BackendPool& pool, uint32_t index) {
    if (count_ == open_tunnels) pool.on_tunnel_closed(ring_[next_]);
    else ++count_;
    pool.on_tunnel_opened(index);
    ring_[next_] = index;
    next_ = (next_ + 1) % open_tunnels;
  }

 private:
  std::array<uint32_t, open_tunnels> ring_{};
  size_t next_ = 0, count_ = 0;
};

void BM_PickLeastConnections(benchmark::State& state) {
  auto [pool, now_ms] = make_pool(state);
  Tunnels tunnels;
  for (auto _ : state) {
    auto i = pool.pick_least_connections(now_ms);
    benchmark::DoNotOptimize(i);
    tunnels.open(pool, *i);
  }
}
BENCHMARK(BM_PickLeastConnections)->ArgsProduct({{2, 8, 64}, {0, 1}});

void BM_PickByKey(benchmark::State& state) {
  auto [pool, now_ms] = make_pool(state);
  // 4,096 streams, hashed once as a tunnel's query parameter would be.
  std::vector<uint64_t> keys;
  for (int k = 0; k < 4096; ++k) keys.push_back(BackendPool::hash_key("stream-" + std::to_string(k)));
  Tunnels tunnels;
  size_t k = 0;
  for (auto _ : state) {
    auto i = pool.pick_by_key(keys[k++ & 4095], now_ms);
    benchmark::DoNotOptimize(i);
    tunnels.open(pool, *i);
  }
}
BENCHMARK(BM_PickByKey)->ArgsProduct({{2, 8, 64}, {0, 1}});

// A few hot streams: their home backends sit at the bound, so picks walk on.
void BM_PickByKeyHotStreams(benchmark::State& state) {
  auto [pool, now_ms] = make_pool(state);
  const std::array<uint64_t, 3> keys = {BackendPool::hash_key("match-final"),
                                        BackendPool::hash_key("lobby"), BackendPool::hash_key("news")};
  Tunnels tunnels;
  size_t k = 0;
  for (auto _ : state) {
    auto i = pool.pick_by_key(keys[k++ % keys.size()], now_ms);
    benchmark::DoNotOptimize(i);
    tunnels.open(pool, *i);
  }
}
BENCHMARK(BM_PickByKeyHotStreams)->ArgsProduct({{2, 8, 64}, {0}});

void BM_HashKey(benchmark::State& state) {
  const std::string key = "3f2a9c1e-5b7d-4e8f-a0b1-c2d3e4f5a6b7";
  for (auto _ : state) benchmark::DoNotOptimize(BackendPool::hash_key(key));
}
BENCHMARK(BM_HashKey);

}  // namespace
