#pragma once
// An ISO BMFF box for tests and benchmarks: a 32-bit size, the four-byte
// type, then `payload` bytes of `fill`.
#include <cstdint>
#include <string>
#include <string_view>

namespace mf::origin {

inline std::string bmff_test_box(std::string_view type, size_t payload = 0, char fill = '\x5a') {
  uint32_t size = static_cast<uint32_t>(8 + payload);
  std::string out{static_cast<char>(size >> 24), static_cast<char>(size >> 16), static_cast<char>(size >> 8),
                  static_cast<char>(size)};
  out += type;
  out.append(payload, fill);
  return out;
}

}  // namespace mf::origin
