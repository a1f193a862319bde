#pragma once
// Who holds which peerId on this edge. One shard owns the entries of the
// peerIds that hash to it; every join claims its peerId here first, so
// uniqueness and `session` takeover (docs/protocol.md section 5) are decided in one place
// without locks. Pure: no IO, no clock.
//
// Entries live in slots; a slot's generation moves on every release, so a
// DirectoryHandle (shard, slot, generation) names one claim of one peerId
// and goes stale when it is given back. The relay carries handles between
// shards and resolves them with an array index, a generation check and a
// comparison of the text (docs/architecture.md, "The relay path"); the text
// is hashed at most once per signal, on the sender's shard, and the hash
// travels with it (find with a precomputed hash).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/same_bytes.h"

namespace mf::edge {

// A connection somewhere on this edge: shard and socket slot + generation.
struct PeerLocation {
  uint16_t shard = 0;
  uint32_t slot = UINT32_MAX;
  uint32_t generation = 0;
  friend bool operator==(const PeerLocation&, const PeerLocation&) = default;
};

// A claim of a peerId in the directory of shard `shard`. slot UINT32_MAX:
// none. The shard of a valid handle is always the directory shard of its
// peerId's text.
struct DirectoryHandle {
  uint16_t shard = 0;
  uint32_t slot = UINT32_MAX;
  uint32_t generation = 0;
  bool valid() const { return slot != UINT32_MAX; }
  friend bool operator==(const DirectoryHandle&, const DirectoryHandle&) = default;
};

struct DirectoryEntry {
  std::string peer_id;
  PeerLocation location;
  // The join sequence of the connection's claim that granted the entry last:
  // a release names it, so a late undo of an older claim (a join abandoned
  // while its reply was in flight) never frees a newer claim of the same
  // connection (docs/architecture.md, "Obligations").
  uint32_t sequence = 0;
  std::string stream_id;
  std::string session;  // the identity's secret: a join that presents it takes the peerId over
  DirectoryHandle handle;
};

enum class ClaimOutcome : uint8_t {
  claimed,      // the peerId was free: `session` is the fresh one
  same_holder,  // the claiming connection already held it (a switch)
  taken_over,   // the offered session matched: the old holder must close with 4001; `session` is fresh
  taken,        // held by another live connection without the right session
};

struct ClaimResult {
  ClaimOutcome outcome = ClaimOutcome::taken;
  std::string_view session;   // the identity's session after the claim (valid until the next change)
  PeerLocation replaced;      // taken_over: the connection to close
  DirectoryHandle handle;     // the entry's, unless taken
};

class PeerDirectory {
 public:
  // `shard`: the shard that owns this directory, named in its handles.
  explicit PeerDirectory(uint16_t shard = 0);

  // The hash that places a peerId (its directory shard is hash % shards)
  // and finds it here: SipHash under the process key (common/base/keyed_hash.h).
  static uint64_t hash_of(std::string_view peer_id);

  // `fresh_session` becomes the session when the peerId was free, and on a
  // takeover (the session rotates: the new `joined` carries it, the one
  // presented no longer works).
  // `sequence` names this claim (the claiming connection's join sequence).
  ClaimResult claim(std::string_view peer_id, PeerLocation who, uint32_t sequence, std::string_view stream_id,
                    std::optional<std::string_view> offered_session, std::string_view fresh_session);
  // Frees the peerId only if `who` still holds it through the claim named
  // `sequence` (a replaced connection's late release must not free its
  // successor's identity, nor an abandoned claim's undo a newer claim).
  bool release(std::string_view peer_id, PeerLocation who, uint32_t sequence);
  // Pointers are valid until the next claim or release.
  const DirectoryEntry* find(std::string_view peer_id) const { return find(peer_id, hash_of(peer_id)); }
  // `hash` must be hash_of(peer_id).
  const DirectoryEntry* find(std::string_view peer_id, uint64_t hash) const;
  // The entry `handle` names if it is still that claim of `peer_id`: null
  // for another shard's handle, a slot out of range, a free slot, a stale
  // generation, or another text in the slot. No hashing.
  // Inline: the relay resolves a handle for nearly every signal.
  const DirectoryEntry* resolve(const DirectoryHandle& handle, std::string_view peer_id) const {
    if (handle.shard != shard_ || handle.slot >= slots_.size()) return nullptr;
    const Slot& s = slots_[handle.slot];
    if (!s.live || s.entry.handle.generation != handle.generation || !same_bytes(s.entry.peer_id, peer_id))
      return nullptr;
    return &s.entry;
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    DirectoryEntry entry;
    uint64_t hash = 0;
    bool live = false;
    uint32_t next_free = UINT32_MAX;
  };
  // Open addressing, linear probing, at most half full: each bucket holds
  // slot + 1 (0: empty) and the top 32 bits of the hash, so a probe compares
  // texts only when those match.
  struct Bucket {
    uint32_t slot_plus_one = 0;
    uint32_t hash_high = 0;
  };
  size_t bucket_of(uint64_t hash) const { return static_cast<size_t>(hash >> shift_); }
  // The bucket holding `peer_id`, or SIZE_MAX.
  size_t find_bucket(std::string_view peer_id, uint64_t hash) const;
  void insert_bucket(uint32_t slot, uint64_t hash);
  void erase_bucket(size_t bucket);
  void grow();

  uint16_t shard_;
  std::vector<Slot> slots_;
  uint32_t free_ = UINT32_MAX;
  size_t size_ = 0;
  std::vector<Bucket> buckets_;
  int shift_ = 64;  // 64 - log2(buckets_.size())
};

}  // namespace mf::edge
