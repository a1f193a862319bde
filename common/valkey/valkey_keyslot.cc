#include "common/valkey/valkey_keyslot.h"

#include <array>

namespace mf::valkey {
namespace {

// The CRC of each byte value, computed at compile time from the polynomial.
constexpr std::array<uint16_t, 256> make_table() {
  std::array<uint16_t, 256> table{};
  for (uint32_t byte = 0; byte < 256; ++byte) {
    uint16_t crc = static_cast<uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit)
      crc = static_cast<uint16_t>((crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1);
    table[byte] = crc;
  }
  return table;
}

constexpr std::array<uint16_t, 256> crc_table = make_table();

}  // namespace

uint16_t crc16(std::string_view bytes) {
  uint16_t crc = 0;
  for (char c : bytes)
    crc = static_cast<uint16_t>((crc << 8) ^ crc_table[((crc >> 8) ^ static_cast<uint8_t>(c)) & 0xff]);
  return crc;
}

std::string_view hashed_part(std::string_view key) {
  size_t open = key.find('{');
  if (open == std::string_view::npos) return key;
  size_t close = key.find('}', open + 1);
  // No '}' after the '{', or nothing between them: the whole key.
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

uint16_t key_slot(std::string_view key) { return crc16(hashed_part(key)) & (cluster_slots - 1); }

}  // namespace mf::valkey
