#include "common/codec/websocket_codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/codec/utf8_validator.h"

namespace mf::ws {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint8_t kKey[4] = {0x37, 0xFA, 0x21, 0x3D};

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }
std::string string_of(std::span<const uint8_t> s) { return std::string(s.begin(), s.end()); }

// A frame as a client sends it: masked.
Bytes client_frame(Opcode op, bool fin, std::string_view payload, const uint8_t* key = kKey) {
  Bytes out(max_header_bytes + payload.size());
  const size_t n = encode_frame(out, op, fin, bytes_of(payload), key);
  EXPECT_NE(n, 0u);
  out.resize(n);
  return out;
}

// A frame as a server sends it: unmasked.
Bytes server_frame(Opcode op, bool fin, std::string_view payload) {
  return client_frame(op, fin, payload, nullptr);
}

Bytes close_frame(uint16_t code, std::string_view reason) {
  uint8_t payload[125];
  const size_t n = encode_close_payload(payload, code, reason);
  return client_frame(Opcode::close, true, {reinterpret_cast<const char*>(payload), n});
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Records every callback verbatim, chunk by chunk.
struct ChunkRecorder {
  struct Chunk {
    std::string data;
    const uint8_t* pointer;
    bool text, first, last;
  };
  std::vector<Chunk> chunks;
  std::vector<std::string> events;  // everything but data, in order

  void on_message_data(std::span<const uint8_t> c, bool text, bool first, bool last) {
    chunks.push_back({string_of(c), c.data(), text, first, last});
    events.push_back("data");
  }
  void on_ping(std::span<const uint8_t> p) { events.push_back("ping:" + string_of(p)); }
  void on_pong(std::span<const uint8_t> p) { events.push_back("pong:" + string_of(p)); }
  void on_close(uint16_t code, std::string_view reason) {
    events.push_back("close:" + std::to_string(code) + ":" + std::string(reason));
  }
  void on_error(uint16_t code, std::string_view why) {
    events.push_back("error:" + std::to_string(code) + ":" + std::string(why));
  }
};

// Reassembles messages so that runs with different chunking compare equal;
// checks the chunk flags on the way.
struct MessageRecorder {
  std::vector<std::string> events;
  std::string partial;
  bool in_message = false;

  void on_message_data(std::span<const uint8_t> c, bool text, bool first, bool last) {
    EXPECT_EQ(first, !in_message) << "first flag out of place";
    in_message = !last;
    if (first) partial.clear();
    partial += string_of(c);
    if (last) events.push_back((text ? "text:" : "binary:") + partial);
  }
  void on_ping(std::span<const uint8_t> p) { events.push_back("ping:" + string_of(p)); }
  void on_pong(std::span<const uint8_t> p) { events.push_back("pong:" + string_of(p)); }
  void on_close(uint16_t code, std::string_view reason) {
    events.push_back("close:" + std::to_string(code) + ":" + std::string(reason));
  }
  void on_error(uint16_t code, std::string_view why) {
    events.push_back("error:" + std::to_string(code) + ":" + std::string(why));
  }
};

// Feeds a copy, for inputs that are reused or temporary (decoding unmasks
// in place).
template <class Handler>
void feed_copy(Decoder& decoder, Bytes bytes, Handler& h) {
  decoder.feed(bytes, h);
}

struct Harness {
  DecoderConfig config;
  Decoder decoder;
  explicit Harness(Role role = Role::server, DecoderConfig c = {})
      : config(c), decoder(role, &config) {}
};

// Decodes `stream` fed in pieces cut at `cuts` (ascending offsets).
std::vector<std::string> decode(Bytes stream, const std::vector<size_t>& cuts = {},
                                Role role = Role::server, DecoderConfig config = {}) {
  Harness hs(role, config);
  MessageRecorder rec;
  size_t from = 0;
  for (size_t cut : cuts) {
    hs.decoder.feed({stream.data() + from, cut - from}, rec);
    from = cut;
  }
  hs.decoder.feed({stream.data() + from, stream.size() - from}, rec);
  return rec.events;
}

std::string first_error(const Bytes& stream, Role role = Role::server, DecoderConfig config = {}) {
  for (const std::string& e : decode(stream, {}, role, config)) {
    if (e.starts_with("error:")) return e.substr(6, 4);
  }
  return "none";
}

// --- single frames -------------------------------------------------------

TEST(WebSocketDecoder, WholeSingleFrameIsOneZeroCopyChunk) {
  Bytes in = client_frame(Opcode::text, true, "{\"type\":\"ping\"}");
  Harness hs;
  ChunkRecorder rec;
  hs.decoder.feed(in, rec);
  ASSERT_EQ(rec.chunks.size(), 1u);
  const auto& c = rec.chunks[0];
  EXPECT_EQ(c.data, "{\"type\":\"ping\"}");
  EXPECT_TRUE(c.text && c.first && c.last);
  EXPECT_EQ(c.pointer, in.data() + 6);  // points into the caller's buffer
  EXPECT_EQ(string_of({in.data() + 6, in.size() - 6}), "{\"type\":\"ping\"}");  // unmasked in place
  EXPECT_FALSE(hs.decoder.in_message());
  EXPECT_FALSE(hs.decoder.failed());
}

TEST(WebSocketDecoder, EmptyMessageIsOneCall) {
  Bytes in = client_frame(Opcode::text, true, "");
  Harness hs;
  ChunkRecorder rec;
  hs.decoder.feed(in, rec);
  ASSERT_EQ(rec.chunks.size(), 1u);
  EXPECT_EQ(rec.chunks[0].data, "");
  EXPECT_TRUE(rec.chunks[0].first && rec.chunks[0].last && rec.chunks[0].text);
}

TEST(WebSocketDecoder, FrameSplitAcrossFeedsComesAsChunks) {
  Bytes in = client_frame(Opcode::text, true, "hello world");
  Harness hs;
  ChunkRecorder rec;
  hs.decoder.feed({in.data(), 9}, rec);  // header (6) + "hel"
  EXPECT_TRUE(hs.decoder.in_message());
  hs.decoder.feed({in.data() + 9, in.size() - 9}, rec);
  ASSERT_EQ(rec.chunks.size(), 2u);
  EXPECT_EQ(rec.chunks[0].data, "hel");
  EXPECT_TRUE(rec.chunks[0].first && !rec.chunks[0].last);
  EXPECT_EQ(rec.chunks[1].data, "lo world");
  EXPECT_TRUE(!rec.chunks[1].first && rec.chunks[1].last);
  EXPECT_FALSE(hs.decoder.in_message());
}

// Liveness counts frames (docs/protocol.md section 7): the optional hook fires once per
// data frame, at its last byte, never for bytes of a frame still incomplete.
struct FrameCounter : ChunkRecorder {
  int frames = 0;
  void on_frame_complete() {
    ++frames;
    events.push_back("frame");
  }
};

TEST(WebSocketDecoder, FrameCompleteFiresAtTheLastByteOfEachDataFrame) {
  Bytes in = concat({client_frame(Opcode::text, false, "ab"), client_frame(Opcode::ping, true, "p"),
                     client_frame(Opcode::continuation, true, "cd")});
  Harness hs;
  FrameCounter rec;
  size_t first_frame = client_frame(Opcode::text, false, "ab").size();
  // One byte at a time: nothing until the first frame's last byte.
  for (size_t i = 0; i + 1 < first_frame; ++i) {
    hs.decoder.feed({in.data() + i, 1}, rec);
    EXPECT_EQ(rec.frames, 0) << i;
  }
  hs.decoder.feed({in.data() + first_frame - 1, in.size() - first_frame + 1}, rec);
  EXPECT_EQ(rec.frames, 2) << "the two data frames; the ping reports itself";
  // "a" alone, then the frame ends with "b"; the ping; the last frame "cd".
  std::vector<std::string> expected = {"data", "frame", "data", "ping:p", "frame", "data"};
  EXPECT_EQ(rec.events, expected);
}

TEST(WebSocketDecoder, SixteenAndSixtyFourBitLengths) {
  const std::string medium(300, 'm');
  const std::string large(70000, 'L');
  DecoderConfig config;
  config.max_message_bytes = 100000;
  const Bytes m = client_frame(Opcode::text, true, medium);
  const Bytes l = client_frame(Opcode::text, true, large);
  EXPECT_EQ(m[1], 0x80 | 126);
  EXPECT_EQ(l[1], 0x80 | 127);
  EXPECT_EQ(decode(concat({m, l}), {}, Role::server, config),
            (std::vector<std::string>{"text:" + medium, "text:" + large}));
}

TEST(WebSocketDecoder, BinaryRefusedByDefaultAtTheHeader) {
  Bytes in = client_frame(Opcode::binary, true, "abc");
  Harness hs;
  MessageRecorder rec;
  hs.decoder.feed({in.data(), 2}, rec);  // first two header bytes suffice
  EXPECT_EQ(rec.events, std::vector<std::string>{"error:1003:binary messages not accepted"});
  EXPECT_TRUE(hs.decoder.failed());
}

TEST(WebSocketDecoder, BinaryAcceptedWhenConfigured) {
  DecoderConfig config;
  config.accept_binary = true;
  Bytes in = client_frame(Opcode::binary, true, std::string("\x00\xFF\x80", 3));
  EXPECT_EQ(decode(in, {}, Role::server, config),
            std::vector<std::string>{"binary:" + std::string("\x00\xFF\x80", 3)});
}

// --- RFC 6455 violations -> 1002 ----------------------------------------

TEST(WebSocketDecoder, UnmaskedClientFrameIs1002) {
  EXPECT_EQ(first_error(server_frame(Opcode::text, true, "hi")), "1002");
}

TEST(WebSocketDecoder, EachReservedBitIs1002) {
  for (uint8_t bit : {0x40, 0x20, 0x10}) {
    Bytes in = client_frame(Opcode::text, true, "hi");
    in[0] |= bit;
    EXPECT_EQ(first_error(in), "1002") << int(bit);
  }
}

TEST(WebSocketDecoder, UnknownOpcodesAre1002) {
  for (int op : {3, 4, 5, 6, 7, 11, 12, 13, 14, 15}) {
    const Bytes in = client_frame(static_cast<Opcode>(op), true, "");
    EXPECT_EQ(first_error(in), "1002") << op;
  }
}

TEST(WebSocketDecoder, FragmentedControlFrameIs1002) {
  for (Opcode op : {Opcode::ping, Opcode::pong, Opcode::close}) {
    EXPECT_EQ(first_error(client_frame(op, false, "")), "1002");
  }
}

TEST(WebSocketDecoder, ControlPayloadLimitIs125) {
  const std::string max(125, 'p');
  EXPECT_EQ(decode(client_frame(Opcode::ping, true, max)), std::vector<std::string>{"ping:" + max});
  for (Opcode op : {Opcode::ping, Opcode::pong, Opcode::close}) {
    EXPECT_EQ(first_error(client_frame(op, true, std::string(126, 'p'))), "1002");
  }
}

TEST(WebSocketDecoder, ContinuationWithoutMessageIs1002) {
  EXPECT_EQ(first_error(client_frame(Opcode::continuation, true, "x")), "1002");
}

TEST(WebSocketDecoder, NewMessageInsideFragmentedMessageIs1002) {
  const Bytes start = client_frame(Opcode::text, false, "a");
  EXPECT_EQ(first_error(concat({start, client_frame(Opcode::text, true, "b")})), "1002");
  DecoderConfig binary_ok;
  binary_ok.accept_binary = true;
  EXPECT_EQ(first_error(concat({start, client_frame(Opcode::binary, true, "b")}), Role::server,
                        binary_ok),
            "1002");
}

TEST(WebSocketDecoder, SixtyFourBitLengthWithMsbSetIs1002) {
  Bytes in = {0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
  EXPECT_EQ(first_error(in), "1002");
  Harness hs;
  MessageRecorder rec;
  hs.decoder.feed({in.data(), 10}, rec);  // fails before the mask key arrives
  EXPECT_TRUE(hs.decoder.failed());
}

// --- close frames --------------------------------------------------------

TEST(WebSocketDecoder, CloseWithoutPayloadReports1005) {
  EXPECT_EQ(decode(client_frame(Opcode::close, true, "")), std::vector<std::string>{"close:1005:"});
}

TEST(WebSocketDecoder, CloseWithCodeAndReason) {
  EXPECT_EQ(decode(close_frame(1000, "bye \xE2\x82\xAC")),
            std::vector<std::string>{"close:1000:bye \xE2\x82\xAC"});
}

TEST(WebSocketDecoder, OneByteClosePayloadIs1002) {
  EXPECT_EQ(first_error(client_frame(Opcode::close, true, "\x03")), "1002");
}

TEST(WebSocketDecoder, CloseCodesAllowedOnTheWire) {
  for (int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
                   3999, 4000, 4999}) {
    EXPECT_EQ(decode(close_frame(code, "")),
              std::vector<std::string>{"close:" + std::to_string(code) + ":"})
        << code;
  }
  for (int code : {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    const char payload[2] = {static_cast<char>(code >> 8), static_cast<char>(code)};
    EXPECT_EQ(first_error(client_frame(Opcode::close, true, {payload, 2})), "1002") << code;
  }
}

TEST(WebSocketDecoder, CloseReasonMustBeUtf8) {
  EXPECT_EQ(first_error(close_frame(1000, "bad \xC0\xAF")), "1007");
  EXPECT_EQ(first_error(close_frame(1000, "cut \xE2\x82")), "1007");
}

TEST(WebSocketDecoder, InputAfterCloseIsIgnored) {
  Bytes in = concat({close_frame(1001, "x"), client_frame(Opcode::text, true, "late"),
                           client_frame(Opcode::ping, true, "late")});
  Harness hs;
  MessageRecorder rec;
  hs.decoder.feed(in, rec);
  feed_copy(hs.decoder, client_frame(Opcode::text, true, "later"), rec);
  EXPECT_EQ(rec.events, std::vector<std::string>{"close:1001:x"});
  EXPECT_FALSE(hs.decoder.failed());
}

// --- UTF-8 ---------------------------------------------------------------

TEST(WebSocketDecoder, InvalidUtf8TextIs1007AndFailsFast) {
  EXPECT_EQ(first_error(client_frame(Opcode::text, true, "ok \xED\xA0\x80")), "1007");
  // The bad byte is reported before the rest of the frame arrives, and no
  // chunk containing it reaches the handler.
  Bytes in = client_frame(Opcode::text, true, "abc\xFF" + std::string(100, 'z'));
  Harness hs;
  ChunkRecorder rec;
  hs.decoder.feed({in.data(), 8 + 4}, rec);  // header (8) + "abc\xFF"
  EXPECT_TRUE(hs.decoder.failed());
  EXPECT_TRUE(rec.chunks.empty());
  EXPECT_EQ(rec.events, std::vector<std::string>{"error:1007:invalid UTF-8 in text message"});
}

TEST(WebSocketDecoder, TextEndingInsideACharacterIs1007) {
  EXPECT_EQ(first_error(client_frame(Opcode::text, true, "euro \xE2\x82")), "1007");
  EXPECT_EQ(first_error(concat({client_frame(Opcode::text, false, "euro \xE2\x82"),
                                client_frame(Opcode::continuation, true, "")})),
            "1007");
}

TEST(WebSocketDecoder, CharacterSplitAcrossFragmentsIsValid) {
  Bytes in = concat({client_frame(Opcode::text, false, "\xF0\x9F"),
                           client_frame(Opcode::continuation, false, "\x98"),
                           client_frame(Opcode::continuation, true, "\x80!")});
  EXPECT_EQ(decode(in), std::vector<std::string>{"text:\xF0\x9F\x98\x80!"});
}

TEST(WebSocketDecoder, BinaryIsNotUtf8Checked) {
  DecoderConfig config;
  config.accept_binary = true;
  EXPECT_EQ(decode(client_frame(Opcode::binary, true, "\xFF\xFE"), {}, Role::server, config),
            std::vector<std::string>{"binary:\xFF\xFE"});
}

TEST(WebSocketDecoder, TextIsDeliveredUncheckedWhenTheHandlerChecksIt) {
  DecoderConfig config;
  config.check_text_utf8 = false;
  EXPECT_EQ(decode(client_frame(Opcode::text, true, "ok \xED\xA0\x80"), {}, Role::server, config),
            std::vector<std::string>{"text:ok \xED\xA0\x80"});
  EXPECT_EQ(decode(concat({client_frame(Opcode::text, false, "euro \xE2\x82"),
                           client_frame(Opcode::continuation, true, "")}),
                   {}, Role::server, config),
            std::vector<std::string>{"text:euro \xE2\x82"});
  // A close reason is still the decoder's to check.
  EXPECT_EQ(first_error(close_frame(1000, "bad \xC0\xAF"), Role::server, config), "1007");
}

TEST(WebSocketDecoder, AConfigurationChosenBeforeTheFirstFrameApplies) {
  DecoderConfig checked;
  DecoderConfig unchecked;
  unchecked.check_text_utf8 = false;
  Decoder decoder(Role::server, &checked);
  decoder.set_config(&unchecked);
  MessageRecorder rec;
  Bytes in = client_frame(Opcode::text, true, "\xFF");
  decoder.feed(in, rec);
  EXPECT_FALSE(decoder.failed());
  EXPECT_EQ(rec.events, std::vector<std::string>{"text:\xFF"});
}

// --- fragmentation -------------------------------------------------------

TEST(WebSocketDecoder, FragmentedMessageWithInterleavedControlFrames) {
  Bytes in = concat({client_frame(Opcode::text, false, "Hel"),
                           client_frame(Opcode::ping, true, "p1"),
                           client_frame(Opcode::continuation, false, ""),
                           client_frame(Opcode::pong, true, "p2"),
                           client_frame(Opcode::continuation, true, "lo")});
  Harness hs;
  ChunkRecorder rec;
  hs.decoder.feed({in.data(), in.size() - 1}, rec);  // all but the final "o"
  EXPECT_TRUE(hs.decoder.in_message());
  hs.decoder.feed({in.data() + in.size() - 1, 1}, rec);
  EXPECT_FALSE(hs.decoder.in_message());
  EXPECT_EQ(rec.events, (std::vector<std::string>{"data", "ping:p1", "pong:p2", "data", "data"}));
  ASSERT_EQ(rec.chunks.size(), 3u);
  EXPECT_EQ(rec.chunks[0].data, "Hel");
  EXPECT_TRUE(rec.chunks[0].first && !rec.chunks[0].last);
  EXPECT_EQ(rec.chunks[1].data, "l");
  EXPECT_TRUE(!rec.chunks[1].first && !rec.chunks[1].last);
  EXPECT_EQ(rec.chunks[2].data, "o");
  EXPECT_TRUE(!rec.chunks[2].first && rec.chunks[2].last);
  for (const auto& c : rec.chunks) EXPECT_TRUE(c.text);  // continuations inherit text
}

TEST(WebSocketDecoder, EmptyFragmentsThenFinalEmptyFragmentGiveOneCall) {
  Bytes in = concat({client_frame(Opcode::text, false, ""),
                           client_frame(Opcode::continuation, false, ""),
                           client_frame(Opcode::continuation, true, "")});
  Harness hs;
  ChunkRecorder rec;
  feed_copy(hs.decoder, in, rec);
  ASSERT_EQ(rec.chunks.size(), 1u);
  EXPECT_TRUE(rec.chunks[0].first && rec.chunks[0].last && rec.chunks[0].data.empty());
}

TEST(WebSocketDecoder, ControlFrameSplitAcrossFeedsIsBufferedWhole) {
  const std::string payload(125, 'q');
  Bytes in = client_frame(Opcode::ping, true, payload);
  for (size_t cut = 1; cut < in.size(); ++cut) {
    EXPECT_EQ(decode(in, {cut}), std::vector<std::string>{"ping:" + payload}) << cut;
  }
}

// --- size limit ----------------------------------------------------------

TEST(WebSocketDecoder, SizeLimitSingleFrame) {
  DecoderConfig config;
  config.max_message_bytes = 1000;
  const std::string at(1000, 'a');
  EXPECT_EQ(decode(client_frame(Opcode::text, true, at), {}, Role::server, config),
            std::vector<std::string>{"text:" + at});
  Bytes over = client_frame(Opcode::text, true, at + "b");
  EXPECT_EQ(first_error(over, Role::server, config), "1009");
  // Reported from the header alone (16-bit length form).
  Harness hs(Role::server, config);
  MessageRecorder rec;
  hs.decoder.feed({over.data(), 4}, rec);
  EXPECT_EQ(rec.events, std::vector<std::string>{"error:1009:message too big"});
}

TEST(WebSocketDecoder, SizeLimitDefaultIs16KiB) {
  const std::string at(16 * 1024, 'a');
  EXPECT_EQ(decode(client_frame(Opcode::text, true, at)), std::vector<std::string>{"text:" + at});
  EXPECT_EQ(first_error(client_frame(Opcode::text, true, at + "b")), "1009");
}

TEST(WebSocketDecoder, SizeLimitAcrossFragments) {
  DecoderConfig config;
  config.max_message_bytes = 10;
  const Bytes at = concat({client_frame(Opcode::text, false, "12345"),
                           client_frame(Opcode::ping, true, "ping payload does not count"),
                           client_frame(Opcode::continuation, false, "678"),
                           client_frame(Opcode::continuation, true, "90")});
  EXPECT_EQ(decode(at, {}, Role::server, config),
            (std::vector<std::string>{"ping:ping payload does not count", "text:1234567890"}));
  Bytes over = concat({client_frame(Opcode::text, false, "12345"),
                             client_frame(Opcode::continuation, false, "678"),
                             client_frame(Opcode::continuation, true, "901")});
  EXPECT_EQ(first_error(over, Role::server, config), "1009");
  // The count restarts with each message.
  const Bytes two = concat({client_frame(Opcode::text, false, "12345"),
                            client_frame(Opcode::continuation, true, "67890"),
                            client_frame(Opcode::text, true, "abcdefghij")});
  EXPECT_EQ(decode(two, {}, Role::server, config),
            (std::vector<std::string>{"text:1234567890", "text:abcdefghij"}));
}

TEST(WebSocketDecoder, HugeSixtyFourBitLengthIs1009) {
  Bytes in = {0x81, 0x80 | 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  EXPECT_EQ(first_error(in), "1009");
}

// --- roles ---------------------------------------------------------------

TEST(WebSocketDecoder, ClientRoleDecodesUnmaskedAndRejectsMasked) {
  DecoderConfig config;
  config.accept_binary = true;
  Bytes in = concat({server_frame(Opcode::text, true, "joined"),
                           server_frame(Opcode::ping, true, "hb"),
                           server_frame(Opcode::binary, true, "\x01\x02"),
                           server_frame(Opcode::close, true, "\x03\xE9")});
  EXPECT_EQ(decode(in, {}, Role::client, config),
            (std::vector<std::string>{"text:joined", "ping:hb", "binary:\x01\x02", "close:1001:"}));
  EXPECT_EQ(first_error(client_frame(Opcode::text, true, "x"), Role::client), "1002");
}

// --- halt, failure -------------------------------------------------------

TEST(WebSocketDecoder, HaltFromCallbackStopsAtOnce) {
  struct Halting : MessageRecorder {
    Decoder* decoder = nullptr;
    void on_ping(std::span<const uint8_t> p) {
      MessageRecorder::on_ping(p);
      decoder->halt();
    }
  };
  Bytes in = concat({client_frame(Opcode::text, true, "one"),
                           client_frame(Opcode::ping, true, "stop"),
                           client_frame(Opcode::text, true, "two")});
  Harness hs;
  Halting rec;
  rec.decoder = &hs.decoder;
  feed_copy(hs.decoder, in, rec);
  feed_copy(hs.decoder, in, rec);
  EXPECT_EQ(rec.events, (std::vector<std::string>{"text:one", "ping:stop"}));
  EXPECT_FALSE(hs.decoder.failed());
}

TEST(WebSocketDecoder, HaltFromDataCallbackStopsMidFrame) {
  struct Halting : ChunkRecorder {
    Decoder* decoder = nullptr;
    void on_message_data(std::span<const uint8_t> c, bool text, bool first, bool last) {
      ChunkRecorder::on_message_data(c, text, first, last);
      decoder->halt();
    }
  };
  Bytes in = concat({client_frame(Opcode::text, true, "one"),
                           client_frame(Opcode::text, true, "two")});
  Harness hs;
  Halting rec;
  rec.decoder = &hs.decoder;
  feed_copy(hs.decoder, in, rec);
  EXPECT_EQ(rec.chunks.size(), 1u);
}

TEST(WebSocketDecoder, HaltBeforeFeedDropsInput) {
  Harness hs;
  MessageRecorder rec;
  hs.decoder.halt();
  feed_copy(hs.decoder, client_frame(Opcode::text, true, "x"), rec);
  EXPECT_TRUE(rec.events.empty());
  EXPECT_FALSE(hs.decoder.failed());
}

TEST(WebSocketDecoder, InputAfterErrorIsIgnoredAndHaltKeepsFailed) {
  Harness hs;
  MessageRecorder rec;
  feed_copy(hs.decoder, server_frame(Opcode::text, true, "unmasked"), rec);
  feed_copy(hs.decoder, client_frame(Opcode::text, true, "fine"), rec);
  EXPECT_EQ(rec.events.size(), 1u);
  EXPECT_TRUE(hs.decoder.failed());
  hs.decoder.halt();
  EXPECT_TRUE(hs.decoder.failed());
}

TEST(WebSocketDecoder, EmptyFeedIsHarmless) {
  Harness hs;
  MessageRecorder rec;
  hs.decoder.feed({}, rec);
  EXPECT_TRUE(rec.events.empty());
}

TEST(WebSocketDecoder, ObjectIsSmall) {
  EXPECT_LE(sizeof(Decoder), 160u);
}

// --- split feeding -------------------------------------------------------

Bytes sample_stream() {
  return concat({client_frame(Opcode::text, true, "{\"type\":\"join\"}"),
                 client_frame(Opcode::text, true, ""),
                 client_frame(Opcode::text, true, std::string(300, 'x')),
                 client_frame(Opcode::text, false, "fr\xC3"),
                 client_frame(Opcode::ping, true, "in between"),
                 client_frame(Opcode::continuation, false, "\xA9"),
                 client_frame(Opcode::pong, true, ""),
                 client_frame(Opcode::continuation, true, "gment\xE2\x82\xAC"),
                 client_frame(Opcode::ping, true, std::string(125, 'p')),
                 close_frame(1000, "done")});
}

TEST(WebSocketDecoder, SplitAtEveryBoundaryMatchesWhole) {
  Bytes in = sample_stream();
  const auto whole = decode(in);
  ASSERT_EQ(whole.size(), 8u);
  EXPECT_EQ(whole[5], "text:fr\xC3\xA9gment\xE2\x82\xAC");
  EXPECT_EQ(whole.back(), "close:1000:done");
  for (size_t cut = 0; cut <= in.size(); ++cut) ASSERT_EQ(decode(in, {cut}), whole) << cut;
  std::vector<size_t> every;
  for (size_t i = 1; i < in.size(); ++i) every.push_back(i);
  EXPECT_EQ(decode(in, every), whole);
}

TEST(WebSocketDecoder, SplitFeedingMatchesWholeOnErrors) {
  const Bytes streams[] = {
      concat({client_frame(Opcode::text, false, "ab"), client_frame(Opcode::ping, true, "x"),
              client_frame(Opcode::continuation, true, "c\xFF")}),
      concat({client_frame(Opcode::text, true, "ok"), client_frame(Opcode::close, true, "\x03")}),
      concat({client_frame(Opcode::text, true, "ok"), server_frame(Opcode::text, true, "no")}),
  };
  for (const Bytes& in : streams) {
    const auto whole = decode(in);
    ASSERT_TRUE(whole.back().starts_with("error:"));
    for (size_t cut = 0; cut <= in.size(); ++cut) ASSERT_EQ(decode(in, {cut}), whole) << cut;
    std::vector<size_t> every;
    for (size_t i = 1; i < in.size(); ++i) every.push_back(i);
    EXPECT_EQ(decode(in, every), whole);
  }
}

// --- encoding ------------------------------------------------------------

TEST(WebSocketEncoder, HeaderUsesMinimalLengthForm) {
  struct Case {
    uint64_t length;
    size_t size;
  } cases[] = {{0, 2}, {125, 2}, {126, 4}, {65535, 4}, {65536, 10}, {1ull << 40, 10}};
  for (const Case& c : cases) {
    uint8_t out[max_header_bytes];
    EXPECT_EQ(encode_header(out, Opcode::text, true, c.length, nullptr), c.size) << c.length;
    EXPECT_EQ(encode_header(out, Opcode::text, true, c.length, kKey), c.size + 4) << c.length;
    EXPECT_EQ(out[0], 0x81);
    EXPECT_EQ(out[1] & 0x80, 0x80);
    EXPECT_EQ(Bytes(out + c.size, out + c.size + 4), Bytes(kKey, kKey + 4));
    uint64_t decoded = out[1] & 0x7F;
    if (c.size > 2) {
      decoded = 0;
      for (size_t i = 2; i < c.size; ++i) decoded = (decoded << 8) | out[i];
    }
    EXPECT_EQ(decoded, c.length);
  }
}

TEST(WebSocketEncoder, HeaderExactBytes) {
  uint8_t out[max_header_bytes];
  ASSERT_EQ(encode_header(out, Opcode::close, true, 2, nullptr), 2u);
  EXPECT_EQ(Bytes(out, out + 2), (Bytes{0x88, 0x02}));
  ASSERT_EQ(encode_header(out, Opcode::continuation, false, 300, nullptr), 4u);
  EXPECT_EQ(Bytes(out, out + 4), (Bytes{0x00, 126, 0x01, 0x2C}));
  ASSERT_EQ(encode_header(out, Opcode::binary, true, 0x0102030405ull, kKey), 14u);
  EXPECT_EQ(Bytes(out, out + 10), (Bytes{0x82, 0x80 | 127, 0, 0, 0, 1, 2, 3, 4, 5}));
}

TEST(WebSocketEncoder, MaskCopyMatchesBytewiseDefinition) {
  std::mt19937 rng(5);
  for (size_t n = 0; n < 100; ++n) {
    Bytes src(n);
    for (auto& b : src) b = static_cast<uint8_t>(rng());
    Bytes expected(n);
    for (size_t i = 0; i < n; ++i) expected[i] = src[i] ^ kKey[i % 4];
    Bytes dst(n);
    mask_copy(dst.data(), src.data(), n, kKey);
    EXPECT_EQ(dst, expected) << n;
    mask_copy(src.data(), src.data(), n, kKey);  // in place
    EXPECT_EQ(src, expected) << n;
  }
}

TEST(WebSocketEncoder, ApplyMaskContinuesAtAnyPhase) {
  Bytes src(300);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 7);
  Bytes whole(src.size());
  mask_copy(whole.data(), src.data(), src.size(), kKey);
  for (size_t cut = 0; cut <= src.size(); ++cut) {
    Bytes pieces(src.size());
    const uint8_t phase = apply_mask(pieces.data(), src.data(), cut, kKey, 0);
    EXPECT_EQ(phase, cut % 4);
    apply_mask(pieces.data() + cut, src.data() + cut, src.size() - cut, kKey, phase);
    ASSERT_EQ(pieces, whole) << cut;
  }
}

TEST(WebSocketEncoder, ClosePayload) {
  uint8_t out[125];
  ASSERT_EQ(encode_close_payload(out, 1009, "too big"), 9u);
  EXPECT_EQ(string_of({out, 9}), "\x03\xF1too big");
  EXPECT_EQ(encode_close_payload(out, close_code::no_status, "ignored"), 0u);
  // 40 three-byte characters (120 bytes) plus "xyz": 123 bytes fit exactly.
  std::string reason;
  for (int i = 0; i < 40; ++i) reason += "\xE2\x82\xAC";
  EXPECT_EQ(encode_close_payload(out, 1000, reason + "xyz"), 125u);
  // One more byte would split the 42nd character: cut before it.
  const std::string longer = reason + "xy" + "\xE2\x82\xAC" + "tail";
  const size_t n = encode_close_payload(out, 1000, longer);
  EXPECT_EQ(n, 2u + 122u);
  EXPECT_TRUE(is_valid_utf8({out + 2, n - 2}));
  EXPECT_EQ(decode(close_frame(1000, longer)),
            std::vector<std::string>{"close:1000:" + reason + "xy"});
}

TEST(WebSocketEncoder, EncodeFrameRefusesSmallBuffer) {
  const Bytes payload(200, 'a');
  Bytes out(203);  // needs 4 + 200 unmasked
  EXPECT_EQ(encode_frame(out, Opcode::text, true, payload, nullptr), 0u);
  out.resize(204);
  EXPECT_EQ(encode_frame(out, Opcode::text, true, payload, nullptr), 204u);
  EXPECT_EQ(encode_frame(out, Opcode::text, true, payload, kKey), 0u);
  Bytes tiny(1);
  EXPECT_EQ(encode_frame(tiny, Opcode::ping, true, {}, nullptr), 0u);
}

TEST(WebSocketEncoder, RoundTripBothRoles) {
  std::mt19937 rng(11);
  DecoderConfig config;
  config.max_message_bytes = 1 << 20;
  config.accept_binary = true;
  for (size_t size : {0u, 1u, 7u, 125u, 126u, 1000u, 65535u, 65536u, 70001u}) {
    Bytes payload(size);
    for (auto& b : payload) b = static_cast<uint8_t>(rng());
    for (Role role : {Role::server, Role::client}) {
      Bytes frame(max_header_bytes + size);
      const uint8_t* key = role == Role::server ? kKey : nullptr;
      frame.resize(encode_frame(frame, Opcode::binary, true, payload, key));
      EXPECT_EQ(decode(frame, {}, role, config),
                std::vector<std::string>{"binary:" + string_of(payload)})
          << size;
    }
  }
}

}  // namespace
}  // namespace mf::ws
