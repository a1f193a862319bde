#include "common/runtime/timer_wheel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <vector>

namespace mf {
namespace {

// Tick at which a deadline may fire: its tick boundary, rounded up.
uint64_t due_ms(uint64_t deadline_ms, uint32_t tick_ms) {
  return (deadline_ms + tick_ms - 1) / tick_ms * tick_ms;
}

struct Fired {
  uint64_t tag;
  uint64_t now_ms;
};

TEST(TimerWheel, FiresInOrderAtItsTickNeverEarly) {
  TimerWheel wheel(10, 64);
  const std::vector<uint64_t> deadlines = {5, 10, 11, 19, 20, 21, 99, 100, 333, 640, 641, 1000};
  std::vector<std::unique_ptr<TimerNode>> nodes;
  for (size_t i = deadlines.size(); i-- > 0;) {  // armed in reverse on purpose
    nodes.push_back(std::make_unique<TimerNode>(i));
    wheel.arm(*nodes.back(), deadlines[i]);
  }
  EXPECT_EQ(wheel.armed_count(), deadlines.size());

  std::vector<Fired> fired;
  for (uint64_t now = 0; now <= 1100; ++now) {
    wheel.advance(now, [&](TimerNode& node) {
      EXPECT_FALSE(node.armed());
      fired.push_back({node.tag, now});
    });
  }
  ASSERT_EQ(fired.size(), deadlines.size());
  std::vector<int> fires(deadlines.size());
  for (size_t i = 0; i < fired.size(); ++i) {
    ++fires[fired[i].tag];
    if (i > 0) {
      EXPECT_LE(fired[i - 1].now_ms, fired[i].now_ms) << "fire order";
    }
    const uint64_t deadline = deadlines[fired[i].tag];
    EXPECT_GE(fired[i].now_ms, deadline) << "fired early";
    EXPECT_LT(fired[i].now_ms, deadline + 10) << "more than one tick late";
    EXPECT_EQ(fired[i].now_ms, due_ms(deadline, 10));
  }
  for (int f : fires) EXPECT_EQ(f, 1);
  EXPECT_EQ(wheel.armed_count(), 0u);
}

TEST(TimerWheel, AdvanceReportsCountAndIgnoresTimeGoingBack) {
  TimerWheel wheel(10, 16);
  TimerNode a(1), b(2);
  wheel.arm(a, 30);
  wheel.arm(b, 30);
  EXPECT_EQ(wheel.advance(29, [](TimerNode&) { FAIL(); }), 0u);
  EXPECT_EQ(wheel.advance(30, [](TimerNode&) {}), 2u);
  wheel.arm(a, 40);
  EXPECT_EQ(wheel.advance(20, [](TimerNode&) { FAIL(); }), 0u);
  EXPECT_EQ(wheel.advance(40, [](TimerNode&) {}), 1u);
}

TEST(TimerWheel, RearmMovesEarlierAndLater) {
  TimerWheel wheel(10, 64);
  TimerNode early(1), late(2), lazy(3);
  wheel.arm(early, 500);
  wheel.arm(late, 100);
  wheel.arm(lazy, 100);
  wheel.arm(early, 50);   // pulled in: must move
  wheel.arm(late, 300);   // pushed out: may stay lazily in its old slot
  for (uint64_t d = 110; d <= 250; d += 7) wheel.arm(lazy, d);  // idle pattern, ends at 250
  EXPECT_EQ(wheel.armed_count(), 3u);
  EXPECT_EQ(lazy.deadline_ms(), 250u);

  std::map<uint64_t, uint64_t> fired_at;
  for (uint64_t now = 0; now <= 1000; ++now) {
    wheel.advance(now, [&](TimerNode& n) { EXPECT_TRUE(fired_at.emplace(n.tag, now).second); });
  }
  EXPECT_EQ(fired_at, (std::map<uint64_t, uint64_t>{{1, 50}, {2, 300}, {3, 250}}));
}

TEST(TimerWheel, LazyRearmWithinTheSameTickKeepsTheTick) {
  TimerWheel wheel(10, 64);
  TimerNode node;
  wheel.arm(node, 21);  // tick 3
  wheel.arm(node, 29);  // still tick 3
  std::vector<uint64_t> fired_at;
  for (uint64_t now = 0; now <= 60; ++now) {
    wheel.advance(now, [&](TimerNode&) { fired_at.push_back(now); });
  }
  EXPECT_EQ(fired_at, std::vector<uint64_t>{30});
}

TEST(TimerWheel, Cancel) {
  TimerWheel wheel(10, 64);
  TimerNode a(1), b(2);
  EXPECT_FALSE(wheel.cancel(a));
  wheel.arm(a, 100);
  wheel.arm(b, 100);
  EXPECT_TRUE(a.armed());
  EXPECT_TRUE(wheel.cancel(a));
  EXPECT_FALSE(a.armed());
  EXPECT_FALSE(wheel.cancel(a));
  EXPECT_EQ(wheel.armed_count(), 1u);
  wheel.arm(b, 400);  // lazy, then cancel while lazily parked
  EXPECT_TRUE(wheel.cancel(b));
  EXPECT_EQ(wheel.armed_count(), 0u);
  EXPECT_EQ(wheel.advance(10'000, [](TimerNode&) { FAIL(); }), 0u);
  EXPECT_FALSE(wheel.next_deadline_hint_ms().has_value());
}

TEST(TimerWheel, CallbackCancelsOtherNodes) {
  TimerWheel wheel(10, 64);
  TimerNode first(1), same_tick(2), later_tick(3), survivor(4);
  wheel.arm(first, 100);
  wheel.arm(same_tick, 100);   // same slot, after `first` in it
  wheel.arm(later_tick, 120);  // a slot visited later in the same advance()
  wheel.arm(survivor, 130);
  std::vector<uint64_t> fired;
  const size_t n = wheel.advance(200, [&](TimerNode& node) {
    fired.push_back(node.tag);
    if (node.tag == 1) {
      EXPECT_TRUE(wheel.cancel(same_tick));
      EXPECT_TRUE(wheel.cancel(later_tick));
    }
  });
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(fired, (std::vector<uint64_t>{1, 4}));
  EXPECT_EQ(wheel.armed_count(), 0u);
}

TEST(TimerWheel, CallbackRearmsAnotherNodeOfTheSameSlot) {
  TimerWheel wheel(10, 64);
  TimerNode first(1), second(2);
  wheel.arm(first, 100);
  wheel.arm(second, 100);
  std::vector<Fired> fired;
  auto record = [&](uint64_t now) {
    return [&, now](TimerNode& node) {
      fired.push_back({node.tag, now});
      if (node.tag == 1) wheel.arm(second, 150);
    };
  };
  for (uint64_t now = 0; now <= 300; now += 5) wheel.advance(now, record(now));
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_EQ(fired[0].tag, 1u);
  EXPECT_EQ(fired[0].now_ms, 100u);
  EXPECT_EQ(fired[1].tag, 2u);
  EXPECT_EQ(fired[1].now_ms, 150u);
}

TEST(TimerWheel, CallbackArmsForNowFireOnTheNextAdvanceOnly) {
  TimerWheel wheel(10, 64);
  TimerNode periodic(1), fresh(2);
  wheel.arm(periodic, 50);
  int periodic_fires = 0;
  int fresh_fires = 0;
  auto on_expired = [&](TimerNode& node) {
    if (node.tag == 1) {
      wheel.arm(node, 0);  // in the past: must wait for the next advance()
      if (++periodic_fires == 1) {
        wheel.arm(fresh, 700);  // tick 70: slot 6, which this pass visits next
        wheel.arm(fresh, 55);   // due now, but armed from a callback
      }
    } else {
      ++fresh_fires;
    }
  };
  EXPECT_EQ(wheel.advance(60, on_expired), 1u);
  EXPECT_EQ(periodic_fires, 1);
  EXPECT_EQ(fresh_fires, 0);
  EXPECT_EQ(wheel.next_deadline_hint_ms(), 70u);
  EXPECT_EQ(wheel.advance(65, on_expired), 0u);  // same tick: nothing new
  EXPECT_EQ(wheel.advance(70, on_expired), 2u);
  EXPECT_EQ(periodic_fires, 2);
  EXPECT_EQ(fresh_fires, 1);
  wheel.cancel(periodic);
  EXPECT_EQ(wheel.armed_count(), 0u);
}

TEST(TimerWheel, CallbackPushingOutADueNodeDefersItToTheNextAdvance) {
  TimerWheel wheel(10, 64);
  TimerNode first(1), pushed(2);
  wheel.arm(first, 100);
  wheel.arm(pushed, 150);  // a slot this pass has not reached yet
  std::vector<uint64_t> fired;
  auto on_expired = [&](TimerNode& node) {
    fired.push_back(node.tag);
    if (node.tag == 1) wheel.arm(pushed, 200);  // later, but still due by 300
  };
  EXPECT_EQ(wheel.advance(300, on_expired), 1u);
  EXPECT_EQ(fired, std::vector<uint64_t>{1});
  EXPECT_EQ(wheel.advance(309, on_expired), 0u);
  EXPECT_EQ(wheel.advance(310, on_expired), 1u);
  EXPECT_EQ(fired, (std::vector<uint64_t>{1, 2}));
}

TEST(TimerWheel, CallbackMayDestroyTheOwner) {
  struct Connection {
    TimerNode idle{7};
  };
  TimerWheel wheel(10, 64);
  auto conn = std::make_unique<Connection>();
  TimerNode other(8);
  wheel.arm(conn->idle, 100);
  wheel.arm(other, 100);
  std::vector<uint64_t> fired;
  wheel.advance(100, [&](TimerNode& node) {
    fired.push_back(node.tag);
    if (node.tag == 7) conn.reset();
  });
  EXPECT_EQ(fired, (std::vector<uint64_t>{7, 8}));
  EXPECT_EQ(conn, nullptr);
}

TEST(TimerWheel, NestedAdvanceAborts) {
  EXPECT_DEATH(
      {
        TimerWheel wheel(10, 64);
        TimerNode node;
        wheel.arm(node, 10);
        wheel.advance(10, [&](TimerNode&) { wheel.advance(20, [](TimerNode&) {}); });
      },
      "");
}

TEST(TimerWheel, DestroyingAnArmedNodeAborts) {
  EXPECT_DEATH(
      {
        TimerWheel wheel(10, 64);
        auto node = std::make_unique<TimerNode>();
        wheel.arm(*node, 10);
        node.reset();
      },
      "");
}

TEST(TimerWheel, WheelDestructionDisarmsNodes) {
  TimerNode node;
  {
    TimerWheel wheel(10, 64);
    wheel.arm(node, 10'000);
  }
  EXPECT_FALSE(node.armed());
}

TEST(TimerWheel, DeadlinesSeveralRevolutionsAhead) {
  TimerWheel wheel(10, 16);  // a revolution is 160 ms
  TimerNode a(1), b(2), c(3), d(4);
  wheel.arm(a, 1'000);   // 6.25 revolutions
  wheel.arm(b, 1'000 - 160 * 3);  // same slot, 3 revolutions earlier
  wheel.arm(c, 5'555);
  wheel.arm(d, 161);
  std::map<uint64_t, uint64_t> fired_at;
  for (uint64_t now = 0; now <= 6'000; now += 3) {
    wheel.advance(now, [&](TimerNode& n) { EXPECT_TRUE(fired_at.emplace(n.tag, now).second); });
  }
  // Advancing by 3 ms: the first call at or after each due tick.
  EXPECT_EQ(fired_at, (std::map<uint64_t, uint64_t>{{1, 1'002}, {2, 522}, {3, 5'562}, {4, 171}}));
}

TEST(TimerWheel, LongStallFiresEverythingDueOnceAndCostsOneRevolution) {
  TimerWheel wheel(10, 4096);
  constexpr uint64_t start = 1'000'000;
  std::vector<std::unique_ptr<TimerNode>> nodes;
  for (uint64_t i = 0; i < 1'000; ++i) {
    nodes.push_back(std::make_unique<TimerNode>(i));
    wheel.arm(*nodes.back(), start + i * 997);  // up to ~1,000 s: many revolutions
  }
  wheel.advance(start - 1, [](TimerNode&) { FAIL(); });

  // A 10-minute stall: everything up to then fires, exactly once.
  const uint64_t stall_end = start + 600'000;
  std::vector<int> fires(nodes.size());
  const size_t n = wheel.advance(stall_end, [&](TimerNode& node) { ++fires[node.tag]; });
  size_t due = 0;
  for (uint64_t i = 0; i < nodes.size(); ++i) {
    const bool is_due = start + i * 997 <= stall_end;
    due += is_due;
    EXPECT_EQ(fires[i], is_due ? 1 : 0) << i;
    EXPECT_EQ(nodes[i]->armed(), !is_due);
  }
  EXPECT_EQ(n, due);
  EXPECT_EQ(wheel.armed_count(), nodes.size() - due);

  // A stall of ~35,000 years with a timer still armed beyond it: walked tick by
  // tick, or even revolution by revolution, it would never finish; the walk is
  // capped at one revolution per call.
  TimerNode beyond(UINT64_MAX);
  const uint64_t later = stall_end + (uint64_t{1} << 50);
  wheel.arm(beyond, later + 1);
  const auto t0 = std::chrono::steady_clock::now();
  const size_t rest = wheel.advance(later, [&](TimerNode& node) { ++fires[node.tag]; });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  EXPECT_EQ(rest, nodes.size() - due);
  for (int f : fires) EXPECT_EQ(f, 1);
  EXPECT_EQ(wheel.armed_count(), 1u);
  EXPECT_TRUE(beyond.armed());
  EXPECT_EQ(wheel.advance(later + 10, [&](TimerNode& node) { EXPECT_EQ(&node, &beyond); }), 1u);
}

TEST(TimerWheel, FirstAdvanceFromBootTimeIsCheap) {
  TimerNode node;
  TimerWheel wheel;  // defaults: 10 ms x 4096
  const uint64_t boot_ms = uint64_t{1} << 45;  // not a multiple of the tick
  wheel.arm(node, boot_ms + 5'000);
  EXPECT_EQ(wheel.advance(boot_ms, [](TimerNode&) { FAIL(); }), 0u);
  EXPECT_EQ(wheel.advance(boot_ms + 4'999, [](TimerNode&) { FAIL(); }), 0u);
  EXPECT_EQ(wheel.advance(due_ms(boot_ms + 5'000, 10) - 1, [](TimerNode&) { FAIL(); }), 0u);
  EXPECT_EQ(wheel.advance(due_ms(boot_ms + 5'000, 10), [](TimerNode&) {}), 1u);
}

TEST(TimerWheel, TwoHundredThousandRandomDeadlinesFireOnceAtTheirTick) {
  constexpr uint32_t tick = 10;
  TimerWheel wheel(tick, 4096);
  constexpr size_t count = 200'000;
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<uint64_t> deadline_dist(0, 200'000);  // ~5 revolutions
  std::vector<std::unique_ptr<TimerNode>> nodes;
  std::vector<uint64_t> deadline(count);
  nodes.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    nodes.push_back(std::make_unique<TimerNode>(i));
    deadline[i] = deadline_dist(rng);
    wheel.arm(*nodes.back(), deadline[i]);
  }
  EXPECT_EQ(wheel.armed_count(), count);

  std::vector<uint64_t> fired_at(count, UINT64_MAX);
  std::uniform_int_distribution<uint64_t> step_dist(1, 25);
  uint64_t now = 0;
  size_t total = 0;
  while (wheel.armed_count() > 0) {
    const std::optional<uint64_t> hint = wheel.next_deadline_hint_ms();
    ASSERT_TRUE(hint.has_value());
    total += wheel.advance(now, [&](TimerNode& node) {
      ASSERT_EQ(fired_at[node.tag], UINT64_MAX) << "fired twice";
      fired_at[node.tag] = now;
    });
    now += step_dist(rng);
    ASSERT_LT(now, 1'000'000u);
  }
  EXPECT_EQ(total, count);
  // Each fired on the first advance() that reached its tick boundary.
  for (size_t i = 0; i < count; ++i) {
    ASSERT_NE(fired_at[i], UINT64_MAX);
    EXPECT_GE(fired_at[i], due_ms(deadline[i], tick)) << i;
    EXPECT_LT(fired_at[i], due_ms(deadline[i], tick) + 25) << i;
  }
}

// Random arm / re-arm / cancel / advance checked against a plain model.
TEST(TimerWheel, RandomOperationsMatchAModel) {
  constexpr uint32_t tick = 10;
  TimerWheel wheel(tick, 64);  // small wheel: many revolutions, much lazy refiling
  constexpr size_t count = 2'000;
  std::vector<std::unique_ptr<TimerNode>> nodes;
  for (size_t i = 0; i < count; ++i) nodes.push_back(std::make_unique<TimerNode>(i));
  std::map<size_t, uint64_t> model;  // node -> tick at which it must fire
  std::mt19937_64 rng(7);
  uint64_t now = 0;
  uint64_t next_tick = 0;  // first tick not yet processed
  for (int round = 0; round < 20'000; ++round) {
    const uint64_t r = rng() % 100;
    const size_t i = rng() % count;
    if (r < 60) {
      const uint64_t deadline = now + rng() % 3'000 - std::min<uint64_t>(now, rng() % 50);
      wheel.arm(*nodes[i], deadline);
      model[i] = std::max((deadline + tick - 1) / tick, next_tick);
    } else if (r < 75) {
      EXPECT_EQ(wheel.cancel(*nodes[i]), model.erase(i) == 1);
    } else {
      now += rng() % (r < 98 ? 40 : 5'000);
      const uint64_t target = now / tick;
      std::vector<size_t> expected;
      for (auto it = model.begin(); it != model.end();) {
        if (it->second <= target) {
          expected.push_back(it->first);
          it = model.erase(it);
        } else {
          ++it;
        }
      }
      next_tick = std::max(next_tick, target + 1);
      std::vector<size_t> got;
      wheel.advance(now, [&](TimerNode& node) { got.push_back(node.tag); });
      std::sort(got.begin(), got.end());
      ASSERT_EQ(got, expected) << "round " << round;
    }
    ASSERT_EQ(wheel.armed_count(), model.size());
    if (!model.empty()) {
      uint64_t earliest = UINT64_MAX;
      for (const auto& [node, due_tick] : model) earliest = std::min(earliest, due_tick);
      const std::optional<uint64_t> hint = wheel.next_deadline_hint_ms();
      ASSERT_TRUE(hint.has_value());
      ASSERT_LE(*hint, earliest * tick) << "hint later than the earliest expiry";
      ASSERT_GE(*hint, next_tick * tick);
    }
  }
  for (auto& node : nodes) wheel.cancel(*node);
}

TEST(TimerWheel, HintIsTheEarliestOccupiedTick) {
  TimerWheel wheel(10, 64);
  EXPECT_FALSE(wheel.next_deadline_hint_ms().has_value());
  TimerNode a, b;
  wheel.arm(a, 255);
  EXPECT_EQ(wheel.next_deadline_hint_ms(), 260u);
  wheel.arm(b, 95);
  EXPECT_EQ(wheel.next_deadline_hint_ms(), 100u);
  wheel.advance(100, [](TimerNode&) {});
  EXPECT_EQ(wheel.next_deadline_hint_ms(), 260u);
  // Far beyond a revolution: tick 10,000 sits in slot 16, whose next pass is
  // tick 16. The hint is early there, never late.
  wheel.arm(b, 100'000);
  EXPECT_EQ(wheel.next_deadline_hint_ms(), 160u);
  wheel.cancel(b);
  EXPECT_EQ(wheel.next_deadline_hint_ms(), 260u);
  wheel.cancel(a);
}

TEST(TimerWheel, DeadlineIsClampedNotOverflowed) {
  TimerWheel wheel(7, 32);
  TimerNode node;
  wheel.arm(node, UINT64_MAX);
  EXPECT_EQ(node.deadline_ms(), TimerWheel::max_deadline_ms);
  EXPECT_EQ(wheel.advance(uint64_t{1} << 50, [](TimerNode&) { FAIL(); }), 0u);
  wheel.arm(node, UINT64_MAX - 1);  // lazy path with a clamped deadline
  EXPECT_TRUE(node.armed());
  EXPECT_EQ(wheel.advance(TimerWheel::max_deadline_ms + 7, [](TimerNode&) {}), 1u);
}

TEST(TimerWheel, BadConfigurationAborts) {
  EXPECT_DEATH(TimerWheel(10, 100), "");
  EXPECT_DEATH(TimerWheel(0, 64), "");
  EXPECT_DEATH(TimerWheel(10, 0), "");
}

}  // namespace
}  // namespace mf
