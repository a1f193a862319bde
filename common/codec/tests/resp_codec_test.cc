#include "common/codec/resp_codec.h"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace mf::resp {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

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
}

TEST(RespEncode, LengthsWithSeveralDigits) {
  const std::string long_argument(1234, 'x');
  std::vector<std::string_view> argv(12, "a");
  argv[11] = long_argument;
  std::string out;
  append_command(out, argv);
  std::string expected = "*12\r\n";
  for (int i = 0; i < 11; ++i) expected += "$1\r\na\r\n";
  expected += "$1234\r\n" + long_argument + "\r\n";
  EXPECT_EQ(out, expected);
  EXPECT_EQ(command_size(argv), expected.size());
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

// The replies of `input` fed in two pieces, cut at `cut`.
std::vector<std::string> read_in_two(std::string_view input, size_t cut) {
  ReplyReader reader;
  std::vector<std::string> got;
  for (std::string_view piece : {input.substr(0, cut), input.substr(cut)}) {
    if (!reader.feed(as_bytes(piece))) return {"feed refused"};
    for (auto& s : read_all(reader)) got.push_back(s);
  }
  if (reader.buffered_bytes() != 0) got.push_back("left over");
  return got;
}

// The replies of `input` fed one byte at a time.
std::vector<std::string> read_bytewise(std::string_view input) {
  ReplyReader reader;
  std::vector<std::string> got;
  for (char c : input) {
    if (!reader.feed(as_bytes(std::string_view(&c, 1)))) return {"feed refused"};
    for (auto& s : read_all(reader)) got.push_back(s);
  }
  return got;
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
    EXPECT_EQ(read_in_two(input, cut), (std::vector<std::string>{"[$hel\r\n,[:99]]", "+OK"})) << "cut at " << cut;
  }
}

TEST(RespRead, OneByteAtATime) {
  const std::string input = "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\np\0q\r\n"s;
  EXPECT_EQ(read_bytewise(input), (std::vector<std::string>{"[$message,$ch,$" + std::string("p\0q", 3) + "]"}));
}

TEST(RespRead, ViewStaysValidAcrossFeed) {
  ReplyReader reader;
  ASSERT_TRUE(reader.feed(as_bytes("$3\r\nabc\r\n")));
  auto r = reader.next();
  ASSERT_TRUE(r && r->has_value());
  ASSERT_TRUE(reader.feed(as_bytes(std::string(5000, '+'))));  // the input buffer moves; the view must not
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
  EXPECT_EQ(reader.error_text(), "Protocol error: RESP3 type byte (the client speaks RESP2): '!'");
  EXPECT_FALSE(reader.feed(as_bytes("+OK\r\n")));
  EXPECT_FALSE(reader.next());
  reader.reset();
  ASSERT_TRUE(reader.feed(as_bytes("+OK\r\n")));
  EXPECT_EQ(read_all(reader), std::vector<std::string>{"+OK"});
}

TEST(RespRead, NestingDeeperThanTheDepthCapIsAProtocolError) {
  ReplyReader reader;
  std::string deep;
  for (int i = 0; i < 12; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  ASSERT_TRUE(reader.feed(as_bytes(deep)));
  auto r = reader.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), ReplyError::protocol);
}

TEST(RespRead, BulkAnnouncedOverTheCapFailsAtItsHeader) {
  // No byte of a body that cannot fit is buffered.
  ReplyReader reader(ReaderLimits{.max_reply_bytes = 1024, .max_elements = 16});
  ASSERT_TRUE(reader.feed(as_bytes("$100000\r\n")));
  auto r = reader.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), ReplyError::too_large);
  EXPECT_EQ(reader.error_text(), "a bulk string over the configured reply size cap: \"100000\"");
}

TEST(RespRead, UnendedLineOverTheCapIsTooLarge) {
  // Memory stays within the cap plus one received chunk, whatever the
  // sender does not end.
  ReplyReader reader(ReaderLimits{.max_reply_bytes = 1024, .max_elements = 16});
  ASSERT_TRUE(reader.feed(as_bytes("+")));
  const std::string chunk(600, 'x');
  ASSERT_TRUE(reader.feed(as_bytes(chunk)));
  EXPECT_EQ(read_all(reader), std::vector<std::string>{});  // incomplete, 601 bytes: under the cap
  ASSERT_TRUE(reader.feed(as_bytes(chunk)));
  auto r = reader.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), ReplyError::too_large);
  EXPECT_LE(reader.buffered_bytes(), 1024u + chunk.size());
}

TEST(RespRead, NestedArrayWhoseStringsPassTheCapMidwayIsTooLarge) {
  ReplyReader reader(ReaderLimits{.max_reply_bytes = 200, .max_elements = 16});
  ASSERT_TRUE(reader.feed(as_bytes("*2\r\n*2\r\n$50\r\n" + std::string(50, 'a') + "\r\n$100\r\n")));
  auto r = reader.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), ReplyError::too_large);
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

// Each input is refused with a protocol error whole, split at every byte,
// and fed one byte at a time, after the valid reply before it; the error
// text says what was wrong.
struct Malformed {
  std::string input;
  std::string_view error_text;
};

const std::vector<Malformed>& malformed_inputs() {
  static const std::vector<Malformed> cases = {
      {"@3\r\nabc\r\n", "Protocol error: unknown type byte '@'"},
      {"!3\r\nabc\r\n", "Protocol error: RESP3 type byte (the client speaks RESP2): '!'"},
      {"\r\n", "Protocol error: unknown type byte 0x0d"},
      {" +OK\r\n", "Protocol error: unknown type byte 0x20"},
      {"OK\r\n", "Protocol error: unknown type byte 'O'"},
      {"%1\r\n+a\r\n+b\r\n", "Protocol error: RESP3 type byte (the client speaks RESP2): '%'"},
      {"_\r\n", "Protocol error: RESP3 type byte (the client speaks RESP2): '_'"},
      {"#t\r\n", "Protocol error: RESP3 type byte (the client speaks RESP2): '#'"},
      {"+OK\rX", "Protocol error: a CR not followed by LF in a line"},
      {"+O\nK\r\n", "Protocol error: an LF without CR in a line"},
      {"-ERR\n\r\n", "Protocol error: an LF without CR in a line"},
      {":\r\n", "Protocol error: an integer that is not a number: \"\""},
      {":12a\r\n", "Protocol error: an integer that is not a number: \"12a\""},
      {":+1\r\n", "Protocol error: an integer that is not a number: \"+1\""},
      {": 1\r\n", "Protocol error: an integer that is not a number: \" 1\""},
      {":1 \r\n", "Protocol error: an integer that is not a number: \"1 \""},
      {":-\r\n", "Protocol error: an integer that is not a number: \"-\""},
      {":007\r\n", "Protocol error: an integer that is not a number: \"007\""},
      {":-0\r\n", "Protocol error: an integer that is not a number: \"-0\""},
      {":-01\r\n", "Protocol error: an integer that is not a number: \"-01\""},
      {"$01\r\na\r\n", "Protocol error: a length or count that is not a number: \"01\""},
      {"*00\r\n", "Protocol error: a length or count that is not a number: \"00\""},
      {":0x10\r\n", "Protocol error: an integer that is not a number: \"0x10\""},
      {":9223372036854775808\r\n", "Protocol error: an integer that is not a number: \"9223372036854775808\""},
      {":-9223372036854775809\r\n", "Protocol error: an integer that is not a number: \"-9223372036854775809\""},
      {":123456789012345678901\r\n", "Protocol error: a length, count or integer longer than 20 characters"},
      {":1234567890123456789012345", "Protocol error: a length, count or integer longer than 20 characters"},
      {"$\r\n", "Protocol error: a length or count that is not a number: \"\""},
      {"$x\r\nab\r\n", "Protocol error: a length or count that is not a number: \"x\""},
      {"$1.5\r\nab\r\n", "Protocol error: a length or count that is not a number: \"1.5\""},
      {"$-2\r\n", "Protocol error: a negative length or count: \"-2\""},
      {"$-100\r\n", "Protocol error: a negative length or count: \"-100\""},
      {"$3\r\nabcd\r\n", "Protocol error: a bulk string not followed by CRLF"},
      {"$3\r\nab\r\n\r\n", "Protocol error: a bulk string not followed by CRLF"},
      {"$3\r\nabc\n\r", "Protocol error: a bulk string not followed by CRLF"},
      {"$3\nabc\r\n", "Protocol error: an LF without CR in a line"},
      {"$3\rabc\r\n", "Protocol error: a CR not followed by LF in a line"},
      {"*\r\n", "Protocol error: a length or count that is not a number: \"\""},
      {"*-2\r\n", "Protocol error: a negative length or count: \"-2\""},
      {"*two\r\n", "Protocol error: a length or count that is not a number: \"two\""},
      {"*2\r\n+a\r\n\x80\r\n", "Protocol error: unknown type byte 0x80"},
      {"*1\r\n*1\r\n$1\r\nab\r\n", "Protocol error: a bulk string not followed by CRLF"},
      {"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "Protocol error: arrays nested deeper than 8"},
  };
  return cases;
}

std::string error_after(ReplyReader& reader, std::string_view prefix, std::string_view input, size_t piece) {
  std::string got;
  const std::string whole = std::string(prefix) + std::string(input);
  for (size_t at = 0; at < whole.size(); at += piece) {
    if (!reader.feed(as_bytes(std::string_view(whole).substr(at, piece)))) return "feed refused before next()";
    for (;;) {
      auto r = reader.next();
      if (!r) {
        if (r.error() != ReplyError::protocol) return "not a protocol error";
        if (got != "+OK") return "the reply before was lost: " + got;
        return std::string(reader.error_text());
      }
      if (!r->has_value()) break;
      got += show(**r);
    }
  }
  return "accepted";
}

TEST(RespRead, MalformedInputIsAProtocolErrorWholeAndInPieces) {
  for (const Malformed& m : malformed_inputs()) {
    for (size_t piece : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, m.input.size() + 5}) {
      ReplyReader reader;
      EXPECT_EQ(error_after(reader, "+OK\r\n", m.input, piece), m.error_text)
          << "input " << testing::PrintToString(m.input) << " in pieces of " << piece;
      // Sticky: nothing more is read until reset().
      EXPECT_FALSE(reader.feed(as_bytes("+OK\r\n")));
      EXPECT_FALSE(reader.next());
    }
    // Split at every byte into two pieces.
    const std::string whole = "+OK\r\n" + m.input;
    for (size_t cut = 0; cut <= whole.size(); ++cut) {
      ReplyReader reader;
      std::string got;
      bool failed = false;
      for (std::string_view part : {std::string_view(whole).substr(0, cut), std::string_view(whole).substr(cut)}) {
        ASSERT_TRUE(failed || reader.feed(as_bytes(part)));
        while (!failed) {
          auto r = reader.next();
          if (!r) {
            failed = true;
            break;
          }
          if (!r->has_value()) break;
          got += show(**r);
        }
      }
      EXPECT_TRUE(failed) << testing::PrintToString(m.input) << " cut at " << cut;
      EXPECT_EQ(got, "+OK") << testing::PrintToString(m.input) << " cut at " << cut;
      EXPECT_EQ(reader.error_text(), m.error_text) << testing::PrintToString(m.input) << " cut at " << cut;
    }
  }
}

TEST(RespRead, IncompleteInputIsNeitherAReplyNorAnError) {
  // Prefixes of valid replies wait for more bytes.
  for (std::string_view prefix : {"+", "+OK", "+OK\r", "$", "$5", "$5\r\n", "$5\r\nhel", "$5\r\nhello",
                                  "$5\r\nhello\r", ":-", "*2\r\n", "*2\r\n:1\r\n", "*1\r\n*1\r\n$0\r\n\r",
                                  "$-1\r", "*-1\r"}) {
    ReplyReader reader;
    ASSERT_TRUE(reader.feed(as_bytes(prefix)));
    auto r = reader.next();
    ASSERT_TRUE(r) << prefix << ": " << reader.error_text();
    EXPECT_FALSE(r->has_value()) << prefix;
  }
}

TEST(RespRead, EdgeValuesAreRead) {
  ReplyReader reader;
  const std::string input =
      ":9223372036854775807\r\n:-9223372036854775808\r\n:0\r\n:-10\r\n+\r\n-\r\n$0\r\n\r\n*0\r\n"
      "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:8\r\n"
      "$2\r\n\r\n\r\n+a\tb c\r\n";
  ASSERT_TRUE(reader.feed(as_bytes(input)));
  EXPECT_EQ(read_all(reader), (std::vector<std::string>{":9223372036854775807", ":-9223372036854775808", ":0", ":-10",
                                                        "+", "-", "$", "[]", "[[[[[[[[:8]]]]]]]]", "$\r\n",
                                                        "+a\tb c"}));
}

TEST(RespRead, ADepthCapOfTwo) {
  ReplyReader reader(ReaderLimits{.max_depth = 2});
  // Empty and nil arrays open nothing: they fit at the cap.
  ASSERT_TRUE(reader.feed(as_bytes("*1\r\n*1\r\n:1\r\n*1\r\n*2\r\n*0\r\n*-1\r\n*1\r\n*1\r\n*1\r\n:1\r\n")));
  EXPECT_EQ(read_all(reader), (std::vector<std::string>{"[[:1]]", "[[[],nil]]", "error:protocol error"}));
  EXPECT_EQ(reader.error_text(), "Protocol error: arrays nested deeper than 2");
}

// Valid replies of every shape, each read the same whole, split at every
// byte into two pieces, and one byte at a time.
TEST(RespRead, ValidRepliesSplitAtEveryByte) {
  const std::vector<std::pair<std::string, std::string>> replies = {
      {"+OK\r\n", "+OK"},
      {"-ERR unknown command 'FOO'\r\n", "-ERR unknown command 'FOO'"},
      {":0\r\n", ":0"},
      {":-1234567890123\r\n", ":-1234567890123"},
      {"$-1\r\n", "nil"},
      {"*-1\r\n", "nil"},
      {"$0\r\n\r\n", "$"},
      {"$4\r\n\r\n\r\n\r\n", "$\r\n\r\n"},
      {"$11\r\nhello world\r\n", "$hello world"},
      {"*0\r\n", "[]"},
      {"*3\r\n$9\r\nsubscribe\r\n$4\r\nchan\r\n:1\r\n", "[$subscribe,$chan,:1]"},
      {"*2\r\n*3\r\n:0\r\n:5460\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n*0\r\n",
       "[[:0,:5460,[$127.0.0.1,:7000]],[]]"},
      {"*4\r\n$-1\r\n*-1\r\n+x\r\n-y\r\n", "[nil,nil,+x,-y]"},
      {"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n$1\r\nz\r\n", "[[[[[[[[$z]]]]]]]]"},
  };
  std::string all;
  std::vector<std::string> expected;
  for (const auto& [wire, shown] : replies) {
    all += wire;
    expected.push_back(shown);
    for (size_t cut = 0; cut <= wire.size(); ++cut) {
      EXPECT_EQ(read_in_two(wire, cut), std::vector<std::string>{shown})
          << testing::PrintToString(wire) << " cut at " << cut;
    }
  }
  // All of them back to back: at every cut, and byte by byte.
  for (size_t cut = 0; cut <= all.size(); ++cut) ASSERT_EQ(read_in_two(all, cut), expected) << "cut at " << cut;
  EXPECT_EQ(read_bytewise(all), expected);
}

TEST(RespRead, ALargeReplyInManyPiecesKeepsItsPlace) {
  // 20,000 elements in 100-byte pieces: read once (the reader resumes), and
  // the input buffer holds no more than the unread part plus a piece.
  std::string wire = "*20000\r\n";
  for (int i = 0; i < 20000; ++i) wire += "$5\r\n" + std::to_string(10000 + i) + "\r\n";
  ReplyReader reader;
  std::optional<ReplyView> reply;
  for (size_t at = 0; at < wire.size() && !reply; at += 100) {
    ASSERT_TRUE(reader.feed(as_bytes(std::string_view(wire).substr(at, 100))));
    EXPECT_LT(reader.buffered_bytes(), 200u);
    auto r = reader.next();
    ASSERT_TRUE(r) << reader.error_text();
    if (r->has_value()) reply = **r;
  }
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->size(), 20000u);
  EXPECT_EQ((*reply)[0].text(), "10000");
  EXPECT_EQ((*reply)[19999].text(), "29999");
}

TEST(RespRead, ResetForgetsAPartialReply) {
  ReplyReader reader;
  ASSERT_TRUE(reader.feed(as_bytes("*3\r\n:1\r\n$5\r\nab")));
  EXPECT_EQ(read_all(reader), std::vector<std::string>{});
  reader.reset();
  EXPECT_EQ(reader.buffered_bytes(), 0u);
  ASSERT_TRUE(reader.feed(as_bytes(":2\r\n")));
  EXPECT_EQ(read_all(reader), std::vector<std::string>{":2"});
}

}  // namespace
}  // namespace mf::resp
