// The framing path and the transport stream allocate nothing in steady state
// (docs/architecture.md, "The WebSocket framing path"): messages both ways,
// whole and split across reads, once the pool holds its free blocks. Built
// only where the counting allocator is linked (test hooks, no sanitizer).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/base/heap_allocation_counter.h"
#include "common/tls/tests/transport_stream_pair.h"
#include "common/http/websocket_message_stream.h"

namespace mf::ws {
namespace {

struct CountingHandler {
  size_t messages = 0;
  size_t bytes = 0;
  void on_message(std::string_view payload, bool) {
    ++messages;
    bytes += payload.size();
  }
  void on_ping(std::span<const uint8_t>) {}
  void on_pong(std::span<const uint8_t>) {}
  void on_close(uint16_t, std::string_view) {}
  void on_error(uint16_t, std::string_view) { ADD_FAILURE() << "protocol error"; }
  void on_out_of_buffers() { ADD_FAILURE() << "out of buffers"; }
};

struct End {
  explicit End(Role role) {
    messages.start(role, &config);
    wire.bytes.reserve(1 << 20);
    stream.start_plain(wire);
  }
  DecoderConfig config{.max_message_bytes = 65536, .accept_binary = false};
  test::VectorWire wire;
  TransportStream stream;
  MessageStream messages;
  CountingHandler handler;
};

// Carries what `from` wrote to `to` in `chunk`-byte reads, without allocating.
void carry(End& from, End& to, MessageWorkspace& workspace, size_t chunk) {
  std::vector<uint8_t>& bytes = from.wire.bytes;
  std::span<uint8_t> scratch = workspace.frame();  // unused on a plain stream
  for (size_t offset = 0; offset < bytes.size(); offset += chunk) {
    const size_t n = std::min(chunk, bytes.size() - offset);
    auto progress = to.stream.read(std::span<uint8_t>(bytes.data() + offset, n), scratch,
                                   [&](std::span<uint8_t> plain) { to.messages.feed(plain, to.handler, workspace); });
    ASSERT_TRUE(progress.has_value());
  }
  bytes.clear();  // keeps its capacity
}

TEST(MessageStreamAllocations, SteadyStateAllocatesNothing) {
  ASSERT_TRUE(heap_allocations_counted()) << "this test is built only with the counting allocator";
  BlockPool pool(64, 64);
  MessageWorkspace workspace(pool, 65536, max_header_bytes + 65536);
  End client(Role::client), server(Role::server);
  const std::string signal(200, 's');
  const std::string large(20000, 'L');  // five pool blocks when split across reads
  const uint8_t key[4] = {1, 2, 3, 4};
  auto round = [&] {
    for (int i = 0; i < 16; ++i) {
      ASSERT_TRUE(client.messages.send(client.stream, Opcode::text, test::as_bytes(signal), workspace, key));
      ASSERT_TRUE(server.messages.send(server.stream, Opcode::text, test::as_bytes(signal), workspace));
    }
    ASSERT_TRUE(client.messages.send(client.stream, Opcode::text, test::as_bytes(large), workspace, key));
    ASSERT_TRUE(server.messages.send(server.stream, Opcode::text, test::as_bytes(large), workspace));
    carry(client, server, workspace, 1500);  // split: assembled from pool blocks
    carry(server, client, workspace, 1 << 20);  // whole: handed over in place
  };
  round();  // warm-up: the pool's blocks come from the allocator once
  const uint64_t before = heap_allocations();
  for (int i = 0; i < 50; ++i) round();
  const uint64_t allocations = heap_allocations() - before;
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(server.handler.messages, 51u * 17u);
  EXPECT_EQ(client.handler.messages, 51u * 17u);
  EXPECT_EQ(server.handler.bytes, 51u * (16u * signal.size() + large.size()));
}

}  // namespace
}  // namespace mf::ws
