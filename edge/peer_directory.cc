#include "edge/peer_directory.h"

#include <openssl/crypto.h>

#include "common/base/keyed_hash.h"

namespace mf::edge {
namespace {

// Sessions are secrets: compare without leaking how many bytes matched.
bool same_secret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

constexpr size_t initial_buckets = 16;
constexpr int initial_shift = 60;  // 64 - log2(initial_buckets)

}  // namespace

PeerDirectory::PeerDirectory(uint16_t shard) : shard_(shard), buckets_(initial_buckets), shift_(initial_shift) {}

uint64_t PeerDirectory::hash_of(std::string_view peer_id) { return keyed_hash(peer_id); }

size_t PeerDirectory::find_bucket(std::string_view peer_id, uint64_t hash) const {
  const size_t mask = buckets_.size() - 1;
  const uint32_t high = static_cast<uint32_t>(hash >> 32);
  for (size_t i = bucket_of(hash);; i = (i + 1) & mask) {
    const Bucket& b = buckets_[i];
    if (b.slot_plus_one == 0) return SIZE_MAX;
    if (b.hash_high == high && same_bytes(slots_[b.slot_plus_one - 1].entry.peer_id, peer_id)) return i;
  }
}

void PeerDirectory::insert_bucket(uint32_t slot, uint64_t hash) {
  const size_t mask = buckets_.size() - 1;
  size_t i = bucket_of(hash);
  while (buckets_[i].slot_plus_one != 0) i = (i + 1) & mask;
  buckets_[i] = Bucket{slot + 1, static_cast<uint32_t>(hash >> 32)};
}

// Backward-shift deletion: the buckets after the hole that would no longer
// be reachable from their home bucket move into it, so probes never need
// tombstones.
void PeerDirectory::erase_bucket(size_t hole) {
  const size_t mask = buckets_.size() - 1;
  size_t i = hole;
  for (;;) {
    i = (i + 1) & mask;
    const Bucket& b = buckets_[i];
    if (b.slot_plus_one == 0) break;
    const size_t home = bucket_of(slots_[b.slot_plus_one - 1].hash);
    // Moves if its home is not cyclically within (hole, i].
    const bool stays = hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
    if (stays) continue;
    buckets_[hole] = b;
    hole = i;
  }
  buckets_[hole] = Bucket{};
}

void PeerDirectory::grow() {
  std::vector<Bucket> old = std::move(buckets_);
  buckets_.assign(old.size() * 2, Bucket{});
  shift_--;
  for (const Bucket& b : old)
    if (b.slot_plus_one != 0) insert_bucket(b.slot_plus_one - 1, slots_[b.slot_plus_one - 1].hash);
}

ClaimResult PeerDirectory::claim(std::string_view peer_id, PeerLocation who, uint32_t sequence, std::string_view stream_id,
                                 std::optional<std::string_view> offered_session, std::string_view fresh_session) {
  const uint64_t hash = hash_of(peer_id);
  const size_t bucket = find_bucket(peer_id, hash);
  if (bucket == SIZE_MAX) {
    if ((size_ + 1) * 2 > buckets_.size()) grow();
    uint32_t slot = free_;
    if (slot == UINT32_MAX) {
      slot = static_cast<uint32_t>(slots_.size());
      slots_.emplace_back();
      slots_.back().entry.handle = DirectoryHandle{shard_, slot, 1};
    } else {
      free_ = slots_[slot].next_free;
    }
    Slot& s = slots_[slot];
    s.live = true;
    s.hash = hash;
    s.next_free = UINT32_MAX;
    DirectoryEntry& entry = s.entry;
    entry.peer_id.assign(peer_id);
    entry.location = who;
    entry.sequence = sequence;
    entry.stream_id.assign(stream_id);
    entry.session.assign(fresh_session);
    insert_bucket(slot, hash);
    size_++;
    return ClaimResult{ClaimOutcome::claimed, entry.session, {}, entry.handle};
  }
  DirectoryEntry& entry = slots_[buckets_[bucket].slot_plus_one - 1].entry;
  if (entry.location == who) {
    entry.sequence = sequence;
    entry.stream_id.assign(stream_id);
    return ClaimResult{ClaimOutcome::same_holder, entry.session, {}, entry.handle};
  }
  if (offered_session && same_secret(*offered_session, entry.session)) {
    PeerLocation replaced = entry.location;
    entry.location = who;
    entry.sequence = sequence;
    entry.stream_id.assign(stream_id);
    // Rotated: a session that was presented once (and may have leaked with
    // the old connection) takes nothing over again.
    entry.session.assign(fresh_session);
    return ClaimResult{ClaimOutcome::taken_over, entry.session, replaced, entry.handle};
  }
  return ClaimResult{ClaimOutcome::taken, {}, entry.location, {}};
}

bool PeerDirectory::release(std::string_view peer_id, PeerLocation who, uint32_t sequence) {
  const size_t bucket = find_bucket(peer_id, hash_of(peer_id));
  if (bucket == SIZE_MAX) return false;
  const uint32_t slot = buckets_[bucket].slot_plus_one - 1;
  Slot& s = slots_[slot];
  if (!(s.entry.location == who) || s.entry.sequence != sequence) return false;
  erase_bucket(bucket);
  s.live = false;
  // Every handle of this claim is stale from now on. The strings keep their
  // capacity for the slot's next claim.
  s.entry.handle.generation++;
  s.entry.session.clear();
  s.next_free = free_;
  free_ = slot;
  size_--;
  return true;
}

const DirectoryEntry* PeerDirectory::find(std::string_view peer_id, uint64_t hash) const {
  const size_t bucket = find_bucket(peer_id, hash);
  return bucket == SIZE_MAX ? nullptr : &slots_[buckets_[bucket].slot_plus_one - 1].entry;
}

}  // namespace mf::edge
