#include "common/http/websocket_message_stream.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "common/tls/tests/transport_stream_pair.h"

namespace mf::ws {
namespace {

using test::as_bytes;
using test::random_bytes;
using test::StreamEnd;


// Records what the framing path reports.
struct Events {
  std::vector<std::string> messages;
  std::vector<bool> text;
  std::vector<std::string> pings, pongs;
  uint16_t close_code = 0;
  uint16_t error_code = 0;
  int out_of_buffers = 0;
  int frames = 0;

  void on_message(std::string_view payload, bool is_text) {
    messages.emplace_back(payload);
    text.push_back(is_text);
  }
  void on_ping(std::span<const uint8_t> p) { pings.emplace_back(p.begin(), p.end()); }
  void on_pong(std::span<const uint8_t> p) { pongs.emplace_back(p.begin(), p.end()); }
  void on_close(uint16_t code, std::string_view) { close_code = code; }
  void on_error(uint16_t code, std::string_view) { error_code = code; }
  void on_out_of_buffers() { ++out_of_buffers; }
  void on_frame_complete() { ++frames; }
};

// One end of a WebSocket connection: transport, framing path, events.
struct Side {
  explicit Side(Role role) { messages.start(role, &config); }
  StreamEnd end;
  DecoderConfig config{.max_message_bytes = 100000, .accept_binary = true};
  MessageStream messages;
  Events events;
};

class MessageStreamTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      test::connect_tls(client.end, server.end);
    } else {
      client.end.stream.start_plain(client.end.wire);
      server.end.stream.start_plain(server.end.wire);
    }
  }
  // Carries `from`'s wire bytes to `to`, `chunk` bytes per read, through its
  // transport and its framing path.
  void carry(Side& from, Side& to, size_t chunk = test::unlimited) {
    test::deliver(from.end, to.end, chunk,
                  [&](std::span<uint8_t> plain) { to.messages.feed(plain, to.events, workspace); });
    ASSERT_FALSE(to.end.failure) << to.end.failure->reason;
  }
  std::expected<void, tls::Failure> send_from_client(Opcode opcode, std::span<const uint8_t> payload) {
    const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    return client.messages.send(client.end.stream, opcode, payload, workspace, key);
  }

  BlockPool pool{256, 16};
  MessageWorkspace workspace{pool, 100000, max_header_bytes + 100000};
  Side client{Role::client};
  Side server{Role::server};
};

TEST_P(MessageStreamTest, ClientAndServerExchangeMessagesInAnyReadSize) {
  ASSERT_TRUE(send_from_client(Opcode::text, as_bytes("hello server")).has_value());
  carry(client, server);
  ASSERT_TRUE(server.messages.send(server.end.stream, Opcode::text, as_bytes("hello client"), workspace).has_value());
  carry(server, client);
  ASSERT_EQ(server.events.messages, std::vector<std::string>{"hello server"});
  ASSERT_EQ(client.events.messages, std::vector<std::string>{"hello client"});
  EXPECT_EQ(server.events.error_code, 0) << "the server accepted the client's masked frame";
  EXPECT_EQ(client.events.error_code, 0) << "the client accepted the server's unmasked frame";

  // A 60 KB message in 1-byte reads: assembled from the pool, handed over once.
  std::string large(60000, 'x');
  for (size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(send_from_client(Opcode::text, as_bytes(large)).has_value());
  carry(client, server, 1);
  ASSERT_EQ(server.events.messages.size(), 2u);
  EXPECT_EQ(server.events.messages[1], large);
  EXPECT_EQ(pool.blocks_in_use(), 0u) << "the assembled message gave its blocks back";
  ASSERT_TRUE(server.messages.send(server.end.stream, Opcode::binary, as_bytes(large), workspace).has_value());
  carry(server, client, 1000);
  ASSERT_EQ(client.events.messages.size(), 2u);
  EXPECT_EQ(client.events.messages[1], large);
  EXPECT_FALSE(client.events.text[1]);
}

TEST_P(MessageStreamTest, ControlFramesReachTheirCallbacks) {
  ASSERT_TRUE(send_from_client(Opcode::ping, as_bytes("p1")).has_value());
  carry(client, server, 3);
  ASSERT_TRUE(server.messages.send(server.end.stream, Opcode::pong, as_bytes("p1"), workspace).has_value());
  ASSERT_TRUE(server.messages.send(server.end.stream, Opcode::ping, {}, workspace).has_value());
  carry(server, client, 1);
  EXPECT_EQ(server.events.pings, std::vector<std::string>{"p1"});
  EXPECT_EQ(client.events.pongs, std::vector<std::string>{"p1"});
  EXPECT_EQ(client.events.pings, std::vector<std::string>{""});
  uint8_t payload[125];
  const size_t n = encode_close_payload(payload, close_code::going_away, "bye");
  ASSERT_TRUE(server.messages.send(server.end.stream, Opcode::close, {payload, n}, workspace).has_value());
  carry(server, client);
  EXPECT_EQ(client.events.close_code, close_code::going_away);
}

INSTANTIATE_TEST_SUITE_P(Transports, MessageStreamTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "tls" : "plain"; });

// ---- one side, plain wire: the framing itself ----

struct PlainSide {
  explicit PlainSide(Role role, uint32_t max_message = 100000) {
    config.max_message_bytes = max_message;
    messages.start(role, &config);
    end.stream.start_plain(end.wire);
  }
  StreamEnd end;
  DecoderConfig config;
  MessageStream messages;
  Events events;
};

TEST(MessageStreamFraming, ServerFramesAreUnmaskedAndClientFramesMasked) {
  BlockPool pool(16, 4);
  MessageWorkspace workspace(pool, 1000, 1000);
  PlainSide server(Role::server), client(Role::client);
  ASSERT_TRUE(server.messages.send(server.end.stream, Opcode::text, as_bytes("abc"), workspace).has_value());
  ASSERT_EQ(server.end.wire.bytes.size(), 5u);
  EXPECT_EQ(server.end.wire.bytes[0], 0x81);
  EXPECT_EQ(server.end.wire.bytes[1], 0x03) << "unmasked";
  const uint8_t key[4] = {1, 2, 3, 4};
  ASSERT_TRUE(client.messages.send(client.end.stream, Opcode::text, as_bytes("abc"), workspace, key).has_value());
  ASSERT_EQ(client.end.wire.bytes.size(), 9u);
  EXPECT_EQ(client.end.wire.bytes[1], 0x83) << "masked";
  EXPECT_EQ(client.end.wire.bytes[6], 'a' ^ 1);
}

TEST(MessageStreamFraming, AClientFrameNeedsAKeyAndMustFitTheWorkspace) {
  BlockPool pool(16, 4);
  MessageWorkspace workspace(pool, 1000, 20);
  PlainSide client(Role::client);
  auto no_key = client.messages.send(client.end.stream, Opcode::text, as_bytes("abc"), workspace, nullptr);
  ASSERT_FALSE(no_key.has_value());
  const uint8_t key[4] = {1, 2, 3, 4};
  auto too_large = client.messages.send(client.end.stream, Opcode::text, as_bytes(std::string(40, 'x')), workspace, key);
  ASSERT_FALSE(too_large.has_value());
  EXPECT_EQ(too_large.error().reason, frame_too_large);
  EXPECT_TRUE(client.end.wire.bytes.empty()) << "nothing half-written";
}

TEST(MessageStreamFraming, AFullSendQueueIsAnErrorValue) {
  BlockPool pool(16, 4);
  MessageWorkspace workspace(pool, 1000, 1000);
  PlainSide server(Role::server);
  server.end.wire.cap = 4;
  EXPECT_FALSE(server.messages.send(server.end.stream, Opcode::text, as_bytes("abcdef"), workspace).has_value());
}

// Fragments of one message, masked as a client sends them.
std::vector<uint8_t> client_fragments(std::string_view message, size_t fragment) {
  std::vector<uint8_t> wire;
  const uint8_t key[4] = {9, 8, 7, 6};
  for (size_t offset = 0; offset < message.size(); offset += fragment) {
    const size_t n = std::min(fragment, message.size() - offset);
    std::vector<uint8_t> frame(max_header_bytes + n);
    const size_t size = encode_frame(frame, offset == 0 ? Opcode::text : Opcode::continuation,
                                     offset + n == message.size(), as_bytes(message.substr(offset, n)), key);
    wire.insert(wire.end(), frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(size));
  }
  return wire;
}

TEST(MessageStreamFraming, FragmentsAreAssembledWithZeroedPaddingAfterTheMessage) {
  BlockPool pool(16, 4);
  MessageWorkspace workspace(pool, 1000, 1000);
  std::memset(workspace.message().data(), 0xff, workspace.message().size() + message_tail_padding);
  PlainSide server(Role::server);
  std::vector<uint8_t> wire = client_fragments("fragmented message", 5);
  struct PaddingCheck : Events {
    bool zeroed = false;
    void on_message(std::string_view payload, bool is_text) {
      Events::on_message(payload, is_text);
      zeroed = true;
      for (size_t i = 0; i < message_tail_padding; ++i) zeroed = zeroed && payload.data()[payload.size() + i] == 0;
    }
  } events;
  server.messages.feed(wire, events, workspace);
  ASSERT_EQ(events.messages, std::vector<std::string>{"fragmented message"});
  EXPECT_TRUE(events.zeroed);
  EXPECT_EQ(events.frames, 4);
  EXPECT_EQ(pool.blocks_in_use(), 0u);
}

TEST(MessageStreamFraming, AnExhaustedPoolShedsTheMessageAndHalts) {
  BlockPool pool(1, 1);
  MessageWorkspace workspace(pool, 100000, 100);
  PlainSide server(Role::server);
  std::vector<uint8_t> wire = client_fragments(std::string(10000, 'y'), 5000);
  server.messages.feed(wire, server.events, workspace);
  EXPECT_EQ(server.events.out_of_buffers, 1);
  EXPECT_TRUE(server.events.messages.empty());
  EXPECT_EQ(pool.blocks_in_use(), 0u) << "what was held went back";
  std::vector<uint8_t> more = client_fragments("after", 5);
  server.messages.feed(more, server.events, workspace);
  EXPECT_TRUE(server.events.messages.empty()) << "halted: nothing more is decoded";
}

TEST(MessageStreamFraming, ProtocolErrorsComeFromTheDecoder) {
  BlockPool pool(16, 4);
  MessageWorkspace workspace(pool, 1000, 1000);
  PlainSide server(Role::server, 10);
  std::vector<uint8_t> wire = client_fragments(std::string(20, 'z'), 20);
  server.messages.feed(wire, server.events, workspace);
  EXPECT_EQ(server.events.error_code, close_code::message_too_big);
  EXPECT_TRUE(server.messages.failed());
  PlainSide client(Role::client);
  std::vector<uint8_t> masked = client_fragments("masked", 6);  // a server must not mask
  client.messages.feed(masked, client.events, workspace);
  EXPECT_EQ(client.events.error_code, close_code::protocol_error);
}

TEST(MessageStreamFraming, ReleaseDropsAMessageInAssembly) {
  BlockPool pool(16, 4);
  MessageWorkspace workspace(pool, 100000, 100);
  PlainSide server(Role::server);
  std::vector<uint8_t> wire = client_fragments(std::string(6000, 'q'), 5000);
  wire.resize(wire.size() - 10);  // the last fragment is cut short
  server.messages.feed(wire, server.events, workspace);
  EXPECT_TRUE(server.messages.in_message());
  EXPECT_GT(pool.blocks_in_use(), 0u);
  server.messages.release(pool);
  EXPECT_EQ(pool.blocks_in_use(), 0u);
}

}  // namespace
}  // namespace mf::ws
