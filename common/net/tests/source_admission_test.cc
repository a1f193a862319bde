#include "common/net/source_admission.h"

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <utility>
#include <vector>

namespace mf {
namespace {

// Two shards in one thread: every message waits in `queue` until deliver().
struct TwoShards {
  enum class Kind { acquire, verdict, release };
  struct Message {
    uint32_t to;
    Kind kind;
    std::unique_ptr<SourceRequest> request;
  };
  struct Messenger final : SourceMessenger {
    TwoShards* shards = nullptr;
    bool full = false;
    bool send_acquire(uint32_t owner, std::unique_ptr<SourceRequest> request) override {
      if (full) return false;
      shards->queue.push_back({owner, Kind::acquire, std::move(request)});
      return true;
    }
    void send_verdict(uint32_t shard, std::unique_ptr<SourceRequest> request) override {
      shards->queue.push_back({shard, Kind::verdict, std::move(request)});
    }
    void send_release(uint32_t owner, std::unique_ptr<SourceRequest> request) override {
      shards->queue.push_back({owner, Kind::release, std::move(request)});
    }
  };

  TwoShards() { messengers[0].shards = messengers[1].shards = this; }
  Messenger messengers[2];
  SourceAdmission shard[2] = {SourceAdmission(0, 2, messengers[0]), SourceAdmission(1, 2, messengers[1])};
  std::deque<Message> queue;
  SourceLimitSettings limits{.connections = 1, .rate = 0, .burst = 0, .prefixes = {}};
  bool waiting = true;                  // the asking connection still waits for its verdict
  std::vector<SourceVerdict> verdicts;  // what on_verdict returned to a waiting connection

  // Delivers every queued message (and those they cause).
  void deliver() {
    while (!queue.empty()) {
      Message m = std::move(queue.front());
      queue.pop_front();
      SourceAdmission& to = shard[m.to];
      switch (m.kind) {
        case Kind::acquire: to.on_acquire(std::move(m.request), limits, 0); break;
        case Kind::verdict:
          if (auto verdict = to.on_verdict(std::move(m.request), waiting)) verdicts.push_back(*verdict);
          break;
        case Kind::release: to.on_release(std::move(m.request), 0); break;
      }
    }
  }
};

// A source owned by shard `owner` of two.
SourceKey key_owned_by(const SourceAdmission& admission, uint32_t owner) {
  for (uint8_t last = 1;; ++last) {
    SourceKey key{4, {}};
    key.address[0] = 10;
    key.address[3] = last;
    if (admission.owner(key) == owner) return key;
  }
}

TEST(SourceAdmission, TheOwnerCountsAtOnce) {
  TwoShards two;
  SourceKey key = key_owned_by(two.shard[0], 0);
  EXPECT_EQ(two.shard[0].acquire(key, 0, 0, two.limits, 0).step, SourceAdmission::Step::admitted);
  auto second = two.shard[0].acquire(key, 0, 0, two.limits, 0);
  EXPECT_EQ(second.step, SourceAdmission::Step::refused);
  EXPECT_EQ(second.verdict, SourceVerdict::over_connections);
  two.shard[0].release(key, 0);
  EXPECT_TRUE(two.queue.empty());
  EXPECT_EQ(two.shard[0].limiter().open(key), 0u);
}

TEST(SourceAdmission, AnotherShardAsksTheOwnerAndGivesBackAtTheEnd) {
  TwoShards two;
  SourceKey key = key_owned_by(two.shard[1], 0);
  EXPECT_EQ(two.shard[1].acquire(key, 3, 1, two.limits, 0).step, SourceAdmission::Step::pending);
  two.deliver();
  ASSERT_EQ(two.verdicts.size(), 1u);
  EXPECT_EQ(two.verdicts[0], SourceVerdict::admitted);
  EXPECT_EQ(two.shard[0].limiter().open(key), 1u);
  // The limit holds across shards: the owner refuses its own connection now.
  EXPECT_EQ(two.shard[0].acquire(key, 0, 0, two.limits, 0).step, SourceAdmission::Step::refused);
  two.shard[1].release(key, 0);
  two.deliver();
  EXPECT_EQ(two.shard[0].limiter().open(key), 0u);
}

TEST(SourceAdmission, AVerdictForAConnectionGoneGivesThePlaceBack) {
  TwoShards two;
  SourceKey key = key_owned_by(two.shard[1], 0);
  EXPECT_EQ(two.shard[1].acquire(key, 3, 1, two.limits, 0).step, SourceAdmission::Step::pending);
  two.waiting = false;  // the connection closed before the verdict came
  two.deliver();
  EXPECT_TRUE(two.verdicts.empty());
  EXPECT_EQ(two.shard[0].limiter().open(key), 0u);
}

TEST(SourceAdmission, AFullMailboxIsBusyAndCountsNothing) {
  TwoShards two;
  two.messengers[1].full = true;
  SourceKey key = key_owned_by(two.shard[1], 0);
  EXPECT_EQ(two.shard[1].acquire(key, 3, 1, two.limits, 0).step, SourceAdmission::Step::busy);
  EXPECT_EQ(two.shard[0].limiter().open(key), 0u);
}

}  // namespace
}  // namespace mf
