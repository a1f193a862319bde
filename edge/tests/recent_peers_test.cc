#include "edge/recent_peers.h"

#include <gtest/gtest.h>

#include <string>

namespace mf::edge {
namespace {

TEST(RecentPeers, RemembersByExactTextAndRefreshes) {
  RecentPeers recent;
  EXPECT_EQ(recent.find("p1"), nullptr);
  recent.remember("p1", DirectoryHandle{1, 5, 2});
  ASSERT_NE(recent.find("p1"), nullptr);
  EXPECT_EQ(*recent.find("p1"), (DirectoryHandle{1, 5, 2}));
  EXPECT_EQ(recent.find("p"), nullptr);    // a prefix is another peerId
  EXPECT_EQ(recent.find("p1 "), nullptr);  // so is a longer text
  recent.remember("p1", DirectoryHandle{1, 5, 3});  // claimed again: the new handle
  EXPECT_EQ(*recent.find("p1"), (DirectoryHandle{1, 5, 3}));
}

TEST(RecentPeers, AnInvalidHandleIsNotRemembered) {
  RecentPeers recent;
  recent.remember("p1", DirectoryHandle{});
  EXPECT_EQ(recent.find("p1"), nullptr);
  // Nor does an empty entry match an empty text.
  EXPECT_EQ(recent.find(""), nullptr);
}

TEST(RecentPeers, TheOldestIsReplacedInTurn) {
  RecentPeers recent;
  for (uint32_t i = 0; i < RecentPeers::capacity; ++i)
    recent.remember("peer-" + std::to_string(i), DirectoryHandle{0, i, 1});
  for (uint32_t i = 0; i < RecentPeers::capacity; ++i) ASSERT_NE(recent.find("peer-" + std::to_string(i)), nullptr);
  recent.remember("newcomer", DirectoryHandle{0, 99, 1});
  EXPECT_EQ(recent.find("peer-0"), nullptr);
  EXPECT_NE(recent.find("peer-1"), nullptr);
  EXPECT_EQ(*recent.find("newcomer"), (DirectoryHandle{0, 99, 1}));
}

// The common case, a reply's sender remembered already under the same
// handle: the entry stays as it is and no other entry is taken for it.
TEST(RecentPeers, RememberingTheSameHandleAgainTakesNoEntry) {
  RecentPeers recent;
  for (uint32_t i = 0; i < RecentPeers::capacity; ++i)
    recent.remember("peer-" + std::to_string(i), DirectoryHandle{0, i, 1});
  for (int round = 0; round < 10; ++round) recent.remember("peer-2", DirectoryHandle{0, 2, 1});
  for (uint32_t i = 0; i < RecentPeers::capacity; ++i)
    EXPECT_EQ(*recent.find("peer-" + std::to_string(i)), (DirectoryHandle{0, i, 1}));
  // The next newcomer still replaces the oldest, peer-0.
  recent.remember("newcomer", DirectoryHandle{0, 99, 1});
  EXPECT_EQ(recent.find("peer-0"), nullptr);
  EXPECT_NE(recent.find("peer-1"), nullptr);
}

TEST(RecentPeers, ClearForgetsEverything) {
  RecentPeers recent;
  recent.remember("p1", DirectoryHandle{0, 1, 1});
  recent.remember("p2", DirectoryHandle{0, 2, 1});
  recent.clear();
  EXPECT_EQ(recent.find("p1"), nullptr);
  EXPECT_EQ(recent.find("p2"), nullptr);
}

}  // namespace
}  // namespace mf::edge
