#pragma once
// An intrusive doubly linked list, oldest first, of members the caller owns:
// appending as the newest, removing any member and reading the oldest are
// O(1) and never allocate. A member is named by a Handle (a slot index into
// the caller's table, or a pointer to a node that does not move while
// listed) and carries its own IntrusiveLinks, which `links_of(handle)`
// returns; `null` names no member. SlotFifo (slot indices) and AgeList
// (pointers) are the two ways this project uses it.
namespace mf {

template <class Handle, Handle null>
struct IntrusiveLinks {
  Handle older = null, newer = null;
  bool listed = false;
};

template <class Handle, Handle null>
class IntrusiveList {
 public:
  static constexpr Handle none = null;
  using Links = IntrusiveLinks<Handle, null>;

  // Appends `member`, which must not be listed, as the newest.
  template <class LinksOf>
  void push_newest(Handle member, LinksOf&& links_of) {
    Links& links = links_of(member);
    links.listed = true;
    links.newer = none;
    links.older = newest_;
    if (newest_ != none) links_of(newest_).newer = member;
    else oldest_ = member;
    newest_ = member;
  }

  // Does nothing for a member that is not listed.
  template <class LinksOf>
  void remove(Handle member, LinksOf&& links_of) {
    Links& links = links_of(member);
    if (!links.listed) return;
    links.listed = false;
    if (links.older != none) links_of(links.older).newer = links.newer;
    else oldest_ = links.newer;
    if (links.newer != none) links_of(links.newer).older = links.older;
    else newest_ = links.older;
    links.older = links.newer = none;
  }

  Handle oldest() const { return oldest_; }
  Handle newest() const { return newest_; }
  bool empty() const { return oldest_ == none; }

 private:
  Handle oldest_ = none, newest_ = none;
};

}  // namespace mf
