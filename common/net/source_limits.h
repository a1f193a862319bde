#pragma once
// Per-source-address admission: how many connections one address holds
// open and how fast it opens new ones. Pure state of the shard that owns an
// address (a process hashes each address to one shard, so a limit holds
// process-wide while every table stays shard-local); the caller passes the
// time and the limits.
#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "common/base/keyed_hash.h"
#include "common/codec/proxy_protocol.h"
#include "common/net/token_bucket.h"

namespace mf {

// How many leading bits of an address name one source. One subscriber
// usually holds a whole IPv6 /64 (RFC 6177), so counting per /128 would let
// one host spread its connections over 2^64 "sources"; see docs/security.md.
struct SourcePrefixes {
  uint8_t ipv4 = 32;   // 0..32
  uint8_t ipv6 = 64;   // 0..128
};

struct SourceKey {
  uint8_t family = 0;  // proxy::Family
  std::array<uint8_t, 16> address{};
  bool operator==(const SourceKey&) const = default;

  // The source of `endpoint`: its address cut to the family's prefix (the
  // bits past it are zero). An IPv4-mapped IPv6 address (::ffff:a.b.c.d, a
  // dual-stack listener) is the IPv4 source a.b.c.d.
  static SourceKey of(const proxy::Endpoint& endpoint, const SourcePrefixes& prefixes = {}) {
    SourceKey key{static_cast<uint8_t>(endpoint.family), endpoint.address};
    uint32_t prefix = prefixes.ipv6;
    if (endpoint.family == proxy::Family::ipv6 && is_v4_mapped(endpoint.address)) {
      key.family = static_cast<uint8_t>(proxy::Family::ipv4);
      key.address = {};
      for (size_t i = 0; i < 4; ++i) key.address[i] = endpoint.address[12 + i];
    }
    if (key.family == static_cast<uint8_t>(proxy::Family::ipv4)) prefix = prefixes.ipv4 > 32 ? 32 : prefixes.ipv4;
    if (prefix > 128) prefix = 128;
    for (size_t i = 0; i < key.address.size(); ++i) {
      uint32_t bit = static_cast<uint32_t>(i) * 8;
      if (bit + 8 <= prefix) continue;
      key.address[i] = bit >= prefix ? 0 : static_cast<uint8_t>(key.address[i] & (0xFF00u >> (prefix - bit)));
    }
    return key;
  }

 private:
  static bool is_v4_mapped(const std::array<uint8_t, 16>& a) {
    for (size_t i = 0; i < 10; ++i)
      if (a[i] != 0) return false;
    return a[10] == 0xFF && a[11] == 0xFF;
  }
};

// Keyed (common/base/keyed_hash.h): a client picks its source addresses within
// its prefix and could otherwise aim every one at the same table bucket or
// the same owning shard.
struct SourceKeyHash {
  size_t operator()(const SourceKey& key) const noexcept {
    char bytes[1 + 16];
    bytes[0] = static_cast<char>(key.family);
    std::memcpy(bytes + 1, key.address.data(), key.address.size());
    return static_cast<size_t>(keyed_hash(std::string_view(bytes, sizeof bytes)));
  }
};

struct SourceLimitSettings {
  uint32_t connections = 0;  // open at once; 0: unlimited
  uint32_t rate = 0;         // new per second; 0: unlimited
  uint32_t burst = 0;        // new at once; 0: same as rate
  SourcePrefixes prefixes;   // what one source is (SourceKey::of)
  bool enabled() const { return connections != 0 || rate != 0; }
};

enum class SourceVerdict : uint8_t { admitted, over_connections, over_rate };

class SourceLimiter {
 public:
  // Counts one more open connection of `key`, unless a limit says no.
  SourceVerdict acquire(const SourceKey& key, const SourceLimitSettings& limits, uint64_t now_ms) {
    uint32_t burst = limits.burst != 0 ? limits.burst : limits.rate;
    auto [it, inserted] = entries_.try_emplace(key);
    Entry& entry = it->second;
    if (inserted) entry.bucket.init(burst, now_ms);
    entry.last_ms = now_ms;
    if (limits.connections != 0 && entry.open >= limits.connections) return SourceVerdict::over_connections;
    if (limits.rate != 0 && !entry.bucket.take(limits.rate, burst, now_ms)) return SourceVerdict::over_rate;
    entry.open++;
    return SourceVerdict::admitted;
  }

  // One connection acquired earlier is gone.
  void release(const SourceKey& key, uint64_t now_ms) {
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.open == 0) return;
    it->second.open--;
    it->second.last_ms = now_ms;
  }

  // An address with nothing open and quiet for a minute has a full bucket
  // again: forgetting it changes nothing and bounds the table.
  void sweep(uint64_t now_ms) {
    std::erase_if(entries_, [now_ms](const auto& item) {
      return item.second.open == 0 && now_ms - item.second.last_ms > forget_after_ms;
    });
  }

  size_t addresses() const { return entries_.size(); }
  // Open connections counted over every address (O(addresses): for metrics).
  uint64_t open_total() const {
    uint64_t total = 0;
    for (const auto& item : entries_) total += item.second.open;
    return total;
  }
  uint32_t open(const SourceKey& key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? 0 : it->second.open;
  }

  static constexpr uint64_t forget_after_ms = 60000;

 private:
  struct Entry {
    uint32_t open = 0;
    TokenBucket bucket;
    uint64_t last_ms = 0;
  };
  std::unordered_map<SourceKey, Entry, SourceKeyHash> entries_;
};

}  // namespace mf
