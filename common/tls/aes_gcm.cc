#include "common/tls/aes_gcm.h"

#include <immintrin.h>
#include <openssl/crypto.h>

#include <cstring>

// Every function that uses the instructions says so itself, so this file
// builds whatever -march the project is given; aes_gcm_supported() decides
// at run time whether they may be called.
#define MF_AES_GCM_TARGET __attribute__((target("aes,pclmul,ssse3,sse4.1")))

namespace mf::tls {
namespace {

MF_AES_GCM_TARGET inline __m128i load(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
MF_AES_GCM_TARGET inline void store(uint8_t* p, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }

// GHASH reads a block's bits in reflected order; reversing its bytes turns
// that into the order PCLMULQDQ multiplies (the "byte-reflected" form of
// Gueron and Kounavis, "Intel Carry-Less Multiplication Instruction and its
// Usage for Computing the GCM Mode", algorithm 5).
MF_AES_GCM_TARGET inline __m128i reverse_bytes(__m128i v) {
  return _mm_shuffle_epi8(v, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

// A 256-bit carry-less product, before its reduction: products of several
// pairs are xored together and reduced once.
struct Product {
  __m128i low;
  __m128i high;
};

MF_AES_GCM_TARGET inline Product multiply(__m128i a, __m128i b) {
  __m128i low = _mm_clmulepi64_si128(a, b, 0x00);
  __m128i high = _mm_clmulepi64_si128(a, b, 0x11);
  const __m128i middle = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x10), _mm_clmulepi64_si128(a, b, 0x01));
  low = _mm_xor_si128(low, _mm_slli_si128(middle, 8));
  high = _mm_xor_si128(high, _mm_srli_si128(middle, 8));
  return {low, high};
}

MF_AES_GCM_TARGET inline void accumulate(Product& sum, const Product& p) {
  sum.low = _mm_xor_si128(sum.low, p.low);
  sum.high = _mm_xor_si128(sum.high, p.high);
}

// The product modulo GHASH's polynomial x^128 + x^7 + x^2 + x + 1: the
// 256-bit value shifted left by one bit (the reflected bit order leaves the
// product one bit short), then folded twice by shifts.
MF_AES_GCM_TARGET inline __m128i reduce(Product p) {
  __m128i low_carry = _mm_srli_epi32(p.low, 31);
  __m128i high_carry = _mm_srli_epi32(p.high, 31);
  __m128i low = _mm_slli_epi32(p.low, 1);
  __m128i high = _mm_slli_epi32(p.high, 1);
  const __m128i across = _mm_srli_si128(low_carry, 12);
  high_carry = _mm_slli_si128(high_carry, 4);
  low_carry = _mm_slli_si128(low_carry, 4);
  low = _mm_or_si128(low, low_carry);
  high = _mm_or_si128(_mm_or_si128(high, high_carry), across);

  __m128i a = _mm_slli_epi32(low, 31);
  const __m128i b = _mm_slli_epi32(low, 30);
  const __m128i c = _mm_slli_epi32(low, 25);
  a = _mm_xor_si128(a, _mm_xor_si128(b, c));
  const __m128i carried = _mm_srli_si128(a, 4);
  low = _mm_xor_si128(low, _mm_slli_si128(a, 12));
  __m128i d = _mm_xor_si128(_mm_srli_epi32(low, 1), _mm_xor_si128(_mm_srli_epi32(low, 2), _mm_srli_epi32(low, 7)));
  d = _mm_xor_si128(d, carried);
  low = _mm_xor_si128(low, d);
  return _mm_xor_si128(high, low);
}

// Up to 8 bytes from `p` (`n` of them), the rest zero: two overlapping
// loads, no byte loop, nothing read outside [p, p + n).
inline uint64_t load_up_to_8(const uint8_t* p, size_t n) {
  if (n >= 4) {
    uint32_t first, last;
    std::memcpy(&first, p, 4);
    std::memcpy(&last, p + n - 4, 4);
    return first | uint64_t{last} << (8 * (n - 4));
  }
  if (n == 0) return 0;
  return uint64_t{p[0]} | uint64_t{p[n / 2]} << (8 * (n / 2)) | uint64_t{p[n - 1]} << (8 * (n - 1));
}

// The low `n` bytes of `value` to `p` (n <= 8), by overlapping stores.
inline void store_up_to_8(uint8_t* p, uint64_t value, size_t n) {
  if (n >= 4) {
    const uint32_t first = static_cast<uint32_t>(value);
    const uint32_t last = static_cast<uint32_t>(value >> (8 * (n - 4)));
    std::memcpy(p, &first, 4);
    std::memcpy(p + n - 4, &last, 4);
  } else if (n > 0) {
    p[0] = static_cast<uint8_t>(value);
    p[n / 2] = static_cast<uint8_t>(value >> (8 * (n / 2)));
    p[n - 1] = static_cast<uint8_t>(value >> (8 * (n - 1)));
  }
}

// A block of `n` < 16 bytes, zero-padded; and its store.
MF_AES_GCM_TARGET inline __m128i load_partial(const uint8_t* p, size_t n) {
  uint64_t low, high = 0;
  if (n >= 8) {
    std::memcpy(&low, p, 8);
    high = load_up_to_8(p + 8, n - 8);
  } else {
    low = load_up_to_8(p, n);
  }
  return _mm_set_epi64x(static_cast<long long>(high), static_cast<long long>(low));
}

MF_AES_GCM_TARGET inline void store_partial(uint8_t* p, __m128i v, size_t n) {
  const uint64_t low = static_cast<uint64_t>(_mm_cvtsi128_si64(v));
  const uint64_t high = static_cast<uint64_t>(_mm_extract_epi64(v, 1));
  if (n >= 8) {
    std::memcpy(p, &low, 8);
    store_up_to_8(p + 8, high, n - 8);
  } else {
    store_up_to_8(p, low, n);
  }
}

// `v` with its bytes from `n` on zeroed (0 < n < 16).
MF_AES_GCM_TARGET inline __m128i keep_bytes(__m128i v, size_t n) {
  static constexpr uint8_t ones_then_zeros[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  return _mm_and_si128(v, load(ones_then_zeros + 16 - n));
}

// GHASH's running value and key powers, all byte-reflected.
struct Ghash {
  __m128i x;
  __m128i powers[4];  // H^1 .. H^4

  // `n` blocks (1 to 4, as they are in memory), one reduction:
  // (((x + b0)H + b1)H + ...)H = (x + b0)H^n + b1 H^(n-1) + ... + b(n-1) H.
  MF_AES_GCM_TARGET void blocks(const __m128i* b, size_t n) {
    Product sum = multiply(_mm_xor_si128(x, reverse_bytes(b[0])), powers[n - 1]);
    for (size_t i = 1; i < n; ++i) accumulate(sum, multiply(reverse_bytes(b[i]), powers[n - 1 - i]));
    x = reduce(sum);
  }
  // `size` bytes, the last block padded with zeros.
  MF_AES_GCM_TARGET void bytes(const uint8_t* p, size_t size) {
    for (; size >= 64; p += 64, size -= 64) {
      const __m128i b[4] = {load(p), load(p + 16), load(p + 32), load(p + 48)};
      blocks(b, 4);
    }
    __m128i b[4];
    size_t n = 0;
    for (; size >= 16; p += 16, size -= 16) b[n++] = load(p);
    if (size > 0) b[n++] = load_partial(p, size);
    if (n > 0) blocks(b, n);
  }
};

MF_AES_GCM_TARGET inline __m128i encrypt_block(const __m128i* keys, uint32_t rounds, __m128i block) {
  block = _mm_xor_si128(block, keys[0]);
  for (uint32_t i = 1; i < rounds; ++i) block = _mm_aesenc_si128(block, keys[i]);
  return _mm_aesenclast_si128(block, keys[rounds]);
}

// Four blocks through the rounds side by side: AESENC's latency is hidden
// behind the other three.
MF_AES_GCM_TARGET inline void encrypt_blocks4(const __m128i* keys, uint32_t rounds, __m128i& a, __m128i& b,
                                              __m128i& c, __m128i& d) {
  a = _mm_xor_si128(a, keys[0]);
  b = _mm_xor_si128(b, keys[0]);
  c = _mm_xor_si128(c, keys[0]);
  d = _mm_xor_si128(d, keys[0]);
  for (uint32_t i = 1; i < rounds; ++i) {
    a = _mm_aesenc_si128(a, keys[i]);
    b = _mm_aesenc_si128(b, keys[i]);
    c = _mm_aesenc_si128(c, keys[i]);
    d = _mm_aesenc_si128(d, keys[i]);
  }
  a = _mm_aesenclast_si128(a, keys[rounds]);
  b = _mm_aesenclast_si128(b, keys[rounds]);
  c = _mm_aesenclast_si128(c, keys[rounds]);
  d = _mm_aesenclast_si128(d, keys[rounds]);
}

// FIPS 197 section 5.2, as the AESKEYGENASSIST instruction computes it
// (Gueron, "Intel Advanced Encryption Standard (AES) New Instructions Set",
// section 4): the previous round key's words xored in a running sum, plus
// the assist's SubWord/RotWord/Rcon word broadcast.
MF_AES_GCM_TARGET inline __m128i expand_step(__m128i previous, __m128i assist_word) {
  __m128i shifted = _mm_slli_si128(previous, 4);
  previous = _mm_xor_si128(previous, shifted);
  shifted = _mm_slli_si128(shifted, 4);
  previous = _mm_xor_si128(previous, shifted);
  shifted = _mm_slli_si128(shifted, 4);
  previous = _mm_xor_si128(previous, shifted);
  return _mm_xor_si128(previous, assist_word);
}

template <int Rcon>
MF_AES_GCM_TARGET inline __m128i expand128(__m128i previous) {
  return expand_step(previous, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(previous, Rcon), 0xff));
}

// AES-256 alternates two kinds of step: RotWord+SubWord+Rcon of the key two
// back (word 3 of the assist), and SubWord alone (word 2, Rcon 0).
template <int Rcon>
MF_AES_GCM_TARGET inline void expand256(__m128i& even, __m128i& odd, __m128i* out) {
  even = expand_step(even, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(odd, Rcon), 0xff));
  out[0] = even;
  odd = expand_step(odd, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(even, 0), 0xaa));
  out[1] = odd;
}

MF_AES_GCM_TARGET void expand_key(AesGcmKey& out, std::span<const uint8_t> key) {
  __m128i* k = reinterpret_cast<__m128i*>(out.round_keys);
  if (key.size() == 16) {
    k[0] = load(key.data());
    k[1] = expand128<0x01>(k[0]);
    k[2] = expand128<0x02>(k[1]);
    k[3] = expand128<0x04>(k[2]);
    k[4] = expand128<0x08>(k[3]);
    k[5] = expand128<0x10>(k[4]);
    k[6] = expand128<0x20>(k[5]);
    k[7] = expand128<0x40>(k[6]);
    k[8] = expand128<0x80>(k[7]);
    k[9] = expand128<0x1b>(k[8]);
    k[10] = expand128<0x36>(k[9]);
    out.rounds = 10;
  } else {
    __m128i even = load(key.data());
    __m128i odd = load(key.data() + 16);
    k[0] = even;
    k[1] = odd;
    expand256<0x01>(even, odd, k + 2);
    expand256<0x02>(even, odd, k + 4);
    expand256<0x04>(even, odd, k + 6);
    expand256<0x08>(even, odd, k + 8);
    expand256<0x10>(even, odd, k + 10);
    expand256<0x20>(even, odd, k + 12);
    k[14] = expand_step(even, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(odd, 0x40), 0xff));
    out.rounds = 14;
  }
  // H = E(K, 0^128) and its powers.
  const __m128i h1 = reverse_bytes(encrypt_block(k, out.rounds, _mm_setzero_si128()));
  const __m128i h2 = reduce(multiply(h1, h1));
  const __m128i h3 = reduce(multiply(h2, h1));
  const __m128i h4 = reduce(multiply(h3, h1));
  store(out.h_powers[0], h1);
  store(out.h_powers[1], h2);
  store(out.h_powers[2], h3);
  store(out.h_powers[3], h4);
}

// The counter blocks of a 96-bit nonce (SP 800-38D section 7.1): the nonce,
// then a 32-bit big-endian block number; J0 is number 1, data starts at 2.
struct Counter {
  __m128i base;
  MF_AES_GCM_TARGET explicit Counter(const uint8_t nonce[kAesGcmNonceBytes]) {
    alignas(16) uint8_t block[16] = {};
    std::memcpy(block, nonce, kAesGcmNonceBytes);
    base = _mm_load_si128(reinterpret_cast<const __m128i*>(block));
  }
  MF_AES_GCM_TARGET __m128i at(uint32_t number) const {
    return _mm_insert_epi32(base, static_cast<int>(__builtin_bswap32(number)), 3);
  }
};

// The GCM work shared by seal and open: CTR over `size` bytes, GHASH over the
// ciphertext (the output when sealing, the input when opening); returns the
// tag. `in` and `out` may be the same: each block is read before it is
// written.
template <bool Sealing>
MF_AES_GCM_TARGET inline __m128i crypt(const AesGcmKey& key, const uint8_t nonce[kAesGcmNonceBytes],
                                       std::span<const uint8_t> aad, const uint8_t* in, uint8_t* out, size_t size) {
  const __m128i* k = reinterpret_cast<const __m128i*>(key.round_keys);
  const uint32_t rounds = key.rounds;
  Ghash g{_mm_setzero_si128(),
          {load(key.h_powers[0]), load(key.h_powers[1]), load(key.h_powers[2]), load(key.h_powers[3])}};
  const Counter counter(nonce);
  // E(K, J0), which masks the tag: nothing waits for it until the end.
  const __m128i tag_mask = encrypt_block(k, rounds, counter.at(1));
  g.bytes(aad.data(), aad.size());

  uint32_t number = 2;
  size_t done = 0;
  for (; size - done >= 64; done += 64, number += 4) {
    __m128i a = counter.at(number), b = counter.at(number + 1), c = counter.at(number + 2),
            d = counter.at(number + 3);
    encrypt_blocks4(k, rounds, a, b, c, d);
    const __m128i input[4] = {load(in + done), load(in + done + 16), load(in + done + 32), load(in + done + 48)};
    const __m128i output[4] = {_mm_xor_si128(a, input[0]), _mm_xor_si128(b, input[1]), _mm_xor_si128(c, input[2]),
                               _mm_xor_si128(d, input[3])};
    store(out + done, output[0]);
    store(out + done + 16, output[1]);
    store(out + done + 32, output[2]);
    store(out + done + 48, output[3]);
    g.blocks(Sealing ? output : input, 4);
  }
  // The lengths in bits, big-endian: [len(A)]64 || [len(C)]64, which is
  // (len(C), len(A)) as the two 64-bit lanes once byte-reversed; as a block
  // in memory order, reversed back.
  const __m128i lengths = reverse_bytes(_mm_set_epi64x(static_cast<long long>(uint64_t{aad.size()} * 8),
                                                       static_cast<long long>(uint64_t{size} * 8)));
  // The last 0 to 63 bytes: four key-stream blocks at once, the last block
  // partial; their GHASH and the lengths' share one reduction when they
  // fit four blocks.
  __m128i last[5];
  size_t blocks = 0;
  if (done < size) {
    __m128i stream[4] = {counter.at(number), counter.at(number + 1), counter.at(number + 2), counter.at(number + 3)};
    encrypt_blocks4(k, rounds, stream[0], stream[1], stream[2], stream[3]);
    for (; size - done >= 16; done += 16, ++blocks) {
      const __m128i input = load(in + done);
      const __m128i output = _mm_xor_si128(input, stream[blocks]);
      store(out + done, output);
      last[blocks] = Sealing ? output : input;
    }
    if (done < size) {
      const size_t n = size - done;
      const __m128i input = load_partial(in + done, n);
      const __m128i output = keep_bytes(_mm_xor_si128(input, stream[blocks]), n);
      store_partial(out + done, output, n);
      last[blocks++] = Sealing ? output : input;
    }
  }
  last[blocks++] = lengths;
  if (blocks > 4) {
    g.blocks(last, 4);
    g.blocks(last + 4, 1);
  } else {
    g.blocks(last, blocks);
  }
  return _mm_xor_si128(reverse_bytes(g.x), tag_mask);
}

// Decided once: aes_gcm_set_key asks on every re-key.
bool cpu_has_instructions() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("ssse3") &&
           __builtin_cpu_supports("sse4.1");
  }();
  return has;
}

// One NIST case: key, nonce, plaintext, AAD, ciphertext, tag (hex).
struct KnownAnswer {
  const char* key;
  const char* nonce;
  const char* plaintext;
  const char* aad;
  const char* ciphertext;
  const char* tag;
};

// SP 800-38D's reference test cases ("The Galois/Counter Mode of Operation",
// McGrew and Viega, appendix B): 1, 2, 3 and 4 (AES-128) and 13, 14, 15 and
// 16 (AES-256): no data, one zero block, four blocks, and 60 bytes with AAD.
constexpr KnownAnswer kKnownAnswers[] = {
    {"00000000000000000000000000000000", "000000000000000000000000", "", "", "",
     "58e2fccefa7e3061367f1d57a4e7455a"},
    {"00000000000000000000000000000000", "000000000000000000000000", "00000000000000000000000000000000", "",
     "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf"},
    {"feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de6"
     "57ba637b391aafd255",
     "",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac97"
     "3d58e091473f5985",
     "4d5c2af327cd64a62cf35abd2ba6fab4"},
    {"feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de6"
     "57ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac97"
     "3d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
    {"0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000", "", "", "",
     "530f8afbc74536b9a963b4f1c4cb738b"},
    {"0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "00000000000000000000000000000000", "", "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de6"
     "57ba637b391aafd255",
     "",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0a"
     "bcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de6"
     "57ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0a"
     "bcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

// Hex into `out` (at most out_size bytes); the byte count, or SIZE_MAX.
size_t from_hex(const char* hex, uint8_t* out, size_t out_size) {
  size_t n = 0;
  for (; hex[0] != '\0'; hex += 2, ++n) {
    if (hex[1] == '\0' || n == out_size) return SIZE_MAX;
    const int high = OPENSSL_hexchar2int(static_cast<unsigned char>(hex[0]));
    const int low = OPENSSL_hexchar2int(static_cast<unsigned char>(hex[1]));
    if (high < 0 || low < 0) return SIZE_MAX;
    out[n] = static_cast<uint8_t>(high << 4 | low);
  }
  return n;
}

bool known_answer_passes(const KnownAnswer& answer) {
  uint8_t key[32], nonce[kAesGcmNonceBytes], plaintext[64], aad[32], ciphertext[64], tag[kAesGcmTagBytes];
  const size_t key_size = from_hex(answer.key, key, sizeof key);
  const size_t size = from_hex(answer.plaintext, plaintext, sizeof plaintext);
  const size_t aad_size = from_hex(answer.aad, aad, sizeof aad);
  if (from_hex(answer.nonce, nonce, sizeof nonce) != sizeof nonce || size == SIZE_MAX || aad_size == SIZE_MAX ||
      from_hex(answer.ciphertext, ciphertext, sizeof ciphertext) != size ||
      from_hex(answer.tag, tag, sizeof tag) != sizeof tag) {
    return false;
  }
  AesGcmKey expanded;
  if (!aes_gcm_set_key(expanded, {key, key_size})) return false;
  uint8_t sealed[64], opened[64], sealed_tag[kAesGcmTagBytes];
  aes_gcm_seal(expanded, nonce, {aad, aad_size}, plaintext, sealed, size, sealed_tag);
  bool ok = std::memcmp(sealed, ciphertext, size) == 0 && std::memcmp(sealed_tag, tag, sizeof tag) == 0;
  ok = ok && aes_gcm_open(expanded, nonce, {aad, aad_size}, ciphertext, opened, size, tag) &&
       std::memcmp(opened, plaintext, size) == 0;
  // A tag one bit off is refused.
  tag[0] ^= 1;
  ok = ok && !aes_gcm_open(expanded, nonce, {aad, aad_size}, ciphertext, opened, size, tag);
  aes_gcm_clear(expanded);
  return ok;
}

}  // namespace

bool aes_gcm_known_answers_pass() {
  if (!cpu_has_instructions()) return false;
  for (const KnownAnswer& answer : kKnownAnswers) {
    if (!known_answer_passes(answer)) return false;
  }
  return true;
}

bool aes_gcm_supported() {
  static const bool supported = aes_gcm_known_answers_pass();
  return supported;
}

bool aes_gcm_set_key(AesGcmKey& out, std::span<const uint8_t> key) {
  if ((key.size() != 16 && key.size() != 32) || !cpu_has_instructions()) {
    aes_gcm_clear(out);
    return false;
  }
  expand_key(out, key);
  return true;
}

void aes_gcm_clear(AesGcmKey& key) {
  OPENSSL_cleanse(&key, sizeof key);
  key.rounds = 0;
}

MF_AES_GCM_TARGET void aes_gcm_seal(const AesGcmKey& key, const uint8_t nonce[kAesGcmNonceBytes],
                                    std::span<const uint8_t> aad, const uint8_t* in, uint8_t* out, size_t size,
                                    uint8_t tag[kAesGcmTagBytes]) {
  store(tag, crypt<true>(key, nonce, aad, in, out, size));
}

MF_AES_GCM_TARGET bool aes_gcm_open(const AesGcmKey& key, const uint8_t nonce[kAesGcmNonceBytes],
                                    std::span<const uint8_t> aad, const uint8_t* in, uint8_t* out, size_t size,
                                    const uint8_t tag[kAesGcmTagBytes]) {
  // The tag is read before `out` is written: it may follow `in` in place.
  uint8_t expected[kAesGcmTagBytes];
  std::memcpy(expected, tag, sizeof expected);
  uint8_t computed[kAesGcmTagBytes];
  store(computed, crypt<false>(key, nonce, aad, in, out, size));
  if (CRYPTO_memcmp(computed, expected, sizeof computed) == 0) return true;
  std::memset(out, 0, size);
  return false;
}

}  // namespace mf::tls
