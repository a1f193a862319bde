#include "common/runtime/spsc_queue.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace mf {
namespace {

// A 32-byte message, the common case.
struct Message {
  uint64_t seq;
  uint64_t a, b, c;
};
static_assert(sizeof(Message) == 32);

std::vector<uint64_t> drain_all(SpscQueue<uint64_t>& q, size_t max_items) {
  std::vector<uint64_t> out;
  q.drain([&](uint64_t& v) { out.push_back(v); }, max_items);
  return out;
}

TEST(SpscQueue, FullAndEmpty) {
  SpscQueue<uint64_t> q(4);
  EXPECT_EQ(q.capacity(), 4u);
  EXPECT_TRUE(q.empty_approx());
  EXPECT_EQ(q.drain([](uint64_t&) { FAIL(); }, 10), 0u);
  for (uint64_t i = 0; i < 4; ++i) EXPECT_TRUE(q.try_push(i));
  EXPECT_FALSE(q.try_push(99));
  EXPECT_EQ(q.size_approx(), 4u);
  EXPECT_FALSE(q.empty_approx());
  EXPECT_EQ(drain_all(q, 1), std::vector<uint64_t>{0});
  EXPECT_TRUE(q.try_push(4));
  EXPECT_FALSE(q.try_push(99));
  EXPECT_EQ(drain_all(q, 100), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_TRUE(q.empty_approx());
  EXPECT_EQ(q.size_approx(), 0u);
}

TEST(SpscQueue, CapacityOne) {
  SpscQueue<uint64_t> q(1);
  EXPECT_TRUE(q.try_push(1));
  EXPECT_FALSE(q.try_push(2));
  EXPECT_EQ(drain_all(q, 5), std::vector<uint64_t>{1});
  EXPECT_TRUE(q.try_push(3));
  EXPECT_EQ(drain_all(q, 5), std::vector<uint64_t>{3});
}

TEST(SpscQueue, WrapsAroundManyTimesInOrder) {
  SpscQueue<uint64_t> q(8);
  uint64_t pushed = 0;
  uint64_t expected = 0;
  for (int round = 0; round < 1'000; ++round) {
    const int n = 1 + round % 8;
    for (int i = 0; i < n; ++i) {
      if (q.try_push(pushed)) ++pushed;
    }
    q.drain([&](uint64_t& v) { EXPECT_EQ(v, expected++); }, 1 + round % 5);
  }
  q.drain([&](uint64_t& v) { EXPECT_EQ(v, expected++); }, 100);
  EXPECT_EQ(expected, pushed);
  EXPECT_GT(pushed, 1'000u);
}

TEST(SpscQueue, DrainHonoursBatchLimit) {
  SpscQueue<Message> q(64);
  for (uint64_t i = 0; i < 50; ++i) ASSERT_TRUE(q.try_push(Message{i, 0, 0, 0}));
  std::vector<uint64_t> seen;
  auto collect = [&](Message& m) { seen.push_back(m.seq); };
  EXPECT_EQ(q.drain(collect, 0), 0u);
  EXPECT_EQ(q.drain(collect, 16), 16u);
  EXPECT_EQ(q.size_approx(), 34u);
  EXPECT_EQ(q.drain(collect, 16), 16u);
  EXPECT_EQ(q.drain(collect, 16), 16u);
  EXPECT_EQ(q.drain(collect, 16), 2u);
  EXPECT_EQ(q.drain(collect, 16), 0u);
  ASSERT_EQ(seen.size(), 50u);
  for (uint64_t i = 0; i < 50; ++i) EXPECT_EQ(seen[i], i);
}

TEST(SpscQueue, PushBatchStopsWhenFull) {
  SpscQueue<uint64_t> q(8);
  EXPECT_TRUE(q.try_push(100));
  size_t made = 0;
  EXPECT_EQ(q.push_batch(10, [&](size_t i) { ++made; return uint64_t{i}; }), 7u);
  EXPECT_EQ(made, 7u);
  EXPECT_EQ(q.push_batch(3, [](size_t) -> uint64_t { ADD_FAILURE(); return 0; }), 0u);
  EXPECT_EQ(drain_all(q, 3), (std::vector<uint64_t>{100, 0, 1}));
  EXPECT_EQ(q.push_batch(2, [](size_t i) { return uint64_t{10 + i}; }), 2u);
  EXPECT_EQ(drain_all(q, 100), (std::vector<uint64_t>{2, 3, 4, 5, 6, 10, 11}));
}

// Counts live instances to check construction and destruction are paired.
struct Tracked {
  static inline int live = 0;
  std::unique_ptr<std::string> text;
  explicit Tracked(std::string s) : text(std::make_unique<std::string>(std::move(s))) { ++live; }
  Tracked(const Tracked& o) : text(std::make_unique<std::string>(*o.text)) { ++live; }
  Tracked(Tracked&& o) noexcept : text(std::move(o.text)) { ++live; }
  Tracked& operator=(const Tracked&) = delete;
  ~Tracked() { --live; }
};

TEST(SpscQueue, NonTrivialItemsAreConstructedAndDestroyed) {
  Tracked::live = 0;
  {
    SpscQueue<Tracked> q(4);
    Tracked copy_source("copied");
    EXPECT_TRUE(q.try_push(copy_source));
    EXPECT_TRUE(q.try_push(Tracked("moved")));
    EXPECT_TRUE(q.try_emplace("emplaced"));
    EXPECT_EQ(Tracked::live, 4);  // source + 3 queued
    EXPECT_TRUE(q.try_emplace("left in queue"));
    Tracked rejected("rejected");
    EXPECT_FALSE(q.try_push(std::move(rejected)));
    ASSERT_NE(rejected.text, nullptr) << "a refused push must not move from its argument";

    std::vector<std::string> got;
    EXPECT_EQ(q.drain([&](Tracked& t) { got.push_back(std::move(*t.text)); }, 3), 3u);
    EXPECT_EQ(got, (std::vector<std::string>{"copied", "moved", "emplaced"}));
    EXPECT_EQ(Tracked::live, 3);  // source, rejected, the one left queued
  }
  EXPECT_EQ(Tracked::live, 0) << "the destructor must destroy queued items";
}

TEST(SpscQueue, MoveOnlyItems) {
  SpscQueue<std::unique_ptr<int>> q(2);
  EXPECT_TRUE(q.try_push(std::make_unique<int>(7)));
  std::unique_ptr<int> out;
  q.drain([&](std::unique_ptr<int>& p) { out = std::move(p); }, 1);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(*out, 7);
}

struct alignas(128) OverAligned {
  uint64_t v;
};

TEST(SpscQueue, OverAlignedItems) {
  SpscQueue<OverAligned> q(4);
  for (uint64_t i = 0; i < 4; ++i) EXPECT_TRUE(q.try_push(OverAligned{i}));
  q.drain([](OverAligned& o) { EXPECT_EQ(reinterpret_cast<uintptr_t>(&o) % 128, 0u); }, 4);
}

TEST(SpscQueue, CountersLiveOnSeparateCacheLines) {
  EXPECT_GE(sizeof(SpscQueue<Message>), 3 * 64u);
  EXPECT_EQ(alignof(SpscQueue<Message>), 64u);
}

TEST(SpscQueue, NonPowerOfTwoCapacityAborts) {
  EXPECT_DEATH(SpscQueue<int>(3), "");
  EXPECT_DEATH(SpscQueue<int>(0), "");
}

// Sequence numbers across two threads: all arrive, in order, once, intact.
// Also built and run with -fsanitize=thread.
// Waits briefly on the other thread: spin first, then give the core away (the
// test may run with more threads than cores, e.g. under a sanitizer).
void backoff(unsigned& misses) {
  if (++misses % 64 == 0) std::this_thread::yield();
}

void run_two_threads(uint64_t count, size_t capacity, size_t batch) {
  SpscQueue<Message> q(capacity);
  std::thread producer([&] {
    unsigned misses = 0;
    for (uint64_t i = 0; i < count;) {
      if (q.try_push(Message{i, i * 3, ~i, i ^ 0x5555})) {
        ++i;
      } else {
        backoff(misses);
      }
    }
  });
  uint64_t expected = 0;
  bool ok = true;
  unsigned misses = 0;
  while (expected < count) {
    const size_t n = q.drain(
        [&](Message& m) {
          ok &= m.seq == expected && m.a == expected * 3 && m.b == ~expected &&
                m.c == (expected ^ 0x5555);
          ++expected;
        },
        batch);
    if (n == 0) backoff(misses);
  }
  producer.join();
  EXPECT_TRUE(ok) << "out of order or corrupted near seq " << expected;
  EXPECT_EQ(expected, count);
  EXPECT_TRUE(q.empty_approx());
}

TEST(SpscQueue, TwoThreadsTenMillionInOrderBatch64) { run_two_threads(10'000'000, 1024, 64); }
// Nearly always full or empty: stresses the cached-counter refresh paths.
TEST(SpscQueue, TwoThreadsOneMillionInOrderBatch1Capacity16) { run_two_threads(1'000'000, 16, 1); }

}  // namespace
}  // namespace mf
