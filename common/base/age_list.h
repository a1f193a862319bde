#pragma once
// An intrusive list of nodes the caller owns, oldest first
// (common/base/intrusive_list.h): appending, moving a node to the newest
// end, removing any node and reading the oldest are O(1) and never
// allocate. A table whose entries all live for the same time from their
// last touch keeps them in one, so expiry pops from the oldest end instead
// of scanning the table (edge/tracker_swarms.h).
//
// Node derives from AgeLinks<Node>. A node must not move in memory while
// listed: keep nodes in containers with stable addresses (std::unordered_map
// values, SlotArray).
#include "common/base/intrusive_list.h"

namespace mf {

template <class Node>
using AgeLinks = IntrusiveLinks<Node*, nullptr>;

template <class Node>
class AgeList {
 public:
  // Appends `node` as the newest; a listed node moves there.
  void touch(Node& node) {
    if (links_of(&node).listed) {
      if (list_.newest() == &node) return;
      list_.remove(&node, links_of);
    }
    list_.push_newest(&node, links_of);
  }
  // Does nothing for a node that is not listed.
  void remove(Node& node) { list_.remove(&node, links_of); }
  Node* oldest() const { return list_.oldest(); }
  bool empty() const { return list_.empty(); }

 private:
  static AgeLinks<Node>& links_of(Node* node) { return *node; }
  IntrusiveList<Node*, nullptr> list_;
};

}  // namespace mf
