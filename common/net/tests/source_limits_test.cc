#include "common/net/source_limits.h"

#include <gtest/gtest.h>

namespace mf {
namespace {

proxy::Endpoint v6(std::array<uint8_t, 16> a) { return proxy::Endpoint::ipv6(a, 1234); }

TEST(SourceKey, Ipv6GroupsByDefaultPrefix64) {
  std::array<uint8_t, 16> a{0x20, 0x01, 0x0d, 0xb8, 1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9};
  std::array<uint8_t, 16> b = a;
  b[15] = 1;
  b[8] = 0xFF;  // another host of the same /64
  EXPECT_EQ(SourceKey::of(v6(a)), SourceKey::of(v6(b)));
  std::array<uint8_t, 16> c = a;
  c[7] ^= 1;  // another /64
  EXPECT_NE(SourceKey::of(v6(a)), SourceKey::of(v6(c)));
  SourceKey key = SourceKey::of(v6(a));
  for (size_t i = 8; i < 16; ++i) EXPECT_EQ(key.address[i], 0) << i;
}

TEST(SourceKey, PrefixesAreConfigurableToTheBit) {
  std::array<uint8_t, 16> a{0x20, 0x01, 0x0d, 0xb8, 0xAB, 0xCD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  std::array<uint8_t, 16> b = a;
  b[5] = 0xC0;  // differs only after bit 42 (the first 2 bits of byte 5 agree)
  SourcePrefixes p42{32, 42};
  EXPECT_EQ(SourceKey::of(v6(a), p42), SourceKey::of(v6(b), p42));
  SourcePrefixes p48{32, 48};
  EXPECT_NE(SourceKey::of(v6(a), p48), SourceKey::of(v6(b), p48));
  SourcePrefixes p128{32, 128};
  std::array<uint8_t, 16> c = a;
  c[15] = 2;
  EXPECT_NE(SourceKey::of(v6(a), p128), SourceKey::of(v6(c), p128));
  EXPECT_EQ(SourceKey::of(v6(a), SourcePrefixes{32, 0}), SourceKey::of(v6(c), SourcePrefixes{32, 0}));
}

TEST(SourceKey, Ipv4IsPerAddressByDefaultAndCanGroup) {
  auto x = proxy::Endpoint::ipv4({192, 0, 2, 7}, 1);
  auto y = proxy::Endpoint::ipv4({192, 0, 2, 8}, 2);
  EXPECT_NE(SourceKey::of(x), SourceKey::of(y));
  EXPECT_EQ(SourceKey::of(x, SourcePrefixes{24, 64}), SourceKey::of(y, SourcePrefixes{24, 64}));
  EXPECT_EQ(SourceKey::of(x).address[3], 7);
}

TEST(SourceKey, MappedIpv4IsTheIpv4Source) {
  std::array<uint8_t, 16> mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 192, 0, 2, 7};
  EXPECT_EQ(SourceKey::of(v6(mapped)), SourceKey::of(proxy::Endpoint::ipv4({192, 0, 2, 7}, 9)));
}

TEST(SourceLimiter, CountsGroupedSourcesTogether) {
  SourceLimiter limiter;
  SourceLimitSettings limits{2, 0, 0, {}};
  std::array<uint8_t, 16> a{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
  std::array<uint8_t, 16> b = a;
  b[15] = 2;
  std::array<uint8_t, 16> c = a;
  c[15] = 3;
  EXPECT_EQ(limiter.acquire(SourceKey::of(v6(a)), limits, 0), SourceVerdict::admitted);
  EXPECT_EQ(limiter.acquire(SourceKey::of(v6(b)), limits, 0), SourceVerdict::admitted);
  EXPECT_EQ(limiter.acquire(SourceKey::of(v6(c)), limits, 0), SourceVerdict::over_connections);
  limiter.release(SourceKey::of(v6(a)), 1);
  EXPECT_EQ(limiter.acquire(SourceKey::of(v6(c)), limits, 1), SourceVerdict::admitted);
}

TEST(SourceLimiter, RateIsATokenBucketPerSource) {
  SourceLimiter limiter;
  SourceLimitSettings limits{0, 2, 3, {}};
  SourceKey one = SourceKey::of(proxy::Endpoint::ipv4({10, 0, 0, 1}, 1));
  SourceKey two = SourceKey::of(proxy::Endpoint::ipv4({10, 0, 0, 2}, 1));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.acquire(one, limits, 1000), SourceVerdict::admitted);
  EXPECT_EQ(limiter.acquire(one, limits, 1000), SourceVerdict::over_rate);
  EXPECT_EQ(limiter.acquire(two, limits, 1000), SourceVerdict::admitted) << "another source has its own bucket";
  EXPECT_EQ(limiter.acquire(one, limits, 1499), SourceVerdict::over_rate);
  EXPECT_EQ(limiter.acquire(one, limits, 1500), SourceVerdict::admitted) << "2/s: one token per 500 ms";
}

}  // namespace
}  // namespace mf
