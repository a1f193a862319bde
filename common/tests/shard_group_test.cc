// ShardGroup with real threads and real rings: every shard sends bursts to
// every other shard through mailboxes small enough to fill, each pair's
// messages must arrive once, complete and in order; then a stop requested
// while messages are still in flight must stop every shard and hand every
// undelivered payload to dispose_undelivered exactly once. Also run under
// ThreadSanitizer (tests/tsan-briefly.sh) for the cross-shard queue and the
// shutdown path.
#include "common/shard_group.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace mf {
namespace {

constexpr uint32_t kShards = 4;
constexpr uint16_t kPayloadKind = shard_message::first_service_kind;
constexpr uint32_t kMailboxCapacity = 64;

// What `pointer` owns for kPayloadKind; live() counts undestroyed ones.
struct Payload {
  static inline std::atomic<int64_t> live{0};
  uint32_t from, to;
  uint64_t sequence;
  Payload(uint32_t f, uint32_t t, uint64_t s) : from(f), to(t), sequence(s) { live.fetch_add(1); }
  ~Payload() { live.fetch_sub(1); }
};

// Shared by the test thread and the shards: only atomics, and per-shard
// slots each written by one shard thread.
struct Totals {
  uint64_t per_pair = 0;          // messages each ordered pair must deliver before the stop
  std::atomic<uint64_t> posted{0};      // accepted by post()
  std::atomic<uint64_t> delivered{0};   // seen by on_message
  std::atomic<uint64_t> disposed{0};    // seen by dispose_undelivered
  std::atomic<uint64_t> refused{0};     // post() said full
  std::atomic<uint64_t> order_errors{0};
  std::atomic<uint32_t> pairs_complete{0};
  std::atomic<uint32_t> stop_calls{0};
  std::atomic<uint32_t> services_destroyed{0};
};

class BurstService : public ShardService {
 public:
  static constexpr uint64_t kLingerMs = 150;

  BurstService(Shard& shard, Totals& totals) : shard_(shard), reactor_(shard.reactor()), totals_(totals) {
    // Burst every millisecond: each pair's mailbox (64 slots) overflows
    // whenever the target has not drained since the last burst.
    shard.reactor().add_periodic(1, [this] { burst(); });
  }
  ~BurstService() override { totals_.services_destroyed.fetch_add(1); }

  void on_message(const ShardMessage& m) override {
    if (m.kind != kPayloadKind) return;
    std::unique_ptr<Payload> p(static_cast<Payload*>(m.pointer));
    const uint32_t from = m.from_shard;
    if (from >= kShards || p->from != from || p->to != shard_.id() || p->sequence != m.arg64_a ||
        m.arg64_a != next_expected_[from]) {
      totals_.order_errors.fetch_add(1);
    }
    next_expected_[from] = m.arg64_a + 1;
    totals_.delivered.fetch_add(1);
    if (next_expected_[from] == totals_.per_pair) totals_.pairs_complete.fetch_add(1);
  }
  void on_stop_requested() override {
    totals_.stop_calls.fetch_add(1);
    stopping_ = true;
    stop_requested_ms_ = reactor_.now_ms();
  }
  // Shards 1..3 stop at the first turn after the request; shard 0 keeps
  // bursting for kLingerMs more (past the 100 ms within which every shard
  // sees the request), so its mailboxes to the stopped shards fill with
  // messages nobody will drain.
  bool stopped() const override {
    return stopping_ && (shard_.id() != 0 || reactor_.now_ms() >= stop_requested_ms_ + kLingerMs);
  }

 private:
  void burst() {
    for (uint32_t to = 0; to < kShards; ++to) {
      if (to == shard_.id()) continue;
      // Before the stop: exactly per_pair messages per pair. After it: keep
      // posting (while the test allows) so messages are in flight.
      const uint64_t limit = stopping_ || totals_.pairs_complete.load() == kShards * (kShards - 1)
                                 ? next_to_send_[to] + 200
                                 : totals_.per_pair;
      for (int i = 0; i < 200 && next_to_send_[to] < limit; ++i) {
        auto payload = std::make_unique<Payload>(shard_.id(), to, next_to_send_[to]);
        ShardMessage m;
        m.kind = kPayloadKind;
        m.arg64_a = next_to_send_[to];
        m.pointer = payload.get();
        if (!shard_.post(to, m)) {
          totals_.refused.fetch_add(1);
          break;  // full: retry at the next burst, order kept
        }
        payload.release();
        totals_.posted.fetch_add(1);
        ++next_to_send_[to];
      }
    }
  }

  Shard& shard_;
  Reactor& reactor_;
  Totals& totals_;
  bool stopping_ = false;
  uint64_t stop_requested_ms_ = 0;
  uint64_t next_to_send_[kShards] = {};
  uint64_t next_expected_[kShards] = {};
};

struct RunResult {
  bool ok = false;
  std::string error;
  bool completed_before_stop = false;
};

// stop_after_posted 0: the stop comes once every pair delivered its
// per_pair messages; otherwise once that many were posted in all.
RunResult run_group(Totals& totals, uint64_t stop_after_posted) {
  ShardGroupOptions options;
  options.shard_count = kShards;
  options.pin_threads = false;
  options.mailbox_capacity = kMailboxCapacity;
  options.reactor.max_sockets = 16;
  options.reactor.recv_buffer_count = 16;
  options.dispose_undelivered = [&](const ShardMessage& m) {
    if (m.kind != kPayloadKind) return;
    delete static_cast<Payload*>(m.pointer);
    totals.disposed.fetch_add(1);
  };
  ShardGroup group;
  RunResult result;
  std::atomic<bool> ready{false};
  // The stopper: once every pair delivered its burst (or at once when
  // stop_after_posted), with messages still being posted.
  std::thread stopper([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!ready.load() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (stop_after_posted != 0) {
      while (totals.posted.load() < stop_after_posted && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    } else {
      while (totals.pairs_complete.load() < kShards * (kShards - 1) &&
             std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      result.completed_before_stop = totals.pairs_complete.load() == kShards * (kShards - 1);
      // Let the post-completion bursts fill the mailboxes again.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    group.request_stop();
  });
  auto run = group.run(
      options, [&](Shard& shard) -> std::expected<std::unique_ptr<ShardService>, std::string> {
        return std::make_unique<BurstService>(shard, totals);
      },
      [&] { ready.store(true); });
  stopper.join();
  result.ok = run.has_value();
  if (!run) result.error = run.error();
  return result;
}

TEST(ShardGroup, BurstsBetweenEveryPairArriveInOrderAndStopDisposesTheRest) {
  Payload::live.store(0);
  Totals totals;
  totals.per_pair = 20'000;
  const auto started = std::chrono::steady_clock::now();
  RunResult r = run_group(totals, 0);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.completed_before_stop) << "pairs complete: " << totals.pairs_complete.load();
  EXPECT_EQ(totals.order_errors.load(), 0u);
  EXPECT_EQ(totals.pairs_complete.load(), kShards * (kShards - 1));
  // Every shard stopped: run() returned, each got the stop once and its
  // service was destroyed.
  EXPECT_EQ(totals.stop_calls.load(), kShards);
  EXPECT_EQ(totals.services_destroyed.load(), kShards);
  // Mailboxes were full at times, and messages were in flight at the stop.
  EXPECT_GT(totals.refused.load(), 0u);
  EXPECT_GT(totals.disposed.load(), 0u);
  // Nothing lost, nothing twice: each accepted message was delivered or
  // disposed, and every payload was freed.
  EXPECT_EQ(totals.posted.load(), totals.delivered.load() + totals.disposed.load());
  EXPECT_GE(totals.delivered.load(), uint64_t{kShards} * (kShards - 1) * totals.per_pair);
  EXPECT_EQ(Payload::live.load(), 0);
  std::printf("shard_group: %u shards, %llu posted, %llu delivered, %llu disposed at stop, %llu refused (full), %lld ms\n",
              kShards, static_cast<unsigned long long>(totals.posted.load()),
              static_cast<unsigned long long>(totals.delivered.load()),
              static_cast<unsigned long long>(totals.disposed.load()),
              static_cast<unsigned long long>(totals.refused.load()), static_cast<long long>(took.count()));
}

// Stop requested in the middle of the bursts: the shards stop at different
// turns, so some mailboxes hold messages nobody will drain.
TEST(ShardGroup, StopInTheMiddleOfBurstsDisposesEveryUndeliveredPayload) {
  for (int round = 0; round < 5; ++round) {
    Payload::live.store(0);
    Totals totals;
    totals.per_pair = 1'000'000;  // never reached: the stop comes first
    RunResult r = run_group(totals, 5'000);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(totals.order_errors.load(), 0u);
    EXPECT_EQ(totals.stop_calls.load(), kShards);
    EXPECT_EQ(totals.services_destroyed.load(), kShards);
    EXPECT_GT(totals.disposed.load(), 0u) << "round " << round;
    EXPECT_EQ(totals.posted.load(), totals.delivered.load() + totals.disposed.load())
        << "round " << round;
    EXPECT_EQ(Payload::live.load(), 0) << "round " << round;
  }
}

}  // namespace
}  // namespace mf
