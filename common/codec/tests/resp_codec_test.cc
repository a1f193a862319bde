#include "common/codec/resp_codec.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <array>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace mf::resp {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

std::string hiredis_format(std::span<const std::string_view> argv) {
  std::vector<const char*> pointers;
  std::vector<size_t> lengths;
  for (std::string_view a : argv) {
    pointers.push_back(a.data());
    lengths.push_back(a.size());
  }
  char* out = nullptr;
  int n = redisFormatCommandArgv(&out, static_cast<int>(argv.size()), pointers.data(), lengths.data());
  EXPECT_GT(n, 0);
  std::string result(out, static_cast<size_t>(n));
  redisFreeCommand(out);
  return result;
}

std::span<const uint8_t> as_bytes(std::string_view text) {
  return std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

TEST(RespEncode, SetIsTheDocumentedWireForm) {
  std::array<std::string_view, 3> argv{"SET", "key", "value"};
  std::string out;
  append_command(out, argv);
  EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");
  EXPECT_EQ(command_size(argv), out.size());
}

TEST(RespEncode, BinarySafeAndEmptyArguments) {
  const std::string binary("a\0b\r\nc", 6);
  std::array<std::string_view, 4> argv{"SET", "", binary, "\r\n"};
  std::string out;
  append_command(out, argv);
  EXPECT_EQ(out, std::string("*4\r\n$3\r\nSET\r\n$0\r\n\r\n$6\r\na\0b\r\nc\r\n$2\r\n\r\n\r\n", 39));
  EXPECT_EQ(out, hiredis_format(argv));
}

TEST(RespEncode, SameBytesAsHiredisForRandomCommands) {
  std::mt19937 random(7);
  std::string out;
  for (int round = 0; round < 500; ++round) {
    std::vector<std::string> storage(1 + random() % 12);
    for (auto& s : storage) {
      s.resize(random() % 3 == 0 ? random() % 300 : random() % 12);
      for (char& c : s) c = static_cast<char>(random());
    }
    std::vector<std::string_view> argv(storage.begin(), storage.end());
    out.clear();
    append_command(out, argv);
    ASSERT_EQ(out, hiredis_format(argv));
  }
}

TEST(RespEncode, AppendsAfterWhatIsThere) {
  std::array<std::string_view, 1> ping{"PING"};
  std::string out = "xy";
  append_command(out, ping);
  append_command(out, ping);
  EXPECT_EQ(out, "xy*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n");
}

TEST(RespEncode, WriteCommandFillsExactlyItsSize) {
  std::array<std::string_view, 2> argv{"GET", "k"};
  std::string buffer(command_size(argv) + 4, '#');
  size_t n = write_command(std::span<char>(buffer.data(), buffer.size()), argv);
  EXPECT_EQ(n, command_size(argv));
  EXPECT_EQ(buffer, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n####");
}

// Reads everything fed so far into a printable form, for compact checks.
std::string show(ReplyView r) {
  switch (r.type()) {
    case ReplyType::string: return "$" + std::string(r.text());
    case ReplyType::status: return "+" + std::string(r.text());
    case ReplyType::error: return "-" + std::string(r.text());
    case ReplyType::integer: return ":" + std::to_string(r.integer());
    case ReplyType::nil: return "nil";
    case ReplyType::array: {
      std::string s = "[";
      for (size_t i = 0; i < r.size(); ++i) s += (i ? "," : "") + show(r[i]);
      return s + "]";
    }
  }
  return "?";
}

std::vector<std::string> read_all(ReplyReader& reader) {
  std::vector<std::string> out;
  for (;;) {
    auto r = reader.next();
    if (!r) {
      out.push_back("error:" + std::string(reply_error_name(r.error())));
      return out;
    }
    if (!r->has_value()) return out;
    out.push_back(show(**r));
  }
}

TEST(RespRead, EveryReplyType) {
  ReplyReader reader;
  const std::string input = std::string("+OK\r\n-ERR wrong\r\n:42\r\n:-7\r\n$5\r\nhello\r\n$-1\r\n*-1\r\n$0\r\n\r\n") +
                            "*3\r\n$1\r\na\r\n:1\r\n*2\r\n+x\r\n$-1\r\n*0\r\n$4\r\na\0\r\n\r\n"s;
  ASSERT_TRUE(reader.feed(as_bytes(input)));
  EXPECT_EQ(read_all(reader), (std::vector<std::string>{"+OK", "-ERR wrong", ":42", ":-7", "$hello", "nil", "nil",
                                                        "$", "[$a,:1,[+x,nil]]", "[]",
                                                        "$" + std::string("a\0\r\n", 4)}));
  EXPECT_EQ(reader.buffered_bytes(), 0u);
}

TEST(RespRead, SplitAtEveryByte) {
  const std::string input = "*2\r\n$5\r\nhel\r\n\r\n*1\r\n:99\r\n+OK\r\n";
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    ReplyReader reader;
    std::vector<std::string> got;
    ASSERT_TRUE(reader.feed(as_bytes(std::string_view(input).substr(0, cut))));
    for (auto& s : read_all(reader)) got.push_back(s);
    ASSERT_TRUE(reader.feed(as_bytes(std::string_view(input).substr(cut))));
    for (auto& s : read_all(reader)) got.push_back(s);
    EXPECT_EQ(got, (std::vector<std::string>{"[$hel\r\n,[:99]]", "+OK"})) << "cut at " << cut;
  }
}

TEST(RespRead, OneByteAtATime) {
  const std::string input = "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\np\0q\r\n"s;
  ReplyReader reader;
  std::vector<std::string> got;
  for (char c : input) {
    ASSERT_TRUE(reader.feed(as_bytes(std::string_view(&c, 1))));
    for (auto& s : read_all(reader)) got.push_back(s);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"[$message,$ch,$" + std::string("p\0q", 3) + "]"}));
}

TEST(RespRead, ViewStaysValidAcrossFeed) {
  ReplyReader reader;
  ASSERT_TRUE(reader.feed(as_bytes("$3\r\nabc\r\n")));
  auto r = reader.next();
  ASSERT_TRUE(r && r->has_value());
  ASSERT_TRUE(reader.feed(as_bytes(std::string(5000, '+'))));  // hiredis' buffer moves; the view must not
  EXPECT_EQ((*r)->text(), "abc");
}

TEST(RespRead, BadTypeByteIsAStickyProtocolError) {
  ReplyReader reader;
  ASSERT_TRUE(reader.feed(as_bytes("+OK\r\n!nope\r\n")));
  auto first = reader.next();
  ASSERT_TRUE(first && first->has_value());
  auto second = reader.next();
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), ReplyError::protocol);
  EXPECT_NE(reader.error_text().find("Protocol error"), std::string_view::npos) << reader.error_text();
  EXPECT_FALSE(reader.feed(as_bytes("+OK\r\n")));
  EXPECT_FALSE(reader.next());
  reader.reset();
  ASSERT_TRUE(reader.feed(as_bytes("+OK\r\n")));
  EXPECT_EQ(read_all(reader), std::vector<std::string>{"+OK"});
}

TEST(RespRead, NestingDeeperThanHiredisAllowsIsAProtocolError) {
  ReplyReader reader;
  std::string deep;
  for (int i = 0; i < 12; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  ASSERT_TRUE(reader.feed(as_bytes(deep)));
  auto r = reader.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), ReplyError::protocol);
}

TEST(RespRead, BulkOverTheCapFailsOnceItsBytesPassTheCap) {
  // Memory stays within the cap plus one received chunk, whatever length
  // the header announces.
  ReplyReader reader(ReaderLimits{.max_reply_bytes = 1024, .max_elements = 16});
  ASSERT_TRUE(reader.feed(as_bytes("$100000\r\n")));
  const std::string chunk(600, 'x');
  ASSERT_TRUE(reader.feed(as_bytes(chunk)));
  EXPECT_EQ(read_all(reader), std::vector<std::string>{});  // incomplete, 609 bytes: under the cap
  ASSERT_TRUE(reader.feed(as_bytes(chunk)));
  auto r = reader.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), ReplyError::too_large);
  EXPECT_LE(reader.buffered_bytes(), 1024u + chunk.size());
}

TEST(RespRead, ArrayOverTheElementCapIsTooLarge) {
  ReplyReader reader(ReaderLimits{.max_reply_bytes = 1 << 20, .max_elements = 16});
  ASSERT_TRUE(reader.feed(as_bytes("*17\r\n")));
  auto r = reader.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), ReplyError::too_large);
}

TEST(RespRead, ManySmallStringsOverTheByteCapAreTooLarge) {
  ReplyReader reader(ReaderLimits{.max_reply_bytes = 2048, .max_elements = 1000});
  std::string input = "*100\r\n";
  for (int i = 0; i < 100; ++i) input += "$40\r\n" + std::string(40, 'v') + "\r\n";
  ASSERT_TRUE(reader.feed(as_bytes(input)));
  auto r = reader.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), ReplyError::too_large);
}

TEST(RespRead, ReplyExactlyAtTheCapPasses) {
  // One string node (16 bytes) plus its bytes.
  ReplyReader reader(ReaderLimits{.max_reply_bytes = 16 + 100, .max_elements = 4});
  std::string input = "$100\r\n" + std::string(100, 'z') + "\r\n";
  ASSERT_TRUE(reader.feed(as_bytes(input)));
  auto r = reader.next();
  ASSERT_TRUE(r && r->has_value());
  EXPECT_EQ((*r)->text().size(), 100u);
}

TEST(RespRead, PipelineOfAThousandRepliesInPieces) {
  std::string input;
  for (int i = 0; i < 1000; ++i) {
    switch (i % 3) {
      case 0: input += "+OK\r\n"; break;
      case 1: input += ":" + std::to_string(i) + "\r\n"; break;
      case 2: input += "$" + std::to_string(std::to_string(i).size()) + "\r\n" + std::to_string(i) + "\r\n"; break;
    }
  }
  ReplyReader reader;
  int seen = 0;
  for (size_t at = 0; at < input.size(); at += 97) {
    ASSERT_TRUE(reader.feed(as_bytes(std::string_view(input).substr(at, 97))));
    for (;;) {
      auto r = reader.next();
      ASSERT_TRUE(r);
      if (!r->has_value()) break;
      ReplyView v = **r;
      switch (seen % 3) {
        case 0: EXPECT_EQ(v.type(), ReplyType::status); break;
        case 1: EXPECT_EQ(v.integer(), seen); break;
        case 2: EXPECT_EQ(v.text(), std::to_string(seen)); break;
      }
      ++seen;
    }
  }
  EXPECT_EQ(seen, 1000);
}

TEST(RespRead, EncodedCommandsReadBackAsArraysOfStrings) {
  // A command is itself a valid RESP array: the two halves agree.
  std::mt19937 random(11);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> storage(1 + random() % 6);
    for (auto& s : storage) {
      s.resize(random() % 40);
      for (char& c : s) c = static_cast<char>(random());
    }
    std::vector<std::string_view> argv(storage.begin(), storage.end());
    std::string wire;
    append_command(wire, argv);
    ReplyReader reader;
    ASSERT_TRUE(reader.feed(as_bytes(wire)));
    auto r = reader.next();
    ASSERT_TRUE(r && r->has_value());
    ASSERT_EQ((*r)->size(), argv.size());
    for (size_t i = 0; i < argv.size(); ++i) EXPECT_EQ((**r)[i].text(), argv[i]);
  }
}

}  // namespace
}  // namespace mf::resp
