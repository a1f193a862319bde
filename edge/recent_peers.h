#pragma once
// The directory handles of the peers that signalled one connection lately,
// by peerId: a reply to one of them (an answer, ICE candidates) goes to the
// target's directory shard with its handle, so no shard hashes the peerId
// (docs/architecture.md, "The relay path"). A hint only: the directory
// shard checks the handle's generation and text and falls back to a lookup
// when it is stale. A few entries, compared by text, replaced in turn; their
// strings keep their capacity, so remembering allocates nothing once the
// connection's slot has seen peerIds as long. Pure: no IO.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/same_bytes.h"
#include "edge/peer_directory.h"

namespace mf::edge {

class RecentPeers {
 public:
  static constexpr size_t capacity = 4;

  // The handle remembered for `peer_id`, or null.
  const DirectoryHandle* find(std::string_view peer_id) const {
    for (const Entry& e : entries_)
      if (e.handle.valid() && same_bytes(e.peer_id, peer_id)) return &e.handle;
    return nullptr;
  }
  // Remembers (or refreshes) `peer_id`'s handle; an invalid handle is ignored.
  void remember(std::string_view peer_id, const DirectoryHandle& handle) {
    if (!handle.valid()) return;
    for (Entry& e : entries_) {
      // Mostly the peer is remembered already, under this very handle: a
      // handle names one claim of one peerId, so an equal handle needs no
      // text (and a text is in at most one entry).
      if (e.handle == handle) return;
      if (e.handle.valid() && same_bytes(e.peer_id, peer_id)) {
        e.handle = handle;
        return;
      }
    }
    Entry& e = entries_[next_];
    next_ = static_cast<uint8_t>((next_ + 1) % capacity);
    e.peer_id.assign(peer_id);
    e.handle = handle;
  }
  // Forgets every entry (a new connection in the slot).
  void clear() {
    for (Entry& e : entries_) e.handle = DirectoryHandle{};
    next_ = 0;
  }

 private:
  struct Entry {
    std::string peer_id;
    DirectoryHandle handle;  // invalid: empty
  };
  std::array<Entry, capacity> entries_{};
  uint8_t next_ = 0;
};

}  // namespace mf::edge
