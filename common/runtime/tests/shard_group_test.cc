// ShardGroup with real threads and real rings: every shard sends bursts to
// every other shard through mailboxes small enough to fill, each pair's
// messages must arrive once, complete and in order; then a stop requested
// while messages are still in flight must stop every shard and hand every
// undelivered payload to dispose_undelivered exactly once. Nothing depends
// on timing: a full mailbox is made by holding its consumer until a
// producer was refused, and messages in flight at the stop by posting to
// shards whose loop has ended. Obligations (post_obligation) wait for room
// and arrive in order, never dropped. Also run under
// ThreadSanitizer (tests/tsan-briefly.sh) for the cross-shard queue and the
// shutdown path.
#include "common/runtime/shard_group.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
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
  std::atomic<bool> loop_ended[kShards] = {};  // shard i said stopped(): it drains no more
  std::atomic<uint64_t> posted_to_ended{0};    // accepted by a shard whose loop had ended
  std::atomic<uint64_t> refused_by_ended{0};   // refused by one: its mailbox is full of undelivered ones
  std::atomic<bool> hold_timed_out{false};
};

// Blocks the calling shard until `done()` or 30 s (then records a timeout):
// holding a consumer is how a test fills its mailboxes without timing.
template <class Done>
void hold_until(Done done, std::atomic<bool>& timed_out) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      timed_out.store(true);
      return;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

class BurstService : public ShardService {
 public:
  BurstService(Shard& shard, Totals& totals) : shard_(shard), reactor_(shard.reactor()), totals_(totals) {
    // Burst every millisecond: each pair's mailbox (64 slots) overflows
    // whenever the target has not drained since the last burst.
    shard.reactor().add_periodic(1, [this] { burst(); });
  }
  ~BurstService() override { totals_.services_destroyed.fetch_add(1); }

  void on_message(const ShardMessage& m) override {
    if (m.kind != kPayloadKind) return;
    // Shard 1 holds its first delivery until some producer was refused:
    // its mailboxes are then full by construction.
    if (shard_.id() == 1 && !held_) {
      held_ = true;
      hold_until([this] { return totals_.refused.load() > 0; }, totals_.hold_timed_out);
    }
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
  }
  // Shards 1..3 stop at the first turn after the request (and say so: their
  // loop ends, nothing drains their mailboxes any more); shard 0 keeps
  // bursting until one of them accepted or refused (full) a post after
  // that, so messages nobody will drain are certainly in flight.
  bool stopped() const override {
    if (!stopping_) return false;
    if (shard_.id() != 0) {
      totals_.loop_ended[shard_.id()].store(true);
      return true;
    }
    return totals_.posted_to_ended.load() > 0 || totals_.refused_by_ended.load() > 0;
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
        bool ended = totals_.loop_ended[to].load();
        if (!shard_.post(to, m)) {
          totals_.refused.fetch_add(1);
          if (ended) totals_.refused_by_ended.fetch_add(1);
          break;  // full: retry at the next burst, order kept
        }
        payload.release();
        totals_.posted.fetch_add(1);
        if (ended) totals_.posted_to_ended.fetch_add(1);
        ++next_to_send_[to];
      }
    }
  }

  Shard& shard_;
  Reactor& reactor_;
  Totals& totals_;
  bool stopping_ = false;
  bool held_ = false;
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
  EXPECT_FALSE(totals.hold_timed_out.load()) << "no producer was refused while shard 1 was held";
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

// Obligations: shard 0 posts many more than the mailbox holds while shard 1
// is held, so most wait in shard 0's overflow list; a plain post() behind
// them is refused (nothing overtakes them). All arrive, once, in order.
struct ObligationTotals {
  static constexpr uint64_t kCount = 1000;
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> order_errors{0};
  std::atomic<uint64_t> deferred{0};           // shard 0's obligations_deferred() after posting
  std::atomic<bool> plain_post_refused{false};  // post() behind waiting obligations
  std::atomic<bool> hold_timed_out{false};
  std::atomic<bool> stop{false};
};

class ObligationService : public ShardService {
 public:
  ObligationService(Shard& shard, ObligationTotals& totals) : shard_(shard), totals_(totals) {
    if (shard.id() == 0) shard.reactor().add_periodic(1, [this] { post_all_once(); });
  }
  void on_message(const ShardMessage& m) override {
    if (m.kind != kPayloadKind) return;
    if (!held_) {
      held_ = true;
      hold_until([this] { return totals_.deferred.load() > 0; }, totals_.hold_timed_out);
    }
    if (m.arg64_a != next_) totals_.order_errors.fetch_add(1);
    next_ = m.arg64_a + 1;
    if (totals_.delivered.fetch_add(1) + 1 == ObligationTotals::kCount) totals_.stop.store(true);
  }
  void on_stop_requested() override { stopping_ = true; }
  bool stopped() const override { return stopping_; }

 private:
  void post_all_once() {
    if (posted_) return;
    posted_ = true;
    for (uint64_t i = 0; i < ObligationTotals::kCount; ++i) {
      ShardMessage m;
      m.kind = kPayloadKind;
      m.arg64_a = i;
      shard_.post_obligation(1, m);
    }
    ShardMessage plain;
    plain.kind = kPayloadKind;
    plain.arg64_a = UINT64_MAX;
    totals_.plain_post_refused.store(shard_.obligations_waiting() > 0 && !shard_.post(1, plain));
    totals_.deferred.store(shard_.obligations_deferred());
  }

  Shard& shard_;
  ObligationTotals& totals_;
  bool posted_ = false;
  bool held_ = false;
  bool stopping_ = false;
  uint64_t next_ = 0;
};

TEST(ShardGroup, ObligationsWaitForRoomAndArriveOnceInOrder) {
  ObligationTotals totals;
  ShardGroupOptions options;
  options.shard_count = 2;
  options.pin_threads = false;
  options.mailbox_capacity = 8;
  options.reactor.max_sockets = 16;
  options.reactor.recv_buffer_count = 16;
  ShardGroup group;
  std::thread stopper([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!totals.stop.load() && !totals.hold_timed_out.load() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    group.request_stop();
  });
  auto run = group.run(options, [&](Shard& shard) -> std::expected<std::unique_ptr<ShardService>, std::string> {
    return std::make_unique<ObligationService>(shard, totals);
  });
  stopper.join();
  ASSERT_TRUE(run.has_value()) << run.error();
  EXPECT_FALSE(totals.hold_timed_out.load());
  EXPECT_GE(totals.deferred.load(), ObligationTotals::kCount - 8) << "all but a mailbox's worth waited";
  EXPECT_TRUE(totals.plain_post_refused.load());
  EXPECT_EQ(totals.delivered.load(), ObligationTotals::kCount);
  EXPECT_EQ(totals.order_errors.load(), 0u);
}

// The per-pair capacity follows the per-shard budget: the memory of one
// shard's mailboxes does not grow with the shard count.
TEST(ShardGroup, MailboxMemoryPerShardDoesNotGrowWithTheShardCount) {
  ShardGroupOptions options;
  for (uint32_t n : {2u, 16u, 64u}) {
    uint32_t per_pair = options.pair_capacity(n);
    EXPECT_TRUE(std::has_single_bit(per_pair)) << n;
    EXPECT_LE(uint64_t{per_pair} * n, options.mailbox_messages_per_shard) << n;
    EXPECT_LE(uint64_t{per_pair} * n * sizeof(ShardMessage), 4u << 20) << n;
  }
}

}  // namespace
}  // namespace mf
