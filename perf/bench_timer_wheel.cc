// TimerWheel costs at shard scale: 100,000 armed connection timers.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common/runtime/timer_wheel.h"

namespace mf {
namespace {

constexpr size_t connections = 100'000;
constexpr uint32_t tick_ms = 10;
constexpr uint64_t idle_timeout_ms = 60'000;  // longer than a revolution (41 s)

uint64_t next_random(uint64_t& state) {  // splitmix64
  uint64_t z = (state += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

// A wheel with `connections` timers spread over the idle timeout.
struct Shard {
  TimerWheel wheel{tick_ms, 4096};
  std::unique_ptr<TimerNode[]> nodes = std::make_unique<TimerNode[]>(connections);
  uint64_t now = 1'000'000;
  uint64_t rng = 1;

  Shard() {
    for (size_t i = 0; i < connections; ++i) {
      nodes[i].tag = i;
      wheel.arm(nodes[i], now + 1 + next_random(rng) % idle_timeout_ms);
    }
  }
  ~Shard() {
    for (size_t i = 0; i < connections; ++i) wheel.cancel(nodes[i]);
  }
};

// Arm an unarmed node and cancel it, next to 100k armed timers.
void BM_ArmThenCancel(benchmark::State& state) {
  Shard shard;
  auto extra = std::make_unique<TimerNode[]>(1024);
  size_t i = 0;
  for (auto _ : state) {
    TimerNode& node = extra[i++ & 1023];
    shard.wheel.arm(node, shard.now + 1 + (i * 7919) % idle_timeout_ms);
    shard.wheel.cancel(node);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ArmThenCancel);

// The idle pattern: a message arrives and pushes its connection's deadline out.
// Lazy path: stores the deadline, no relink.
void BM_RearmLater(benchmark::State& state) {
  Shard shard;
  uint64_t r = 7;
  for (auto _ : state) {
    TimerNode& node = shard.nodes[next_random(r) % connections];
    shard.wheel.arm(node, shard.now + idle_timeout_ms + (r & 1023));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RearmLater);

// Pulling a deadline in: the node must move to another slot. Each pass over
// the connections moves every deadline one tick earlier.
void BM_RearmEarlier(benchmark::State& state) {
  Shard shard;
  const uint64_t base = shard.now + 2 * idle_timeout_ms;
  for (size_t i = 0; i < connections; ++i) {
    shard.wheel.cancel(shard.nodes[i]);  // file each node at its own deadline's slot
    shard.wheel.arm(shard.nodes[i], base + i % 4096 * tick_ms);
  }
  size_t i = 0;
  uint64_t shift = tick_ms;
  for (auto _ : state) {
    shard.wheel.arm(shard.nodes[i], base + i % 4096 * tick_ms - shift);
    if (++i == connections) {
      i = 0;
      shift += tick_ms;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RearmEarlier);

// Cancels armed nodes in turn; when all are cancelled they are re-armed with
// the clock stopped.
void BM_CancelArmed(benchmark::State& state) {
  Shard shard;
  size_t i = 0;
  for (auto _ : state) {
    shard.wheel.cancel(shard.nodes[i]);
    if (++i == connections) {
      state.PauseTiming();
      for (size_t j = 0; j < connections; ++j) {
        shard.wheel.arm(shard.nodes[j], shard.now + 1 + j * 7919 % idle_timeout_ms);
      }
      i = 0;
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CancelArmed);

// One advance() per tick with 100k timers armed; expired connections re-arm
// at the idle timeout (steady state). Time is per tick; items are fired timers.
void BM_AdvanceOneTick(benchmark::State& state) {
  Shard shard;
  size_t fired = 0;
  for (auto _ : state) {
    shard.now += tick_ms;
    fired += shard.wheel.advance(shard.now, [&](TimerNode& node) {
      shard.wheel.arm(node, shard.now + idle_timeout_ms);
    });
  }
  state.SetItemsProcessed(fired);
  state.counters["fired_per_tick"] = static_cast<double>(fired) / state.iterations();
}
BENCHMARK(BM_AdvanceOneTick);

// Same, plus the idle pattern: `range(0)` messages per tick, each pushing a
// random connection's deadline out (lazily), so slot visits also refile
// pushed-out nodes. Time is per tick including the re-arms; items are re-arms.
void BM_AdvanceOneTickWithTraffic(benchmark::State& state) {
  Shard shard;
  const int64_t messages_per_tick = state.range(0);
  uint64_t r = 3;
  size_t fired = 0;
  for (auto _ : state) {
    for (int64_t m = 0; m < messages_per_tick; ++m) {
      shard.wheel.arm(shard.nodes[next_random(r) % connections], shard.now + idle_timeout_ms);
    }
    shard.now += tick_ms;
    fired += shard.wheel.advance(shard.now, [&](TimerNode& node) {
      shard.wheel.arm(node, shard.now + idle_timeout_ms);
    });
  }
  state.SetItemsProcessed(state.iterations() * messages_per_tick);  // re-arms
  state.counters["fired_per_tick"] = static_cast<double>(fired) / state.iterations();
}
BENCHMARK(BM_AdvanceOneTickWithTraffic)->Arg(100)->Arg(1'000);

// A 10-minute stall with 100k timers armed over the next 20 minutes: one
// advance() visits each slot once and fires about half of them.
void BM_AdvanceAfterStall(benchmark::State& state) {
  TimerWheel wheel(tick_ms, 4096);
  auto nodes = std::make_unique<TimerNode[]>(connections);
  uint64_t now = 1'000'000;
  uint64_t r = 5;
  size_t fired = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (size_t i = 0; i < connections; ++i) {
      wheel.arm(nodes[i], now + 1 + next_random(r) % 1'200'000);
    }
    state.ResumeTiming();
    now += 600'000;
    fired += wheel.advance(now, [](TimerNode&) {});
  }
  for (size_t i = 0; i < connections; ++i) wheel.cancel(nodes[i]);
  state.SetItemsProcessed(fired);
}
BENCHMARK(BM_AdvanceAfterStall)->Unit(benchmark::kMicrosecond);

void BM_NextDeadlineHint(benchmark::State& state) {
  TimerWheel wheel(tick_ms, 4096);
  TimerNode node;
  wheel.arm(node, 40'000);  // ~4,000 empty slots ahead: worst case
  for (auto _ : state) benchmark::DoNotOptimize(wheel.next_deadline_hint_ms());
  wheel.cancel(node);
}
BENCHMARK(BM_NextDeadlineHint);

}  // namespace
}  // namespace mf
