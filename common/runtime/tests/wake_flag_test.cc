#include "common/runtime/wake_flag.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <semaphore>
#include <thread>
#include <vector>

#include "common/runtime/spsc_queue.h"

namespace mf {
namespace {

TEST(WakeFlag, OnlyTheFirstRequestSinceClearWakes) {
  WakeFlag flag;
  EXPECT_FALSE(flag.requested_approx());
  EXPECT_TRUE(flag.request_wake());
  EXPECT_TRUE(flag.requested_approx());
  EXPECT_FALSE(flag.request_wake());
  EXPECT_FALSE(flag.request_wake());
  flag.clear();
  EXPECT_FALSE(flag.requested_approx());
  EXPECT_TRUE(flag.request_wake());
  EXPECT_FALSE(flag.request_wake());
  flag.clear();
  flag.clear();
  EXPECT_TRUE(flag.request_wake());
}

TEST(WakeFlag, ConcurrentRequestersGetOneWakePerClear) {
  WakeFlag flag;
  std::atomic<int> wakes{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10'000; ++i) wakes += flag.request_wake();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wakes.load(), 1);
}

// The real protocol with a consumer that sleeps whenever it finds its queue
// empty. A lost wake-up leaves the consumer asleep with items queued; the
// bounded wait turns that into a test failure instead of a hang.
TEST(WakeFlag, NoLostWakeupsWithASleepingConsumer) {
  constexpr uint64_t count = 300'000;
  SpscQueue<uint64_t> q(256);
  WakeFlag flag;
  std::counting_semaphore<> wake_messages(0);
  std::atomic<uint64_t> wakes_sent{0};

  std::thread producer([&] {
    for (uint64_t i = 0; i < count;) {
      if (!q.try_push(i)) {
        std::this_thread::yield();
        continue;
      }
      ++i;
      if (flag.request_wake()) {
        wakes_sent.fetch_add(1, std::memory_order_relaxed);
        wake_messages.release();
      }
      if (i % 1'000 == 0) std::this_thread::yield();  // let the consumer fall asleep
    }
  });

  uint64_t expected = 0;
  uint64_t clears = 0;
  uint64_t sleeps = 0;
  bool lost_wakeup = false;
  while (expected < count) {
    flag.clear();
    ++clears;
    size_t n = 0;
    while (size_t got = q.drain([&](uint64_t& v) { EXPECT_EQ(v, expected++); }, 64)) n += got;
    if (n != 0) continue;
    ++sleeps;
    // On a timeout, record it and keep draining so the producer can finish.
    if (!wake_messages.try_acquire_for(std::chrono::seconds(5))) lost_wakeup = true;
  }
  producer.join();
  EXPECT_FALSE(lost_wakeup) << "consumer slept with items queued at seq " << expected;
  EXPECT_EQ(expected, count);
  EXPECT_GT(sleeps, 0u) << "the consumer never slept: the test exercised nothing";
  // One wake per clear at most (the initial state counts as a clear).
  EXPECT_LE(wakes_sent.load(), clears + 1);
}

}  // namespace
}  // namespace mf
