#include "edge/token_bucket.h"

#include <gtest/gtest.h>

#include <limits>

namespace mf::edge {
namespace {

constexpr uint64_t t0 = 5'000'000;

int take_all(TokenBucket& bucket, uint32_t rate, uint32_t burst, uint64_t now_ms) {
  int taken = 0;
  while (bucket.take(rate, burst, now_ms)) ++taken;
  return taken;
}

TEST(TokenBucket, StartsFullWithBurst) {
  TokenBucket bucket;
  bucket.init(5, t0);
  EXPECT_EQ(take_all(bucket, 10, 5, t0), 5);
  EXPECT_FALSE(bucket.take(10, 5, t0));
}

TEST(TokenBucket, RefillsExactlyAtRate) {
  TokenBucket bucket;
  bucket.init(5, t0);
  ASSERT_EQ(take_all(bucket, 10, 5, t0), 5);
  // 10 per second: one token per 100 ms, none before.
  EXPECT_FALSE(bucket.take(10, 5, t0 + 99));
  EXPECT_TRUE(bucket.take(10, 5, t0 + 100));
  EXPECT_FALSE(bucket.take(10, 5, t0 + 100));
  EXPECT_FALSE(bucket.take(10, 5, t0 + 199));
  EXPECT_TRUE(bucket.take(10, 5, t0 + 200));
}

TEST(TokenBucket, FractionalRefillIsNotLostBetweenCalls) {
  TokenBucket bucket;
  bucket.init(2, t0);
  ASSERT_EQ(take_all(bucket, 3, 2, t0), 2);
  // 3 per second: a token every 333.33 ms. Polling every millisecond must
  // not lose the fractions: the token arrives at exactly 334 ms.
  uint64_t now = t0;
  while (!bucket.take(3, 2, ++now)) {
  }
  EXPECT_EQ(now - t0, 334u);
  // Over the next 10 s of polling exactly 30 more tokens arrive.
  int taken = 0;
  for (uint64_t t = now + 1; t <= now + 10'000; ++t) taken += bucket.take(3, 2, t) ? 1 : 0;
  EXPECT_EQ(taken, 30);
}

TEST(TokenBucket, FillBeyondBurstIsDiscarded) {
  TokenBucket bucket;
  bucket.init(1, t0);
  ASSERT_TRUE(bucket.take(3, 1, t0));
  // 334 ms give 1.002 tokens, capped at the burst of 1: the 0.002 is gone,
  // so the next token needs a full 333.33 ms again (at 668, not 667).
  EXPECT_TRUE(bucket.take(3, 1, t0 + 334));
  EXPECT_FALSE(bucket.take(3, 1, t0 + 667));
  EXPECT_TRUE(bucket.take(3, 1, t0 + 668));
}

TEST(TokenBucket, CapsAtBurstAfterLongIdle) {
  TokenBucket bucket;
  bucket.init(3, t0);
  ASSERT_EQ(take_all(bucket, 100, 3, t0), 3);
  EXPECT_EQ(take_all(bucket, 100, 3, t0 + 3'600'000), 3);
}

TEST(TokenBucket, TimeStandingStillOrSteppingBack) {
  TokenBucket bucket;
  bucket.init(2, t0);
  ASSERT_EQ(take_all(bucket, 1000, 2, t0), 2);
  EXPECT_FALSE(bucket.take(1000, 2, t0));
  EXPECT_FALSE(bucket.take(1000, 2, t0 - 1000));
  EXPECT_FALSE(bucket.take(1000, 2, 0));
  // Stepping back did not move the reference: 1 ms after t0 gives 1 token.
  EXPECT_TRUE(bucket.take(1000, 2, t0 + 1));
  EXPECT_FALSE(bucket.take(1000, 2, t0 + 1));
}

TEST(TokenBucket, HugeGapsAndRatesDoNotOverflow) {
  constexpr uint32_t max32 = std::numeric_limits<uint32_t>::max();
  TokenBucket bucket;
  bucket.init(max32, 0);
  EXPECT_TRUE(bucket.take(max32, max32, std::numeric_limits<uint64_t>::max()));
  EXPECT_EQ(bucket.milli_tokens, uint64_t{max32} * 1000 - 1000);
  TokenBucket small;
  small.init(1, 0);
  ASSERT_TRUE(small.take(1, 1, 0));
  EXPECT_TRUE(small.take(max32, 1, std::numeric_limits<uint64_t>::max()));
  EXPECT_FALSE(small.take(max32, 1, std::numeric_limits<uint64_t>::max()));
  TokenBucket fast;
  fast.init(2, 0);
  ASSERT_EQ(take_all(fast, max32, 2, 0), 2);
  EXPECT_EQ(take_all(fast, max32, 2, 1), 2);
}

// The refill's two ways of deciding "fills the bucket" (a product below
// 2^32 ms of gap, a quotient above) agree at their edges: the gap that
// exactly fills, one short of it, and the largest gap of the first way.
TEST(TokenBucket, RefillAtTheEdgesOfBothWays) {
  constexpr uint32_t max32 = std::numeric_limits<uint32_t>::max();
  constexpr uint64_t first_way_max = (uint64_t{1} << 32) - 1;
  // Burst max32 at rate 1: empty, it needs max32 * 1000 ms (beyond 2^32)
  // to fill, so a gap of 2^32 - 1 ms refills exactly that many milli-tokens.
  TokenBucket slow;
  slow.init(max32, 0);
  slow.milli_tokens = 0;
  EXPECT_TRUE(slow.take(1, max32, first_way_max));
  EXPECT_EQ(slow.milli_tokens, first_way_max - 1000);
  slow.milli_tokens = 0;
  slow.last_ms = 0;
  EXPECT_TRUE(slow.take(1, max32, first_way_max + 1));  // the second way, still short of full
  EXPECT_EQ(slow.milli_tokens, first_way_max + 1 - 1000);
  // Burst 3 at rate 7: 3,000 milli-tokens missing fill in 429 ms, not 428.
  TokenBucket fast;
  fast.init(3, 0);
  fast.milli_tokens = 0;
  EXPECT_TRUE(fast.take(7, 3, 428));
  EXPECT_EQ(fast.milli_tokens, 428u * 7 - 1000);
  fast.milli_tokens = 0;
  fast.last_ms = 0;
  EXPECT_TRUE(fast.take(7, 3, 429));
  EXPECT_EQ(fast.milli_tokens, 2000u);
}

TEST(TokenBucket, ZeroRateNeverRefillsZeroBurstRefusesAll) {
  TokenBucket bucket;
  bucket.init(2, t0);
  EXPECT_EQ(take_all(bucket, 0, 2, t0 + 1'000'000), 2);
  EXPECT_FALSE(bucket.take(0, 2, t0 + 2'000'000));
  TokenBucket none;
  none.init(0, t0);
  EXPECT_FALSE(none.take(100, 0, t0));
  EXPECT_FALSE(none.take(100, 0, t0 + 10'000));
}

TEST(TokenBucket, SmallerBurstCapsAtOnce) {
  TokenBucket bucket;
  bucket.init(10, t0);
  EXPECT_EQ(take_all(bucket, 1, 3, t0), 3);
}

TEST(TokenBucket, SustainedRateMatchesConfiguration) {
  TokenBucket bucket;
  bucket.init(20, 0);
  // A client sending every millisecond for 60 s gets burst + 60 * rate.
  int accepted = 0;
  for (uint64_t t = 0; t < 60'000; ++t) accepted += bucket.take(50, 20, t) ? 1 : 0;
  // The burst, then 59 999 ms of refill at 50/s: 2999.95 tokens.
  EXPECT_EQ(accepted, 20 + 2999);
}

TEST(ErrorBudget, ExceededOnLimitPlusOneInWindow) {
  ErrorBudget budget;
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(budget.record_error(t0 + i, 20, 10'000)) << i;
  EXPECT_TRUE(budget.record_error(t0 + 20, 20, 10'000));
  EXPECT_TRUE(budget.record_error(t0 + 21, 20, 10'000));
}

TEST(ErrorBudget, NoLateCloseJustInsideWindow) {
  // slot width ceil(10000 / 15) = 667 ms. The first error at the very end of
  // a slot, the 21st 9999 ms later: still counted together.
  for (uint64_t start : {uint64_t{0}, uint64_t{666}, uint64_t{667}, t0, t0 + 333}) {
    ErrorBudget budget;
    for (int i = 0; i < 20; ++i) ASSERT_FALSE(budget.record_error(start, 20, 10'000));
    EXPECT_TRUE(budget.record_error(start + 9'999, 20, 10'000)) << start;
  }
}

TEST(ErrorBudget, ExactSlotBoundaries) {
  ErrorBudget budget;
  // 20 errors at time 0 (slot 0). An error at 10671 ms is in slot 15: the
  // window still holds slot 0.
  for (int i = 0; i < 20; ++i) ASSERT_FALSE(budget.record_error(0, 20, 10'000));
  EXPECT_TRUE(budget.record_error(10'671, 20, 10'000));
  ErrorBudget later;
  for (int i = 0; i < 20; ++i) ASSERT_FALSE(later.record_error(0, 20, 10'000));
  // At 10672 ms (slot 16) slot 0 has left the window.
  EXPECT_FALSE(later.record_error(10'672, 20, 10'000));
}

TEST(ErrorBudget, SteadyRateBelowLimitNeverCloses) {
  ErrorBudget budget;
  // One error every 600 ms is at most 18 per 10.672 s.
  for (uint64_t t = t0; t < t0 + 600'000; t += 600) ASSERT_FALSE(budget.record_error(t, 20, 10'000)) << t;
}

TEST(ErrorBudget, SteadyRateAboveLimitCloses) {
  ErrorBudget budget;
  // One error every 400 ms is 25 per 10 s: closes by the 21st error.
  int errors = 0;
  uint64_t t = t0;
  while (!budget.record_error(t, 20, 10'000)) {
    ++errors;
    t += 400;
    ASSERT_LT(errors, 21);
  }
  EXPECT_EQ(errors, 20);
}

TEST(ErrorBudget, LongGapForgetsEverything) {
  ErrorBudget budget;
  for (int i = 0; i < 20; ++i) ASSERT_FALSE(budget.record_error(t0, 20, 10'000));
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(budget.record_error(t0 + 86'400'000, 20, 10'000)) << i;
  EXPECT_TRUE(budget.record_error(t0 + 86'400'000, 20, 10'000));
}

TEST(ErrorBudget, PartialSlideKeepsRecentSlots) {
  ErrorBudget budget;
  // 10 errors in slot 0, 10 in slot 8, then slot 16: slot 0 gone, slot 8 kept.
  for (int i = 0; i < 10; ++i) ASSERT_FALSE(budget.record_error(0, 20, 10'000));
  for (int i = 0; i < 10; ++i) ASSERT_FALSE(budget.record_error(8 * 667, 20, 10'000));
  for (int i = 0; i < 10; ++i) ASSERT_FALSE(budget.record_error(16 * 667, 20, 10'000)) << i;
  EXPECT_TRUE(budget.record_error(16 * 667, 20, 10'000));
}

TEST(ErrorBudget, ClockSteppingBackCountsInNewestSlot) {
  ErrorBudget budget;
  for (int i = 0; i < 20; ++i) ASSERT_FALSE(budget.record_error(t0, 20, 10'000));
  EXPECT_TRUE(budget.record_error(t0 - 100'000, 20, 10'000));
}

TEST(ErrorBudget, LimitZeroAndSaturation) {
  ErrorBudget strict;
  EXPECT_TRUE(strict.record_error(t0, 0, 10'000));
  ErrorBudget big;
  // Limits above max_limit act as max_limit.
  for (uint32_t i = 0; i < ErrorBudget::max_limit; ++i) ASSERT_FALSE(big.record_error(t0, 100'000, 10'000)) << i;
  EXPECT_TRUE(big.record_error(t0, 100'000, 10'000));
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(big.record_error(t0, ErrorBudget::max_limit, 10'000));
}

TEST(ErrorBudget, TinyWindows) {
  ErrorBudget budget;
  // window 0 acts as 1 ms slots: 16 ms of memory.
  ASSERT_FALSE(budget.record_error(100, 1, 0));
  EXPECT_TRUE(budget.record_error(115, 1, 0));
  ErrorBudget other;
  ASSERT_FALSE(other.record_error(100, 1, 0));
  EXPECT_FALSE(other.record_error(116, 1, 0));
}

TEST(ErrorBudget, ResetForgets) {
  ErrorBudget budget;
  for (int i = 0; i < 20; ++i) ASSERT_FALSE(budget.record_error(t0, 20, 10'000));
  budget.reset();
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(budget.record_error(t0, 20, 10'000));
}

}  // namespace
}  // namespace mf::edge
