// AgeList: oldest first, touch moves a node to the newest end, any node
// removed in O(1), removing an unlisted node is harmless, and the list
// empties.
#include "common/base/age_list.h"

#include <gtest/gtest.h>

#include <vector>

namespace mf {
namespace {

struct Node : AgeLinks<Node> {
  int value = 0;
};

std::vector<int> order(const AgeList<Node>& list) {
  std::vector<int> out;
  for (const Node* n = list.oldest(); n != nullptr; n = n->newer) out.push_back(n->value);
  return out;
}

TEST(AgeList, KeepsTouchOrderAndRemovesAnyNode) {
  std::vector<Node> nodes(5);
  for (int i = 0; i < 5; ++i) nodes[i].value = i;
  AgeList<Node> list;
  EXPECT_TRUE(list.empty());
  for (int i : {3, 1, 4, 0}) list.touch(nodes[i]);
  EXPECT_EQ(order(list), (std::vector<int>{3, 1, 4, 0}));
  list.touch(nodes[1]);  // middle to newest
  EXPECT_EQ(order(list), (std::vector<int>{3, 4, 0, 1}));
  list.touch(nodes[1]);  // already newest
  list.touch(nodes[3]);  // oldest to newest
  EXPECT_EQ(order(list), (std::vector<int>{4, 0, 1, 3}));
  list.remove(nodes[0]);  // middle
  list.remove(nodes[2]);  // never listed: nothing happens
  list.remove(nodes[0]);  // twice: nothing happens
  EXPECT_EQ(order(list), (std::vector<int>{4, 1, 3}));
  list.remove(nodes[4]);  // oldest
  list.remove(nodes[3]);  // newest
  EXPECT_EQ(order(list), (std::vector<int>{1}));
  list.remove(nodes[1]);
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.oldest(), nullptr);
  list.touch(nodes[2]);  // usable again once empty
  EXPECT_EQ(order(list), (std::vector<int>{2}));
  EXPECT_FALSE(nodes[0].listed);
  EXPECT_TRUE(nodes[2].listed);
}

}  // namespace
}  // namespace mf
