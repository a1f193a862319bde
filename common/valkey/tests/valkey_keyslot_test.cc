// Expected slots were read from redis-server 7.0 in cluster mode
// (CLUSTER KEYSLOT <key>), the reference implementation.
#include "common/valkey/valkey_keyslot.h"

#include <gtest/gtest.h>

#include <string>

namespace mf::valkey {
namespace {

TEST(ValkeyKeyslot, Crc16IsTheXmodemVariant) {
  EXPECT_EQ(crc16("123456789"), 0x31C3);  // the check value of CRC-16/XMODEM
  EXPECT_EQ(crc16(""), 0);
}

TEST(ValkeyKeyslot, SlotsAsRedisComputesThem) {
  EXPECT_EQ(key_slot("123456789"), 12739);
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot("a"), 15495);
  EXPECT_EQ(key_slot(""), 0);
  EXPECT_EQ(key_slot("mf:edges"), 11541);
  EXPECT_EQ(key_slot("mf:{p:peer-1}:own"), 8431);
  EXPECT_EQ(key_slot("mf:{s:live}:idx:r1"), 3290);
  EXPECT_EQ(key_slot("mf:{e:edge-a}:sig:0"), 5983);
  EXPECT_EQ(key_slot(std::string("\0\xff{x}", 5)), key_slot("x"));
}

TEST(ValkeyKeyslot, HashTags) {
  // The first '{' and the first '}' after it, with something between.
  EXPECT_EQ(hashed_part("{user1000}.following"), "user1000");
  EXPECT_EQ(key_slot("{user1000}.following"), 3443);
  EXPECT_EQ(key_slot("{user1000}.followers"), 3443);
  EXPECT_EQ(hashed_part("foo{}{bar}"), "foo{}{bar}");  // empty tag: the whole key
  EXPECT_EQ(key_slot("foo{}{bar}"), 8363);
  EXPECT_EQ(hashed_part("foo{{bar}}zap"), "{bar");
  EXPECT_EQ(key_slot("foo{{bar}}zap"), 4015);
  EXPECT_EQ(hashed_part("foo{bar}{zap}"), "bar");
  EXPECT_EQ(key_slot("foo{bar}{zap}"), 5061);
  EXPECT_EQ(hashed_part("{bar"), "{bar");  // no '}': the whole key
  EXPECT_EQ(hashed_part("bar}"), "bar}");
  // One stream's swarm keys share a slot whatever the rendition.
  EXPECT_EQ(key_slot("mf:{s:live}:idx:r1"), key_slot("mf:{s:live}:rec:720p"));
  EXPECT_EQ(key_slot("mf:{s:live}:idx:r1"), key_slot("mf:{s:live}:viewers"));
}

TEST(ValkeyKeyslot, EverySlotIsInRange) {
  for (uint32_t i = 0; i < 100000; ++i) ASSERT_LT(key_slot("key:" + std::to_string(i)), cluster_slots);
}

}  // namespace
}  // namespace mf::valkey
