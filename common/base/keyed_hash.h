#pragma once
// SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012)
// over strings a client chooses: peerIds, streamIds, renditions. Keyed with a
// per-process secret from the OS, so nobody outside the process can compute
// which strings collide in a table or which shard a string lands on (a client
// cannot pile every stream onto one shard, nor make a bucket chain long).
// SipHash-1-3 (one compression round, three finalization rounds) is what the
// tables use; the round counts are parameters so the unit test can check the
// implementation against the paper's SipHash-2-4 test vector.
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace mf {

struct SipKey {
  uint64_t k0 = 0, k1 = 0;
};

template <int CompressionRounds, int FinalizationRounds>
uint64_t siphash(const SipKey& key, std::string_view data);

inline uint64_t siphash13(const SipKey& key, std::string_view data) { return siphash<1, 3>(key, data); }

// The process's key: drawn from the OS on first use (thread-safe). Start-up
// calls init_process_hash_key() to fail with one line if the OS has no
// randomness to give; a later first use that fails aborts.
std::expected<void, std::string> init_process_hash_key();
const SipKey& process_hash_key();

// SipHash-1-3 of `text` under the process key.
inline uint64_t keyed_hash(std::string_view text) { return siphash13(process_hash_key(), text); }

}  // namespace mf
