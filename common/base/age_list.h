#pragma once
// An intrusive doubly linked list of nodes the caller owns, oldest first:
// appending, moving a node to the newest end, removing any node and reading
// the oldest are O(1) and never allocate. A table whose entries all live for
// the same time from their last touch keeps them in one, so expiry pops from
// the oldest end instead of scanning the table (edge/tracker_swarms.h).
//
// Node must have the members `Node* older; Node* newer; bool listed;`
// (AgeLinks<Node> gives them). A node must not move in memory while listed:
// keep nodes in containers with stable addresses (std::unordered_map values,
// SlotArray).

namespace mf {

template <class Node>
struct AgeLinks {
  Node* older = nullptr;
  Node* newer = nullptr;
  bool listed = false;
};

template <class Node>
class AgeList {
 public:
  // Appends `node` as the newest; a listed node moves there.
  void touch(Node& node) {
    if (node.listed) {
      if (newest_ == &node) return;
      remove(node);
    }
    node.listed = true;
    node.newer = nullptr;
    node.older = newest_;
    if (newest_ != nullptr) newest_->newer = &node;
    else oldest_ = &node;
    newest_ = &node;
  }

  // Does nothing for a node that is not listed.
  void remove(Node& node) {
    if (!node.listed) return;
    node.listed = false;
    if (node.older != nullptr) node.older->newer = node.newer;
    else oldest_ = node.newer;
    if (node.newer != nullptr) node.newer->older = node.older;
    else newest_ = node.older;
    node.older = node.newer = nullptr;
  }

  Node* oldest() const { return oldest_; }
  bool empty() const { return oldest_ == nullptr; }

 private:
  Node* oldest_ = nullptr;
  Node* newest_ = nullptr;
};

}  // namespace mf
