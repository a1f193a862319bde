// Arbitrary bytes as a key: its slot is in range, equals the slot of the part
// that is hashed (a hash tag or the whole key), and that part is a substring
// of the key; a tag found is kept when the key is embedded between bytes that
// hold no brace. A bitwise CRC16 computed here must agree with the table's.
// Aborts when an invariant breaks.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/valkey/valkey_keyslot.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

uint16_t bitwise_crc16(std::string_view bytes) {
  uint16_t crc = 0;
  for (char c : bytes) {
    crc = static_cast<uint16_t>(crc ^ (static_cast<uint8_t>(c) << 8));
    for (int bit = 0; bit < 8; ++bit)
      crc = static_cast<uint16_t>((crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1);
  }
  return crc;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mf::valkey;
  std::string_view key(reinterpret_cast<const char*>(data), size);
  uint16_t slot = key_slot(key);
  check(slot < cluster_slots);
  check(crc16(key) == bitwise_crc16(key));
  std::string_view part = hashed_part(key);
  check(part.data() >= key.data() && part.data() + part.size() <= key.data() + key.size());
  check(slot == (crc16(part) & (cluster_slots - 1)));
  if (part.size() != key.size()) {
    // A tag: no brace inside it would end it earlier.
    check(part.find('}') == std::string_view::npos && !part.empty());
    std::string wrapped = "prefix:" + std::string(key) + ":suffix";
    check(key_slot(wrapped) == slot);
  }
  return 0;
}
