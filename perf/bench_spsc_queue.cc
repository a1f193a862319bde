// SpscQueue between two threads pinned to different cores: throughput with
// drain batches of 1 and 64, and the round trip of one message each way.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "common/runtime/spsc_queue.h"

namespace mf {
namespace {

template <size_t Bytes>
struct Message {
  uint64_t seq;
  uint8_t payload[Bytes - sizeof(uint64_t)];
};

constexpr int producer_cpu = 0;
constexpr int consumer_cpu = 1;

void pin_this_thread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// The producer (benchmark thread) pushes 64Ki messages per iteration and waits
// until the consumer has taken them all, so the time covers delivery.
// Args: drain batch size.
template <class M>
void BM_Throughput(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  SpscQueue<M> queue(4096);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> consumed{0};
  std::atomic<bool> in_order{true};
  std::thread consumer([&] {
    pin_this_thread(consumer_cpu);
    uint64_t expected = 0;
    bool ok = true;
    while (!stop.load(std::memory_order_relaxed)) {
      const size_t n = queue.drain([&](M& m) { ok &= m.seq == expected++; }, batch);
      if (n != 0) {
        consumed.store(expected, std::memory_order_release);
      } else {
        cpu_relax();
      }
    }
    in_order = ok;
  });
  pin_this_thread(producer_cpu);

  constexpr uint64_t per_iteration = 1 << 16;
  uint64_t seq = 0;
  uint64_t full = 0;
  for (auto _ : state) {
    const uint64_t end = seq + per_iteration;
    while (seq < end) {
      M m;
      m.seq = seq;
      if (queue.try_push(m)) {
        ++seq;
      } else {
        ++full;
        cpu_relax();
      }
    }
    while (consumed.load(std::memory_order_acquire) < seq) cpu_relax();
  }
  stop = true;
  consumer.join();
  if (!in_order) state.SkipWithError("messages arrived out of order");
  state.SetItemsProcessed(static_cast<int64_t>(seq));
  state.SetBytesProcessed(static_cast<int64_t>(seq * sizeof(M)));
  state.counters["full_per_msg"] = static_cast<double>(full) / static_cast<double>(seq);
}
BENCHMARK_TEMPLATE(BM_Throughput, Message<32>)->Arg(1)->Arg(64)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Throughput, Message<64>)->Arg(1)->Arg(64)->UseRealTime();

// One message there and one back per iteration: the cross-core round trip.
void BM_RoundTrip(benchmark::State& state) {
  SpscQueue<Message<32>> there(1024);
  SpscQueue<Message<32>> back(1024);
  std::atomic<bool> stop{false};
  std::thread echo([&] {
    pin_this_thread(consumer_cpu);
    while (!stop.load(std::memory_order_relaxed)) {
      const size_t n = there.drain(
          [&](Message<32>& m) {
            while (!back.try_push(m)) cpu_relax();
          },
          64);
      if (n == 0) cpu_relax();
    }
  });
  pin_this_thread(producer_cpu);
  uint64_t seq = 0;
  for (auto _ : state) {
    Message<32> m;
    m.seq = seq++;
    while (!there.try_push(m)) cpu_relax();
    while (back.drain([](Message<32>& r) { benchmark::DoNotOptimize(r.seq); }, 1) == 0) {
      cpu_relax();
    }
  }
  stop = true;
  echo.join();
}
BENCHMARK(BM_RoundTrip)->UseRealTime();

// Single thread, no contention: the instruction cost of a push plus a drain.
void BM_PushDrainSameThread(benchmark::State& state) {
  SpscQueue<Message<32>> queue(4096);
  const size_t batch = static_cast<size_t>(state.range(0));
  uint64_t seq = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < batch; ++i) {
      Message<32> m;
      m.seq = seq++;
      queue.try_push(m);
    }
    queue.drain([](Message<32>& m) { benchmark::DoNotOptimize(m.seq); }, batch);
  }
  state.SetItemsProcessed(static_cast<int64_t>(seq));
}
BENCHMARK(BM_PushDrainSameThread)->Arg(1)->Arg(64);

}  // namespace
}  // namespace mf
