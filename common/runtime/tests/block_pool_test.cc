#include "common/runtime/block_pool.h"

#include <gtest/gtest.h>
#include <sys/uio.h>

#include <cstring>
#include <numeric>
#include <ranges>
#include <vector>

namespace mf {
namespace {

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

std::vector<uint8_t> drain_all(ByteQueue& q, BlockPool& pool, size_t step) {
  std::vector<uint8_t> out;
  while (!q.empty()) {
    auto front = q.front();
    size_t n = std::min(step, front.size());
    out.insert(out.end(), front.begin(), front.begin() + static_cast<long>(n));
    q.consume(pool, n);
  }
  return out;
}

TEST(ByteQueue, EmptyHoldsNoBlocks) {
  BlockPool pool(16, 16);
  ByteQueue q;
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(q.front().empty());
  ASSERT_TRUE(q.append(pool, pattern(10, 1)));
  EXPECT_EQ(pool.blocks_in_use(), 1u);
  q.consume(pool, 10);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(pool.blocks_in_use(), 0u);
}

TEST(ByteQueue, FifoAcrossBlocksWithPartialConsumes) {
  BlockPool pool(64, 64);
  ByteQueue q;
  std::vector<uint8_t> expected;
  for (size_t size : {1u, 100u, 4079u, 4080u, 4081u, 10000u, 3u}) {
    auto chunk = pattern(size, static_cast<uint8_t>(size));
    expected.insert(expected.end(), chunk.begin(), chunk.end());
    ASSERT_TRUE(q.append(pool, chunk));
  }
  EXPECT_EQ(q.size(), expected.size());
  std::vector<uint8_t> copy(q.size());
  q.copy_to(copy);
  EXPECT_EQ(copy, expected);
  EXPECT_EQ(drain_all(q, pool, 333), expected);
  EXPECT_EQ(pool.blocks_in_use(), 0u);
}

TEST(ByteQueue, AppendIsAllOrNothingAtThePoolCap) {
  BlockPool pool(2, 2);
  ByteQueue q;
  ASSERT_TRUE(q.append(pool, pattern(100, 1)));
  EXPECT_FALSE(q.append(pool, pattern(Block::capacity * 2, 2)));  // needs 2 more blocks
  EXPECT_EQ(q.size(), 100u);
  EXPECT_EQ(pool.blocks_in_use(), 1u);
  EXPECT_EQ(pool.exhausted_count(), 1u);
  ASSERT_TRUE(q.append(pool, pattern(Block::capacity, 3)));  // fills the rest + one block
  EXPECT_EQ(pool.blocks_in_use(), 2u);
  q.clear(pool);
  EXPECT_EQ(pool.blocks_in_use(), 0u);
}

TEST(ByteQueue, ReserveAndCommitWriteInPlace) {
  BlockPool pool(4, 4);
  ByteQueue q;
  uint8_t* p = q.reserve(pool, 5);
  ASSERT_NE(p, nullptr);
  std::memcpy(p, "hello", 5);
  q.commit(5);
  EXPECT_EQ(q.size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(q.front().data()), q.front().size()), "hello");
  EXPECT_EQ(q.reserve(pool, Block::capacity + 1), nullptr);
  q.clear(pool);
}

TEST(ByteQueue, GatherNamesTheReadableRunOfEachBlockInOrder) {
  BlockPool pool(16, 16);
  ByteQueue q;
  iovec vectors[8];
  EXPECT_EQ(q.gather(vectors), 0u);
  const auto bytes = pattern(3 * Block::capacity + 10, 3);
  ASSERT_TRUE(q.append(pool, bytes));
  q.consume(pool, 7);  // the first run starts part-way into its block
  ASSERT_EQ(q.gather(vectors), 4u);
  std::vector<uint8_t> joined;
  for (const iovec& v : vectors | std::views::take(4)) {
    const auto* p = static_cast<const uint8_t*>(v.iov_base);
    joined.insert(joined.end(), p, p + v.iov_len);
  }
  EXPECT_TRUE(joined == std::vector<uint8_t>(bytes.begin() + 7, bytes.end()));
  // At most as many as asked for: the first ones.
  iovec two[2];
  ASSERT_EQ(q.gather(two), 2u);
  EXPECT_EQ(two[0].iov_base, vectors[0].iov_base);
  EXPECT_EQ(two[1].iov_len, Block::capacity);
  // A reserved tail block not yet committed holds nothing to send.
  q.clear(pool);
  ASSERT_TRUE(q.append(pool, pattern(Block::capacity, 1)));
  ASSERT_NE(q.reserve(pool, 10), nullptr);
  EXPECT_EQ(q.gather(vectors), 1u);
  q.clear(pool);
}

TEST(BlockPool, KeepsAtMostKeepFreeBlocks) {
  BlockPool pool(100, 3);
  std::vector<Block*> taken;
  for (int i = 0; i < 10; ++i) taken.push_back(pool.take());
  EXPECT_EQ(pool.blocks_in_use(), 10u);
  for (Block* b : taken) pool.give(b);
  EXPECT_EQ(pool.blocks_in_use(), 0u);
  EXPECT_EQ(pool.blocks_free(), 3u);
}

}  // namespace
}  // namespace mf
