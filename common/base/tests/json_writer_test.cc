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

std::string quoted(std::string_view text) {
  std::array<char, 256> out{};
  JsonWriter w(out);
  w.string(text);
  EXPECT_TRUE(w.ok());
  return std::string(w.text());
}

TEST(JsonWriterString, PlainTextIsCopiedAsItIs) {
  EXPECT_EQ(quoted(""), R"("")");
  EXPECT_EQ(quoted("L1a2b3c4d-123"), R"("L1a2b3c4d-123")");
  EXPECT_EQ(quoted("caf\xc3\xa9 / <x>"), "\"caf\xc3\xa9 / <x>\"");
}

TEST(JsonWriterString, MandatoryEscapesAnywhereInTheText) {
  EXPECT_EQ(quoted("\""), R"("\"")");
  EXPECT_EQ(quoted("a\\b"), R"("a\\b")");
  EXPECT_EQ(quoted("\n\r\t"), R"("\n\r\t")");
  EXPECT_EQ(quoted(std::string_view("x\0y", 3)), R"("x\u0000y")");
  EXPECT_EQ(quoted("\x1f" "end"), R"("\u001fend")");
  EXPECT_EQ(quoted("start\x01"), R"("start\u0001")");
  EXPECT_EQ(quoted("a\"b\"c\\"), R"("a\"b\"c\\")");
  EXPECT_EQ(quoted("\x7f"), "\"\x7f\"");  // DEL needs no escape
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
