#include "common/base/keyed_hash.h"

#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/base/os_random.h"

namespace mf {
namespace {

struct SipState {
  uint64_t v0, v1, v2, v3;
  void round() {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
  }
};

uint64_t load_le64(const char* p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>(p[i]);
  return value;
}

struct KeyHolder {
  SipKey key;
  std::string error;
  KeyHolder() {
    uint8_t bytes[16];
    if (auto ok = fill_os_random(bytes); !ok) {
      error = ok.error();
      return;
    }
    std::memcpy(&key.k0, bytes, 8);
    std::memcpy(&key.k1, bytes + 8, 8);
  }
};

const KeyHolder& holder() {
  static const KeyHolder instance;
  return instance;
}

}  // namespace

template <int CompressionRounds, int FinalizationRounds>
uint64_t siphash(const SipKey& key, std::string_view data) {
  SipState s{key.k0 ^ 0x736f6d6570736575ull, key.k1 ^ 0x646f72616e646f6dull, key.k0 ^ 0x6c7967656e657261ull,
             key.k1 ^ 0x7465646279746573ull};
  const char* p = data.data();
  size_t n = data.size();
  size_t whole = n & ~size_t{7};
  for (size_t i = 0; i < whole; i += 8) {
    uint64_t m = load_le64(p + i);
    s.v3 ^= m;
    for (int r = 0; r < CompressionRounds; ++r) s.round();
    s.v0 ^= m;
  }
  // The last block: the remaining bytes, little-endian, length in the top byte.
  uint64_t last = static_cast<uint64_t>(n & 0xff) << 56;
  for (size_t i = 0; i < (n & 7); ++i) last |= static_cast<uint64_t>(static_cast<uint8_t>(p[whole + i])) << (8 * i);
  s.v3 ^= last;
  for (int r = 0; r < CompressionRounds; ++r) s.round();
  s.v0 ^= last;
  s.v2 ^= 0xff;
  for (int r = 0; r < FinalizationRounds; ++r) s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

template uint64_t siphash<1, 3>(const SipKey&, std::string_view);
template uint64_t siphash<2, 4>(const SipKey&, std::string_view);

std::expected<void, std::string> init_process_hash_key() {
  if (!holder().error.empty()) return std::unexpected("hash key: " + holder().error);
  return {};
}

const SipKey& process_hash_key() {
  const KeyHolder& h = holder();
  if (!h.error.empty()) {
    // Start-up checked this already (init_process_hash_key); a process that
    // skipped the check must not run with a guessable key.
    std::fprintf(stderr, "hash key: %s\n", h.error.c_str());
    std::abort();
  }
  return h.key;
}

}  // namespace mf
