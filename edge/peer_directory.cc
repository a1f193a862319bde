#include "edge/peer_directory.h"

#include <openssl/crypto.h>

namespace mf::edge {
namespace {

// Sessions are secrets: compare without leaking how many bytes matched.
bool same_secret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

ClaimResult PeerDirectory::claim(std::string_view peer_id, PeerLocation who, uint32_t sequence, std::string_view stream_id,
                                 std::optional<std::string_view> offered_session, std::string_view fresh_session) {
  auto it = entries_.find(peer_id);
  if (it == entries_.end()) {
    auto [inserted, ok] =
        entries_.emplace(std::string(peer_id), DirectoryEntry{who, sequence, std::string(stream_id), std::string(fresh_session)});
    (void)ok;
    return ClaimResult{ClaimOutcome::claimed, inserted->second.session, {}};
  }
  DirectoryEntry& entry = it->second;
  if (entry.location == who) {
    entry.sequence = sequence;
    entry.stream_id.assign(stream_id);
    return ClaimResult{ClaimOutcome::same_holder, entry.session, {}};
  }
  if (offered_session && same_secret(*offered_session, entry.session)) {
    PeerLocation replaced = entry.location;
    entry.location = who;
    entry.sequence = sequence;
    entry.stream_id.assign(stream_id);
    // Rotated: a session that was presented once (and may have leaked with
    // the old connection) takes nothing over again.
    entry.session.assign(fresh_session);
    return ClaimResult{ClaimOutcome::taken_over, entry.session, replaced};
  }
  return ClaimResult{ClaimOutcome::taken, {}, entry.location};
}

bool PeerDirectory::release(std::string_view peer_id, PeerLocation who, uint32_t sequence) {
  auto it = entries_.find(peer_id);
  if (it == entries_.end() || !(it->second.location == who) || it->second.sequence != sequence) return false;
  entries_.erase(it);
  return true;
}

const DirectoryEntry* PeerDirectory::find(std::string_view peer_id) const {
  auto it = entries_.find(peer_id);
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace mf::edge
