#pragma once
// The hash slot of a key in a Valkey (or Redis) Cluster: CRC16 (the XMODEM
// variant: polynomial 0x1021, initial value 0, no reflection) of the key,
// modulo 16384, as the cluster specification defines it. When the key holds
// a hash tag (a '{', then a '}' after it with at least one byte between) only
// the bytes between the first '{' and the first '}' after it are hashed, so
// keys that share a tag share a slot (docs/cluster.md, "Key layout"). Pure:
// no IO, no allocation.
#include <cstdint>
#include <string_view>

namespace mf::valkey {

inline constexpr uint16_t cluster_slots = 16384;

// CRC16/XMODEM of `bytes`.
uint16_t crc16(std::string_view bytes);
// The part of `key` that is hashed: its hash tag, or the whole key.
std::string_view hashed_part(std::string_view key);
// The key's slot, 0..16383.
uint16_t key_slot(std::string_view key);

}  // namespace mf::valkey
