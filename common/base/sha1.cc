#include "common/base/sha1.h"

#include <algorithm>
#include <cstring>

namespace mf {
namespace {

constexpr uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

uint32_t load_be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

}  // namespace

// The initial hash value H(0) (FIPS 180-4 section 5.3.1).
Sha1::Sha1() : state_{0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u} {}

// One 512-bit block (FIPS 180-4 section 6.1.2), with the 16-word circular
// message schedule of section 6.1.3. The four groups of 20 rounds differ in
// their function (Ch, Parity, Maj, Parity) and constant.
void Sha1::compress(const uint8_t* block) {
  std::array<uint32_t, 16> w;
  for (size_t t = 0; t < 16; ++t) w[t] = load_be32(block + 4 * t);
  uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3], e = state_[4];
  auto schedule = [&w](size_t t) {
    if (t >= 16) w[t & 15] = rotl(w[(t + 13) & 15] ^ w[(t + 8) & 15] ^ w[(t + 2) & 15] ^ w[t & 15], 1);
    return w[t & 15];
  };
  auto round = [&](uint32_t f, uint32_t k, uint32_t word) {
    const uint32_t temp = rotl(a, 5) + f + e + k + word;
    e = d;
    d = c;
    c = rotl(b, 30);
    b = a;
    a = temp;
  };
  for (size_t t = 0; t < 20; ++t) round((b & c) | (~b & d), 0x5A827999u, schedule(t));
  for (size_t t = 20; t < 40; ++t) round(b ^ c ^ d, 0x6ED9EBA1u, schedule(t));
  for (size_t t = 40; t < 60; ++t) round((b & c) | (b & d) | (c & d), 0x8F1BBCDCu, schedule(t));
  for (size_t t = 60; t < 80; ++t) round(b ^ c ^ d, 0xCA62C1D6u, schedule(t));
  state_[0] += a;
  state_[1] += b;
  state_[2] += c;
  state_[3] += d;
  state_[4] += e;
}

void Sha1::update(std::span<const uint8_t> bytes) {
  total_bytes_ += bytes.size();
  const uint8_t* p = bytes.data();
  size_t left = bytes.size();
  if (block_used_ > 0) {
    const size_t take = std::min(left, block_.size() - block_used_);
    std::memcpy(block_.data() + block_used_, p, take);
    block_used_ += take;
    p += take;
    left -= take;
    if (block_used_ < block_.size()) return;
    compress(block_.data());
    block_used_ = 0;
  }
  for (; left >= 64; p += 64, left -= 64) compress(p);
  if (left > 0) std::memcpy(block_.data(), p, left);
  block_used_ = left;
}

void Sha1::update(std::string_view bytes) {
  update(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

// Padding (FIPS 180-4 section 5.1.1): a 1 bit, zeros up to 448 bits modulo
// 512, then the message length in bits as a 64-bit big-endian integer.
Sha1Digest Sha1::digest() {
  const uint64_t bits = total_bytes_ * 8;
  block_[block_used_++] = 0x80;
  if (block_used_ > 56) {
    std::memset(block_.data() + block_used_, 0, block_.size() - block_used_);
    compress(block_.data());
    block_used_ = 0;
  }
  std::memset(block_.data() + block_used_, 0, 56 - block_used_);
  for (size_t i = 0; i < 8; ++i) block_[56 + i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
  compress(block_.data());
  block_used_ = 0;
  Sha1Digest out;
  for (size_t i = 0; i < 5; ++i) {
    out[4 * i] = static_cast<uint8_t>(state_[i] >> 24);
    out[4 * i + 1] = static_cast<uint8_t>(state_[i] >> 16);
    out[4 * i + 2] = static_cast<uint8_t>(state_[i] >> 8);
    out[4 * i + 3] = static_cast<uint8_t>(state_[i]);
  }
  return out;
}

Sha1Digest sha1(std::string_view bytes) {
  Sha1 hash;
  hash.update(bytes);
  return hash.digest();
}

}  // namespace mf
