#include "common/base/same_bytes.h"

#include <gtest/gtest.h>

#include <string>

namespace mf {
namespace {

// Every length up to 72 (the byte loop, the two 4-byte words, the 8-byte
// words, the 16-byte vectors, each with the overlapping last one), every
// position, every bit: equal
// only when every byte is, and never a byte read past either end (the
// texts are views into larger strings whose next byte differs).
TEST(SameBytes, EveryBitOfEveryPositionOfEveryLength) {
  for (size_t n = 0; n <= 72; ++n) {
    std::string a(n, 'p'), b(n, 'p');
    for (size_t i = 0; i < n; ++i) a[i] = b[i] = static_cast<char>('A' + i % 50);
    const std::string a_next = a + "x", b_next = b + "y";
    ASSERT_TRUE(same_bytes(std::string_view(a_next).substr(0, n), std::string_view(b_next).substr(0, n))) << n;
    for (size_t at = 0; at < n; ++at) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string c = b;
        c[at] = static_cast<char>(c[at] ^ (1 << bit));
        ASSERT_FALSE(same_bytes(a, c)) << n << " " << at << " " << bit;
        ASSERT_FALSE(same_bytes(c, a)) << n << " " << at << " " << bit;
      }
    }
  }
}

TEST(SameBytes, DifferentLengthsDiffer) {
  EXPECT_FALSE(same_bytes("abc", "abcd"));
  EXPECT_FALSE(same_bytes("", "a"));
  EXPECT_TRUE(same_bytes("", ""));
  EXPECT_FALSE(same_bytes("peer-1234567", "peer-123456"));
}

}  // namespace
}  // namespace mf
