// JsonWriter: strings are quoted with exactly RFC 8259's mandatory escapes
// ('"', '\\', control characters; \n \r \t by name, the rest as \u00XX),
// every other byte (UTF-8 included) copied as it is, and a buffer too small
// makes ok() false, never a write past the end.
#include "common/base/json_writer.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>

namespace mf {
namespace {

std::string as_json_string(std::string_view text) {
  std::array<char, 256> out{};
  JsonWriter w(out);
  w.string(text);
  EXPECT_TRUE(w.ok());
  return std::string(w.text());
}

TEST(JsonWriterString, PlainTextIsCopiedAsItIs) {
  EXPECT_EQ(as_json_string(""), R"("")");
  EXPECT_EQ(as_json_string("L1a2b3c4d-123"), R"("L1a2b3c4d-123")");
  EXPECT_EQ(as_json_string("caf\xc3\xa9 / <x>"), "\"caf\xc3\xa9 / <x>\"");
}

TEST(JsonWriterString, MandatoryEscapesAnywhereInTheText) {
  EXPECT_EQ(as_json_string("\""), R"("\"")");
  EXPECT_EQ(as_json_string("a\\b"), R"("a\\b")");
  EXPECT_EQ(as_json_string("\n\r\t"), R"("\n\r\t")");
  EXPECT_EQ(as_json_string(std::string_view("x\0y", 3)), R"("x\u0000y")");
  EXPECT_EQ(as_json_string("\x1f" "end"), R"("\u001fend")");
  EXPECT_EQ(as_json_string("start\x01"), R"("start\u0001")");
  EXPECT_EQ(as_json_string("a\"b\"c\\"), R"("a\"b\"c\\")");
  EXPECT_EQ(as_json_string("\x7f"), "\"\x7f\"");  // DEL needs no escape
}

// The escape of one byte as RFC 8259 requires it, or the byte itself.
std::string reference_escape(unsigned char c) {
  static constexpr char hex[] = "0123456789abcdef";
  switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default:
      if (c < 0x20) return std::string("\\u00") + hex[c >> 4] + hex[c & 15];
      return std::string(1, static_cast<char>(c));
  }
}

// Plain bytes are scanned a word (8 bytes) at a time while 8 are left, then
// one by one: every byte value at every position of a 19-byte text (two
// words and a tail), and next to a neighbour that needs an escape, is
// written as the byte-by-byte reference writes it.
TEST(JsonWriterString, EveryByteAtEveryPositionOfTheWordsAndTheTail) {
  for (int value = 0; value < 256; ++value) {
    for (size_t at = 0; at < 19; ++at) {
      for (const char neighbour : {'a', '"', '\x01', '\xff'}) {
        std::string text(19, 'x');
        text[at] = static_cast<char>(value);
        if (at + 1 < text.size()) text[at + 1] = neighbour;
        std::string expected = "\"";
        for (char c : text) expected += reference_escape(static_cast<unsigned char>(c));
        expected += '"';
        ASSERT_EQ(as_json_string(text), expected) << "byte " << value << " at " << at;
      }
    }
  }
}

TEST(JsonWriterString, TooSmallABufferIsReportedAndNotOverrun) {
  for (size_t room = 0; room < 12; ++room) {
    std::array<char, 16> out;
    out.fill('#');
    JsonWriter w(std::span<char>(out.data(), room));
    w.string("ab\"cd");  // 8 bytes quoted
    EXPECT_EQ(w.ok(), room >= 8) << room;
    for (size_t i = room; i < out.size(); ++i) EXPECT_EQ(out[i], '#') << "written past " << room;
    if (w.ok()) {
      EXPECT_EQ(w.text(), R"("ab\"cd")");
    }
  }
}

}  // namespace
}  // namespace mf
