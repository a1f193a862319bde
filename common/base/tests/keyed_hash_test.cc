#include "common/base/keyed_hash.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "common/base/os_random.h"

namespace mf {
namespace {

SipKey paper_key() {
  // Key bytes 00 01 .. 0f, read little-endian (the paper's appendix A).
  return SipKey{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
}

std::string counting_bytes(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i));
  return s;
}

TEST(KeyedHash, SipHash24MatchesThePapersVectors) {
  // Appendix A: the 15-byte message 00 .. 0e.
  EXPECT_EQ((siphash<2, 4>(paper_key(), counting_bytes(15))), 0xa129ca6149be45e5ull);
  // The reference implementation's vectors for the empty and 8-byte inputs.
  EXPECT_EQ((siphash<2, 4>(paper_key(), "")), 0x726fdb47dd0e0e31ull);
  EXPECT_EQ((siphash<2, 4>(paper_key(), counting_bytes(8))), 0x93f5f5799a932462ull);
}

TEST(KeyedHash, TheKeyChangesTheHash) {
  SipKey a = paper_key();
  SipKey b = a;
  b.k1 ^= 1;
  int same = 0;
  for (int i = 0; i < 64; ++i) {
    std::string text = "stream-" + std::to_string(i);
    if (siphash13(a, text) == siphash13(b, text)) same++;
  }
  EXPECT_EQ(same, 0);
}

TEST(KeyedHash, TheProcessKeyComesFromTheOs) {
  ASSERT_TRUE(init_process_hash_key().has_value());
  const SipKey& key = process_hash_key();
  EXPECT_FALSE(key.k0 == 0 && key.k1 == 0);
  EXPECT_EQ(&key, &process_hash_key());  // one key per process
  EXPECT_EQ(keyed_hash("peer-1"), siphash13(key, "peer-1"));
  // Not the unkeyed hash: a client cannot precompute it.
  EXPECT_NE(keyed_hash("peer-1"), siphash13(SipKey{}, "peer-1"));
}

// Which of n shards a string lands on depends on the key: the same strings
// spread differently under two keys (so no precomputed set of names piles
// onto one shard in every process).
TEST(KeyedHash, ShardChoiceChangesWithTheKey) {
  SipKey a{1, 2};
  SipKey b{3, 4};
  int moved = 0;
  for (int i = 0; i < 200; ++i) {
    std::string text = "s" + std::to_string(i);
    if (siphash13(a, text) % 16 != siphash13(b, text) % 16) moved++;
  }
  // 15/16 move on average; far fewer would mean the key barely matters.
  EXPECT_GT(moved, 150);
}

TEST(OsRandom, DrawsDifferFromEachOther) {
  std::set<uint64_t> seen;
  for (int i = 0; i < 32; ++i) {
    auto value = os_random_u64();
    ASSERT_TRUE(value.has_value()) << value.error();
    seen.insert(*value);
  }
  EXPECT_EQ(seen.size(), 32u);
}

}  // namespace
}  // namespace mf
