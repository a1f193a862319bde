#include "common/codec/utf8_validator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace mf {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Reference: decode code point by code point, straight from RFC 3629's
// definition, and reject what it excludes.
bool reference_valid(const Bytes& s) {
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t c = s[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len]) return false;           // overlong
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;      // surrogate
    if (cp > 0x10FFFF) return false;                     // out of range
    i += len;
  }
  return true;
}

// Reference for "can still become valid": some completion of the trailing
// incomplete sequence decodes. Only the first missing continuation byte has
// a constrained range, so trying all 64 for it and 0x80 for the rest is
// exhaustive.
bool reference_prefix_valid(const Bytes& s) {
  if (reference_valid(s)) return true;
  for (size_t tail = 1; tail <= 3 && tail <= s.size(); ++tail) {
    const uint8_t lead = s[s.size() - tail];
    const size_t len = (lead & 0xE0) == 0xC0   ? 2
                       : (lead & 0xF0) == 0xE0 ? 3
                       : (lead & 0xF8) == 0xF0 ? 4
                                               : 0;
    if (len == 0) continue;
    if (tail >= len) return false;
    for (int b = 0x80; b <= 0xBF; ++b) {
      Bytes t = s;
      t.push_back(static_cast<uint8_t>(b));
      while (t.size() < s.size() - tail + len) t.push_back(0x80);
      if (reference_valid(t)) return true;
      if (tail > 1) break;  // second byte already given
    }
    return false;
  }
  return false;
}

// Index of the byte at which feeding one byte at a time first fails, or
// nullopt.
std::optional<size_t> first_failing_byte(const Bytes& s) {
  Utf8Validator v;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!v.feed({&s[i], 1})) return i;
  }
  return std::nullopt;
}

std::optional<size_t> reference_first_failing_byte(const Bytes& s) {
  Bytes prefix;
  for (size_t i = 0; i < s.size(); ++i) {
    prefix.push_back(s[i]);
    if (!reference_prefix_valid(prefix)) return i;
  }
  return std::nullopt;
}

TEST(Utf8Validator, ReferenceSanity) {
  EXPECT_TRUE(reference_valid(bytes_of("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80")));
  EXPECT_FALSE(reference_valid(bytes_of("\xC0\x80")));
  EXPECT_FALSE(reference_valid(bytes_of("\xED\xA0\x80")));
  EXPECT_TRUE(reference_prefix_valid(bytes_of("\xF0\x9F")));
  EXPECT_FALSE(reference_prefix_valid(bytes_of("\xF0\x8F")));
}

TEST(Utf8Validator, KnownGoodAndBad) {
  const char* good[] = {"", "plain ascii", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80",
                        "\xED\x9F\xBF", "\xEE\x80\x80", "\xEF\xBF\xBF", "\xF0\x90\x80\x80",
                        "\xF4\x8F\xBF\xBF", "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"};
  for (const char* s : good) EXPECT_TRUE(is_valid_utf8(bytes_of(s))) << s;
  const char* bad[] = {
      "\x80",              // stray continuation
      "a\xBF",             // stray continuation after ASCII
      "\xC0\xAF",          // overlong 2-byte
      "\xC1\xBF",          // overlong 2-byte
      "\xE0\x9F\xBF",      // overlong 3-byte
      "\xED\xA0\x80",      // U+D800
      "\xED\xBF\xBF",      // U+DFFF
      "\xF0\x8F\xBF\xBF",  // overlong 4-byte
      "\xF4\x90\x80\x80",  // U+110000
      "\xF5\x80\x80\x80",  // lead beyond range
      "\xFF",              // never valid
      "\xC2",              // truncated
      "\xE2\x82",          // truncated
      "\xC2\x41",          // missing continuation
  };
  for (const char* s : bad) EXPECT_FALSE(is_valid_utf8(bytes_of(s))) << s;
}

TEST(Utf8Validator, ExhaustiveOneAndTwoBytes) {
  for (int a = 0; a < 256; ++a) {
    const Bytes one{static_cast<uint8_t>(a)};
    ASSERT_EQ(is_valid_utf8(one), reference_valid(one)) << a;
    ASSERT_EQ(first_failing_byte(one), reference_first_failing_byte(one)) << a;
    for (int b = 0; b < 256; ++b) {
      const Bytes two{static_cast<uint8_t>(a), static_cast<uint8_t>(b)};
      ASSERT_EQ(is_valid_utf8(two), reference_valid(two)) << a << " " << b;
      ASSERT_EQ(first_failing_byte(two), reference_first_failing_byte(two)) << a << " " << b;
    }
  }
}

TEST(Utf8Validator, ExhaustiveThreeBytesOverMultiByteLeads) {
  // Every lead from 0xC0 up with every pair of following bytes.
  for (int a = 0xC0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c = 0; c < 256; ++c) {
        const Bytes s{static_cast<uint8_t>(a), static_cast<uint8_t>(b), static_cast<uint8_t>(c)};
        ASSERT_EQ(is_valid_utf8(s), reference_valid(s)) << a << " " << b << " " << c;
      }
    }
  }
}

TEST(Utf8Validator, RandomFourByteSequencesFailAtTheRightByte) {
  std::mt19937 rng(1234);
  // Bias bytes toward the interesting region so valid sequences are common.
  std::uniform_int_distribution<int> lead(0xE0, 0xFF);
  std::uniform_int_distribution<int> cont(0x70, 0xC5);
  std::uniform_int_distribution<int> any(0, 255);
  int valid = 0;
  for (int i = 0; i < 400000; ++i) {
    Bytes s{static_cast<uint8_t>(lead(rng))};
    for (int k = 0; k < 3; ++k) s.push_back(static_cast<uint8_t>(i % 7 == 0 ? any(rng) : cont(rng)));
    const bool ok = reference_valid(s);
    valid += ok;
    ASSERT_EQ(is_valid_utf8(s), ok);
    ASSERT_EQ(first_failing_byte(s), reference_first_failing_byte(s));
  }
  EXPECT_GT(valid, 1000);  // the test exercised valid inputs too
}

Bytes random_text(std::mt19937& rng, size_t chars, bool corrupt) {
  static const char* pieces[] = {"a", "Z", "0", " ", "{\"k\":1}", "\xC3\xA9", "\xD0\x96",
                                 "\xE2\x82\xAC", "\xE6\x97\xA5", "\xEF\xBF\xBD",
                                 "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF",
                                 "0123456789abcdefghijklmnopqrstuv"};
  std::uniform_int_distribution<size_t> pick(0, std::size(pieces) - 1);
  Bytes s;
  for (size_t i = 0; i < chars; ++i) {
    const std::string_view p = pieces[pick(rng)];
    s.insert(s.end(), p.begin(), p.end());
  }
  if (corrupt && !s.empty()) {
    std::uniform_int_distribution<size_t> at(0, s.size() - 1);
    std::uniform_int_distribution<int> byte(0x80, 0xFF);
    s[at(rng)] = static_cast<uint8_t>(byte(rng));
  }
  return s;
}

TEST(Utf8Validator, RandomMixedTextMatchesReference) {
  std::mt19937 rng(99);
  for (int i = 0; i < 3000; ++i) {
    const Bytes s = random_text(rng, 1 + i % 60, i % 2 == 1);
    ASSERT_EQ(is_valid_utf8(s), reference_valid(s));
    ASSERT_EQ(first_failing_byte(s), reference_first_failing_byte(s));
  }
}

TEST(Utf8Validator, SplitAtEveryPositionMatchesWhole) {
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    const Bytes s = random_text(rng, 1 + i % 40, i % 3 == 0);
    const bool whole = is_valid_utf8(s);
    for (size_t cut = 0; cut <= s.size(); ++cut) {
      Utf8Validator v;
      const bool first = v.feed({s.data(), cut});
      const bool second = v.feed({s.data() + cut, s.size() - cut});
      // Fail fast: the first piece fails exactly when its bytes already do.
      ASSERT_EQ(first, reference_prefix_valid(Bytes(s.begin(), s.begin() + cut)));
      ASSERT_EQ(first && second && v.at_boundary(), whole) << "cut " << cut;
    }
  }
}

TEST(Utf8Validator, AtBoundaryTracksIncompleteSequences) {
  Utf8Validator v;
  EXPECT_TRUE(v.at_boundary());
  const Bytes euro = bytes_of("\xE2\x82\xAC");
  EXPECT_TRUE(v.feed({euro.data(), 1}));
  EXPECT_FALSE(v.at_boundary());
  EXPECT_TRUE(v.feed({euro.data() + 1, 1}));
  EXPECT_FALSE(v.at_boundary());
  EXPECT_TRUE(v.feed({euro.data() + 2, 1}));
  EXPECT_TRUE(v.at_boundary());
}

TEST(Utf8Validator, FailureIsStickyUntilReset) {
  Utf8Validator v;
  const Bytes bad = bytes_of("\xFF");
  const Bytes good = bytes_of("ok");
  EXPECT_FALSE(v.feed(bad));
  EXPECT_FALSE(v.feed(good));
  EXPECT_FALSE(v.at_boundary());
  v.reset();
  EXPECT_TRUE(v.feed(good));
  EXPECT_TRUE(v.at_boundary());
}

TEST(Utf8Validator, LongAsciiFastPathStillCatchesLateBadByte) {
  // The bad byte sits at every offset of a long ASCII run, so it lands in the
  // 16-byte step, the 8-byte step and the byte tail.
  for (size_t n = 1; n < 70; ++n) {
    for (size_t at = 0; at < n; ++at) {
      Bytes s(n, 'x');
      s[at] = 0x80;
      ASSERT_FALSE(is_valid_utf8(s)) << n << " " << at;
      s[at] = 'y';
      ASSERT_TRUE(is_valid_utf8(s));
    }
  }
}

TEST(Utf8Prefix, CutsAtACharacterBoundary) {
  std::string text = "ab\xe2\x82\xac\xf0\x9f\x98\x80";  // a b U+20AC U+1F600
  EXPECT_EQ(utf8_prefix(text, 100), text);
  EXPECT_EQ(utf8_prefix(text, 2), "ab");
  EXPECT_EQ(utf8_prefix(text, 3), "ab");
  EXPECT_EQ(utf8_prefix(text, 4), "ab");
  EXPECT_EQ(utf8_prefix(text, 5), "ab\xe2\x82\xac");
  EXPECT_EQ(utf8_prefix(text, 8), "ab\xe2\x82\xac");
  EXPECT_EQ(utf8_prefix(text, 9), text);
  for (size_t n = 0; n <= text.size(); ++n) {
    std::string_view cut = utf8_prefix(text, n);
    EXPECT_TRUE(is_valid_utf8({reinterpret_cast<const uint8_t*>(cut.data()), cut.size()})) << n;
  }
}

TEST(Utf8Validator, StateIsSmall) { EXPECT_LE(sizeof(Utf8Validator), 3u); }

}  // namespace
}  // namespace mf
