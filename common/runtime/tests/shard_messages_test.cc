// Typed shard messages (common/runtime/shard_messages.h): one list gives each type its
// kind, its dispatch and its disposal. In-process checks of each way a type
// travels (inline, handle, boxed), then two runs of a real ShardGroup: the
// obligations of a must_arrive type posted far past the mailbox's capacity
// all arrive, once and in order, while a request behind them is refused and
// freed; and messages posted to a shard whose loop has ended are freed by the
// list's dispose at the end of the run. Every payload counts itself: none may
// be left (and the ASan build finds any leak). Nothing depends on timing: a
// full mailbox is made by holding its consumer until the producer is done.
#include "common/runtime/shard_messages.h"

#include <gtest/gtest.h>

#include "common/runtime/tests/hold_until.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

namespace mf {
namespace {

std::atomic<int64_t> live_bodies{0};

// A boxed message: not trivially copyable.
struct Numbered {
  static constexpr bool must_arrive = true;
  uint64_t sequence = 0;
  std::vector<uint64_t> padding;  // makes it a heap type
  explicit Numbered(uint64_t s = 0) : sequence(s) { live_bodies.fetch_add(1); }
  Numbered(const Numbered&) = delete;
  ~Numbered() { live_bodies.fetch_sub(1); }
};

// A request (may be refused): boxed.
struct Ask {
  uint64_t value = 0;
  Ask() { live_bodies.fetch_add(1); }
  Ask(const Ask&) = delete;
  ~Ask() { live_bodies.fetch_sub(1); }
};

// A body that hops between message types as a handle, and a chain of them
// with a deleter of its own.
struct Body {
  uint64_t value = 0;
  Body* next = nullptr;
  explicit Body(uint64_t v = 0) : value(v) { live_bodies.fetch_add(1); }
  Body(const Body&) = delete;
  ~Body() { live_bodies.fetch_sub(1); }
};
struct ChainDeleter {
  void operator()(Body* chain) const {
    while (chain != nullptr) delete std::exchange(chain, chain->next);
  }
};
struct Forward : OwnedPointer<Body> {
  using OwnedPointer::OwnedPointer;
};
struct Back : OwnedPointer<Body> {
  static constexpr bool must_arrive = true;
  using OwnedPointer::OwnedPointer;
};
struct Chain : OwnedPointer<Body, ChainDeleter> {
  static constexpr bool must_arrive = true;
  using OwnedPointer::OwnedPointer;
};

// Inline messages.
struct Tick {
  uint32_t index = 0;
  bool up = false;
  uint64_t round = 0;
};
struct Ping {
  static constexpr bool must_arrive = true;
};

struct Unlisted {
  uint32_t x = 0;
};

using TestMessages = ShardMessageList<Numbered, Ask, Forward, Back, Chain, Tick, Ping>;

// How each type travels is decided by the type.
static_assert(std::is_same_v<Posted<Numbered>, std::unique_ptr<Numbered>>);
static_assert(std::is_same_v<Posted<Forward>, Forward>);
static_assert(std::is_same_v<Posted<Tick>, Tick>);
static_assert(must_arrive_v<Numbered> && must_arrive_v<Back> && must_arrive_v<Chain> && must_arrive_v<Ping>);
static_assert(!must_arrive_v<Ask> && !must_arrive_v<Forward> && !must_arrive_v<Tick>);
// Kinds come from the list, after the runtime's.
static_assert(TestMessages::kind<Numbered>() == shard_message::first_service_kind);
static_assert(TestMessages::kind<Ping>() == shard_message::first_service_kind + 6);
static_assert(TestMessages::contains<Tick> && !TestMessages::contains<Unlisted>);
// A request's post says whether it went; an obligation's cannot fail.
static_assert(std::is_same_v<decltype(post<TestMessages>(std::declval<Shard&>(), 0, std::unique_ptr<Ask>())), bool>);
static_assert(std::is_same_v<decltype(post<TestMessages>(std::declval<Shard&>(), 0, std::unique_ptr<Numbered>())), void>);
static_assert(std::is_same_v<decltype(post<TestMessages>(std::declval<Shard&>(), 0, Ping{})), void>);

// Records what arrived, by type.
struct Recorder {
  std::vector<uint64_t> numbered, asks, forwards, backs, chains;
  std::vector<Tick> ticks;
  int pings = 0;
  void on(std::unique_ptr<Numbered> m) { numbered.push_back(m->sequence); }
  void on(std::unique_ptr<Ask> m) { asks.push_back(m->value); }
  void on(Forward m) { forwards.push_back(m->value); }
  void on(Back m) { backs.push_back(m->value); }
  void on(Chain m) {
    for (Body* b = m.get(); b != nullptr; b = b->next) chains.push_back(b->value);
  }
  void on(Tick m) { ticks.push_back(m); }
  void on(Ping) { pings++; }
};

Body* make_chain(uint64_t n) {
  Body* head = nullptr;
  for (uint64_t i = n; i > 0; --i) {
    Body* b = new Body(i);
    b->next = head;
    head = b;
  }
  return head;
}

TEST(ShardMessagesTest, EachTypeIsDispatchedToItsHandlerWithItsPayload) {
  Recorder r;
  auto numbered = std::make_unique<Numbered>(7);
  ShardMessage m1 = TestMessages::encode<Numbered>(std::move(numbered));
  ShardMessage m2 = TestMessages::encode<Forward>(Forward(new Body(11)));
  ShardMessage m3 = TestMessages::encode<Back>(Back(new Body(12)));
  ShardMessage m4 = TestMessages::encode<Chain>(Chain(make_chain(3)));
  ShardMessage m5 = TestMessages::encode<Tick>(Tick{5, true, 0x1122334455667788ULL});
  ShardMessage m6 = TestMessages::encode<Ping>(Ping{});
  auto ask = std::make_unique<Ask>();
  ask->value = 99;
  ShardMessage m7 = TestMessages::encode<Ask>(std::move(ask));
  EXPECT_EQ(live_bodies.load(), 1 + 1 + 1 + 3 + 1);
  for (const ShardMessage* m : {&m1, &m2, &m3, &m4, &m5, &m6, &m7}) EXPECT_TRUE(TestMessages::dispatch(*m, r));
  EXPECT_EQ(r.numbered, std::vector<uint64_t>{7});
  EXPECT_EQ(r.forwards, std::vector<uint64_t>{11});
  EXPECT_EQ(r.backs, std::vector<uint64_t>{12});
  EXPECT_EQ(r.chains, (std::vector<uint64_t>{1, 2, 3}));
  ASSERT_EQ(r.ticks.size(), 1u);
  EXPECT_EQ(r.ticks[0].index, 5u);
  EXPECT_TRUE(r.ticks[0].up);
  EXPECT_EQ(r.ticks[0].round, 0x1122334455667788ULL);
  EXPECT_EQ(r.pings, 1);
  EXPECT_EQ(r.asks, std::vector<uint64_t>{99});
  // The handlers took ownership and let go: nothing is left.
  EXPECT_EQ(live_bodies.load(), 0);
}

TEST(ShardMessagesTest, KindsOutsideTheListAreNotDispatched) {
  Recorder r;
  ShardMessage runtime;
  runtime.kind = shard_message::stop;
  EXPECT_FALSE(TestMessages::dispatch(runtime, r));
  ShardMessage beyond;
  beyond.kind = shard_message::first_service_kind + TestMessages::size;
  EXPECT_FALSE(TestMessages::dispatch(beyond, r));
  TestMessages::dispose(beyond);  // owns nothing: a no-op
  EXPECT_TRUE(r.numbered.empty() && r.forwards.empty() && r.ticks.empty() && r.pings == 0);
}

TEST(ShardMessagesTest, DisposeFreesWhatEachTypeOwns) {
  std::vector<ShardMessage> undelivered;
  undelivered.push_back(TestMessages::encode<Numbered>(std::make_unique<Numbered>(1)));
  undelivered.push_back(TestMessages::encode<Ask>(std::make_unique<Ask>()));
  undelivered.push_back(TestMessages::encode<Forward>(Forward(new Body(2))));
  undelivered.push_back(TestMessages::encode<Back>(Back(new Body(3))));
  undelivered.push_back(TestMessages::encode<Chain>(Chain(make_chain(5))));
  undelivered.push_back(TestMessages::encode<Tick>(Tick{1, false, 2}));
  undelivered.push_back(TestMessages::encode<Ping>(Ping{}));
  EXPECT_EQ(live_bodies.load(), 1 + 1 + 1 + 1 + 5);
  for (const ShardMessage& m : undelivered) TestMessages::dispose(m);
  // The chain's own deleter ran: every link is gone, not only its head.
  EXPECT_EQ(live_bodies.load(), 0);
}

TEST(ShardMessagesTest, AHandleHopsBetweenTypesWithoutCopying) {
  Recorder r;
  Body* body = new Body(42);
  Forward forward(body);
  // The receiver of Forward answers with the same body as Back.
  ShardMessage m = TestMessages::encode<Back>(Back(forward.release()));
  EXPECT_EQ(m.pointer, body);
  EXPECT_TRUE(TestMessages::dispatch(m, r));
  EXPECT_EQ(r.backs, std::vector<uint64_t>{42});
  EXPECT_EQ(live_bodies.load(), 0);
}

// ---- through a real ShardGroup ---------------------------------------------

constexpr uint32_t kMailboxCapacity = 8;
constexpr uint64_t kObligations = 1000;

using test::hold_until;

struct OrderRun {
  ShardGroup* group = nullptr;
  std::atomic<bool> producer_done{false};
  std::atomic<bool> timed_out{false};
  std::atomic<uint64_t> requests_refused{0};
  std::atomic<uint64_t> requests_accepted{0};
  std::atomic<uint64_t> order_errors{0};
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> pings{0};
};

// Shard 1 posts kObligations Numbered (and a Ping after each 100th) to shard
// 0, then a request; shard 0 holds on its first message until shard 1 is
// done, so all but a mailbox's worth wait in shard 1's overflow list.
class OrderService final : public ShardService {
 public:
  OrderService(Shard& shard, OrderRun& run) : shard_(shard), run_(run) {
    if (shard.id() == 1) shard.reactor().add_periodic(1, [this] { produce(); });
  }
  void on_message(const ShardMessage& message) override {
    if (!TestMessages::dispatch(message, *this)) run_.order_errors.fetch_add(1);
  }
  void on(std::unique_ptr<Numbered> m) {
    hold_until([&] { return run_.producer_done.load(); }, run_.timed_out);
    if (m->sequence != next_) run_.order_errors.fetch_add(1);
    next_ = m->sequence + 1;
    if (run_.received.fetch_add(1) + 1 == kObligations) run_.group->request_stop();
  }
  void on(Ping) {
    // A ping follows each 100th obligation: order holds across types.
    if (next_ % 100 != 0) run_.order_errors.fetch_add(1);
    run_.pings.fetch_add(1);
  }
  void on(std::unique_ptr<Ask>) { run_.requests_accepted.fetch_add(1); }
  void on(Forward) {}
  void on(Back) {}
  void on(Chain) {}
  void on(Tick) {}
  void on_stop_requested() override { stopped_ = true; }
  bool stopped() const override { return stopped_; }

 private:
  void produce() {
    if (produced_) return;
    produced_ = true;
    for (uint64_t i = 0; i < kObligations; ++i) {
      post<TestMessages>(shard_, 0, std::make_unique<Numbered>(i));
      if ((i + 1) % 100 == 0) post<TestMessages>(shard_, 0, Ping{});
    }
    // Obligations wait for shard 0: a request must not overtake them.
    auto ask = std::make_unique<Ask>();
    if (post<TestMessages>(shard_, 0, std::move(ask)))
      run_.requests_accepted.fetch_add(1);
    else
      run_.requests_refused.fetch_add(1);
    run_.producer_done.store(true);
  }
  Shard& shard_;
  OrderRun& run_;
  uint64_t next_ = 0;
  bool produced_ = false;
  bool stopped_ = false;
};

TEST(ShardMessagesTest, ObligationsPastTheCapacityArriveInOrderAndARequestBehindThemIsRefused) {
  ShardGroup group;
  OrderRun run;
  run.group = &group;
  ShardGroupOptions options;
  options.shard_count = 2;
  options.pin_threads = false;
  options.mailbox_capacity = kMailboxCapacity;
  options.dispose_undelivered = TestMessages::dispose;
  auto result = group.run(options, [&](Shard& shard) -> std::expected<std::unique_ptr<ShardService>, std::string> {
    return std::make_unique<OrderService>(shard, run);
  });
  ASSERT_TRUE(result.has_value()) << result.error();
  EXPECT_FALSE(run.timed_out.load());
  EXPECT_EQ(run.received.load(), kObligations);
  EXPECT_EQ(run.pings.load(), kObligations / 100);
  EXPECT_EQ(run.order_errors.load(), 0u);
  EXPECT_EQ(run.requests_refused.load(), 1u);
  EXPECT_EQ(run.requests_accepted.load(), 0u);
  // The refused request's payload was freed by post(); nothing is left.
  EXPECT_EQ(live_bodies.load(), 0);
}

struct StopRun {
  std::atomic<bool> shard0_gone{false};
  std::atomic<bool> timed_out{false};
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> posted{0};
};

// Shard 0 stops at once; shard 1, once shard 0's loop has ended (its
// service is destroyed), posts obligations of every kind of payload to it:
// none can be delivered, and the run's end must free them all.
class StopService final : public ShardService {
 public:
  StopService(Shard& shard, StopRun& run) : shard_(shard), run_(run) {}
  ~StopService() override {
    if (shard_.id() == 0) run_.shard0_gone.store(true);
  }
  void on_message(const ShardMessage& message) override {
    if (TestMessages::dispatch(message, *this)) run_.delivered.fetch_add(1);
  }
  template <class T>
  void on(T&&) {}
  void on_stop_requested() override {
    if (shard_.id() == 1) {
      hold_until([&] { return run_.shard0_gone.load(); }, run_.timed_out);
      for (uint64_t i = 0; i < 3 * kMailboxCapacity; ++i) {
        post<TestMessages>(shard_, 0, std::make_unique<Numbered>(i));
        post<TestMessages>(shard_, 0, Back(new Body(i)));
        post<TestMessages>(shard_, 0, Chain(make_chain(2)));
        post<TestMessages>(shard_, 0, Ping{});
        run_.posted.fetch_add(4);
      }
    }
    stopped_ = true;
  }
  bool stopped() const override { return stopped_; }

 private:
  Shard& shard_;
  StopRun& run_;
  bool stopped_ = false;
};

TEST(ShardMessagesTest, MessagesNoShardDeliversAreFreedByTheListsDispose) {
  ShardGroup group;
  StopRun run;
  ShardGroupOptions options;
  options.shard_count = 2;
  options.pin_threads = false;
  options.mailbox_capacity = kMailboxCapacity;
  options.dispose_undelivered = TestMessages::dispose;
  auto result = group.run(
      options,
      [&](Shard& shard) -> std::expected<std::unique_ptr<ShardService>, std::string> {
        return std::make_unique<StopService>(shard, run);
      },
      [&] { group.request_stop(); });
  ASSERT_TRUE(result.has_value()) << result.error();
  EXPECT_FALSE(run.timed_out.load());
  EXPECT_EQ(run.posted.load(), 4 * 3 * kMailboxCapacity);
  EXPECT_EQ(run.delivered.load(), 0u);
  // Mailbox and overflow list alike: every body, every chain link, freed.
  EXPECT_EQ(live_bodies.load(), 0);
}

}  // namespace
}  // namespace mf
