#pragma once
// An intrusive first-in-first-out list of slots (indices into a table the
// caller owns), oldest first: appending, removing any member and finding the
// oldest are O(1) and never allocate. Servers keep their connections that are
// not yet admitted in one, so that when the descriptor table nears full the
// oldest of them can be closed to keep a reserve for admitted clients
// (docs/security.md, "Connection admission"). Each member carries its own
// SlotFifo::Links; `links_of(slot)` returns them.
#include <cstdint>

namespace mf {

class SlotFifo {
 public:
  static constexpr uint32_t none = UINT32_MAX;
  struct Links {
    uint32_t older = none, newer = none;
    bool queued = false;
  };

  template <class LinksOf>
  void push_newest(uint32_t slot, LinksOf&& links_of) {
    Links& links = links_of(slot);
    links.queued = true;
    links.newer = none;
    links.older = newest_;
    if (newest_ != none) links_of(newest_).newer = slot;
    else oldest_ = slot;
    newest_ = slot;
  }

  // Does nothing for a slot that is not in the list.
  template <class LinksOf>
  void remove(uint32_t slot, LinksOf&& links_of) {
    Links& links = links_of(slot);
    if (!links.queued) return;
    links.queued = false;
    if (links.older != none) links_of(links.older).newer = links.newer;
    else oldest_ = links.newer;
    if (links.newer != none) links_of(links.newer).older = links.older;
    else newest_ = links.older;
    links.older = links.newer = none;
  }

  uint32_t oldest() const { return oldest_; }

 private:
  uint32_t oldest_ = none, newest_ = none;
};

}  // namespace mf
