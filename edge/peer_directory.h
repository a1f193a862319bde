#pragma once
// Who holds which peerId on this edge. One shard owns the entries of the
// peerIds that hash to it; every join claims its peerId here first, so
// uniqueness and `session` takeover (docs/protocol.md section 5) are decided in one place
// without locks. Pure: no IO, no clock.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/base/transparent_string_hash.h"

namespace mf::edge {

// A connection somewhere on this edge: shard and socket slot + generation.
struct PeerLocation {
  uint16_t shard = 0;
  uint32_t slot = UINT32_MAX;
  uint32_t generation = 0;
  friend bool operator==(const PeerLocation&, const PeerLocation&) = default;
};

struct DirectoryEntry {
  PeerLocation location;
  // The join sequence of the connection's claim that granted the entry last:
  // a release names it, so a late undo of an older claim (a join abandoned
  // while its reply was in flight) never frees a newer claim of the same
  // connection (docs/architecture.md, "Obligations").
  uint32_t sequence = 0;
  std::string stream_id;
  std::string session;  // the identity's secret: a join that presents it takes the peerId over
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
};

class PeerDirectory {
 public:
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
  const DirectoryEntry* find(std::string_view peer_id) const;
  size_t size() const { return entries_.size(); }

 private:
  std::unordered_map<std::string, DirectoryEntry, TransparentStringHash, std::equal_to<>> entries_;
};

}  // namespace mf::edge
