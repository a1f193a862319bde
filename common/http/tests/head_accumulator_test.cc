// common/http/head_accumulator: a head in one read is handed out in place; a
// head over several reads (down to one byte each) comes out whole with the
// bytes after it; the limit, the pool's refusal and a peek that consumes
// nothing.
#include "common/http/head_accumulator.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mf::http {
namespace {

constexpr size_t limit = 8192;

std::span<uint8_t> bytes_of(std::string& s) { return {reinterpret_cast<uint8_t*>(s.data()), s.size()}; }
std::string text_of(std::span<const uint8_t> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

struct Fixture : ::testing::Test {
  BlockPool pool{64, 0};
  ByteQueue held;
  std::vector<uint8_t> scratch = std::vector<uint8_t>(limit + 4);
  ~Fixture() override { held.clear(pool); }
};
using HeadAccumulator = Fixture;

const std::string head = "GET /ws?stream=s HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";

TEST_F(HeadAccumulator, AHeadInOneReadIsHandedOutInPlaceWithWhatFollows) {
  std::string read = head + "FRAME";
  HeadProgress p = accumulate_head(held, pool, bytes_of(read), scratch, limit);
  ASSERT_EQ(p.status, HeadStatus::complete);
  EXPECT_EQ(p.head, head);
  EXPECT_EQ(static_cast<const void*>(p.head.data()), static_cast<const void*>(read.data()));  // no copy
  EXPECT_EQ(text_of(p.rest), "FRAME");
  EXPECT_TRUE(held.empty());
  EXPECT_EQ(pool.blocks_in_use(), 0u);
}

TEST_F(HeadAccumulator, EverySplitOfTheReadsGivesTheSameHeadAndRest) {
  const std::string wire = head + "AB";
  for (size_t step = 1; step <= wire.size(); ++step) {
    std::string got_head, got_rest;
    bool done = false;
    for (size_t at = 0; at < wire.size(); at += step) {
      std::string read = wire.substr(at, step);
      if (done) {  // past the head: the frame decoder's bytes
        got_rest += read;
        continue;
      }
      HeadProgress p = accumulate_head(held, pool, bytes_of(read), scratch, limit);
      if (p.status == HeadStatus::need_more) continue;
      ASSERT_EQ(p.status, HeadStatus::complete) << "step " << step;
      got_head = std::string(p.head);
      got_rest = text_of(p.rest);
      done = true;
    }
    ASSERT_TRUE(done) << "step " << step;
    EXPECT_EQ(got_head, head) << "step " << step;
    EXPECT_EQ(got_rest, "AB") << "step " << step;
    EXPECT_TRUE(held.empty());
    EXPECT_EQ(pool.blocks_in_use(), 0u);
  }
}

TEST_F(HeadAccumulator, NoBlankLineWithinTheLimitIsTooLargeAndHoldsNothing) {
  std::string filler(4000, 'x');
  ASSERT_EQ(accumulate_head(held, pool, bytes_of(filler), scratch, limit).status, HeadStatus::need_more);
  ASSERT_EQ(accumulate_head(held, pool, bytes_of(filler), scratch, limit).status, HeadStatus::need_more);
  EXPECT_EQ(held.size(), 8000u);
  HeadProgress p = accumulate_head(held, pool, bytes_of(filler), scratch, limit);
  EXPECT_EQ(p.status, HeadStatus::too_large);
  EXPECT_TRUE(held.empty());
  EXPECT_EQ(pool.blocks_in_use(), 0u);
}

TEST_F(HeadAccumulator, ABlankLinePastTheLimitIsTooLarge) {
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(limit, 'x') + "\r\n\r\n";
  EXPECT_EQ(accumulate_head(held, pool, bytes_of(big), scratch, limit).status, HeadStatus::too_large);
  EXPECT_TRUE(held.empty());
  // The same over two reads.
  std::string first = big.substr(0, 100), second = big.substr(100);
  ASSERT_EQ(accumulate_head(held, pool, bytes_of(first), scratch, limit).status, HeadStatus::need_more);
  EXPECT_EQ(accumulate_head(held, pool, bytes_of(second), scratch, limit).status, HeadStatus::too_large);
  EXPECT_TRUE(held.empty());
  EXPECT_EQ(pool.blocks_in_use(), 0u);
}

TEST_F(HeadAccumulator, AHeadOfExactlyTheLimitIsAccepted) {
  std::string prefix = "GET / HTTP/1.1\r\nX: ";
  std::string exact = prefix + std::string(limit - prefix.size() - 4, 'x') + "\r\n\r\n";
  ASSERT_EQ(exact.size(), limit);
  std::string first = exact.substr(0, 10), second = exact.substr(10) + "R";
  ASSERT_EQ(accumulate_head(held, pool, bytes_of(first), scratch, limit).status, HeadStatus::need_more);
  HeadProgress p = accumulate_head(held, pool, bytes_of(second), scratch, limit);
  ASSERT_EQ(p.status, HeadStatus::complete);
  EXPECT_EQ(p.head.size(), limit);
  EXPECT_EQ(text_of(p.rest), "R");
}

TEST_F(HeadAccumulator, APoolThatRefusesIsOutOfMemoryAndHoldsNothing) {
  BlockPool tiny(1, 0);
  std::string part(Block::capacity - 1, 'x');
  ASSERT_EQ(accumulate_head(held, tiny, bytes_of(part), scratch, limit).status, HeadStatus::need_more);
  std::string more = "yyyy";  // needs a second block
  EXPECT_EQ(accumulate_head(held, tiny, bytes_of(more), scratch, limit).status, HeadStatus::out_of_memory);
  EXPECT_TRUE(held.empty());
  EXPECT_EQ(tiny.blocks_in_use(), 0u);
}

TEST_F(HeadAccumulator, APeekAtHeldBytesConsumesNothing) {
  std::string part = head.substr(0, 20);
  ASSERT_TRUE(held.append(pool, bytes_of(part)));
  EXPECT_EQ(find_held_head(held, scratch, limit).status, HeadStatus::need_more);
  std::string rest = head.substr(20) + "tail";
  ASSERT_TRUE(held.append(pool, bytes_of(rest)));
  HeadProgress p = find_held_head(held, scratch, limit);
  ASSERT_EQ(p.status, HeadStatus::complete);
  EXPECT_EQ(p.head, head);
  EXPECT_EQ(held.size(), head.size() + 4);  // still all there, for the backend
  std::string filler(limit, 'x');
  held.clear(pool);
  ASSERT_TRUE(held.append(pool, bytes_of(filler)));
  EXPECT_EQ(find_held_head(held, scratch, limit).status, HeadStatus::need_more);  // exactly the limit: may still end
  std::string one = "x";
  ASSERT_TRUE(held.append(pool, bytes_of(one)));
  EXPECT_EQ(find_held_head(held, scratch, limit).status, HeadStatus::too_large);
  EXPECT_EQ(held.size(), limit + 1);
}

}  // namespace
}  // namespace mf::http
