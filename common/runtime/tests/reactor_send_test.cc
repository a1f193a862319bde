// A socket's send carries every queued block in one submission (reactor.h),
// and a short write leaves the rest queued, the next send starting exactly
// where the kernel stopped, part-way into any block. End-of-turn callbacks
// (Reactor::add_end_of_turn) run after the turn's work, in order, and what
// they queue leaves in that turn's submission. The checks count
// submissions (ReactorCounters) and compare every byte the peer reads; they
// wait for events (bytes read, the queue empty), bounded by turns, not time.
#include "common/runtime/reactor.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "common/net/listen_socket.h"
#include "common/runtime/shard_check.h"

namespace mf {
namespace {

class AcceptingService : public SocketService {
 public:
  explicit AcceptingService(Reactor& reactor) : reactor_(reactor) {}
  void on_accepted(SocketHandle socket, const sockaddr_storage*) override { accepted = socket; }
  void on_received(SocketHandle, std::span<uint8_t>) override {}
  void on_peer_closed(SocketHandle socket, int) override { reactor_.close(socket, CloseMode::abort); }
  void on_timer(SocketHandle) override {}
  void on_released(SocketHandle) override {}

  SocketHandle accepted{};

 private:
  Reactor& reactor_;
};

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  // Not a multiple of a block's capacity, so a misplaced byte shows.
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 131) % 251);
  return v;
}

class ReactorSend : public ::testing::Test {
 protected:
  void SetUp() override {
    current_shard_id = 0;  // this thread runs shard 0's loop (checked in debug builds)
    ReactorOptions options;
    options.max_sockets = 16;
    options.recv_buffer_count = 16;
    ASSERT_TRUE(reactor_.init(options).has_value());
  }
  void TearDown() override {
    if (service_.accepted.valid()) reactor_.close(service_.accepted, CloseMode::abort);
    for (int turn = 0; turn < 100 && reactor_.live_sockets() > 0; ++turn) reactor_.run_once(10);
    if (client_ >= 0) ::close(client_);
    if (listener_ >= 0) ::close(listener_);
    current_shard_id = no_shard;
  }

  // A connection accepted by the reactor; `send_buffer` (0: the default)
  // is the accepted socket's SO_SNDBUF (inherited from the listener: a
  // direct descriptor has no setsockopt) and `receive_buffer` the client's.
  void connect(int send_buffer, int receive_buffer) {
    auto address = parse_socket_address("127.0.0.1:0");
    ASSERT_TRUE(address.has_value());
    auto listener = open_listener(*address, 16);
    ASSERT_TRUE(listener.has_value()) << listener.error();
    listener_ = *listener;
    if (send_buffer > 0) {
      ASSERT_EQ(::setsockopt(listener_, SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof send_buffer), 0);
    }
    reactor_.add_listener(listener_, &service_);
    reactor_.run_once(0);
    client_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ASSERT_GE(client_, 0);
    if (receive_buffer > 0) {
      ASSERT_EQ(::setsockopt(client_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer), 0);
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(bound_port(listener_));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = ::connect(client_, reinterpret_cast<sockaddr*>(&to), sizeof to);
    ASSERT_TRUE(rc == 0 || errno == EINPROGRESS);
    for (int turn = 0; turn < 1000 && !service_.accepted.valid(); ++turn) reactor_.run_once(100);
    ASSERT_TRUE(service_.accepted.valid()) << "the connection was never accepted";
  }

  // Reads what the client has, without blocking; `limit` bytes at most.
  void read_some(size_t limit) {
    uint8_t buffer[65536];
    size_t want = std::min(limit, sizeof buffer);
    ssize_t n = ::recv(client_, buffer, want, 0);
    if (n > 0) received_.insert(received_.end(), buffer, buffer + n);
  }

  Reactor reactor_{0};
  AcceptingService service_{reactor_};
  int listener_ = -1;
  int client_ = -1;
  std::vector<uint8_t> received_;
};

TEST_F(ReactorSend, EveryQueuedBlockLeavesInOneSubmission) {
  connect(0, 0);
  // Ten blocks and a part, queued by several writers in one turn.
  const std::vector<uint8_t> bytes = pattern(10 * Block::capacity + 123);
  size_t offset = 0;
  for (size_t piece : {size_t{100}, size_t{5000}, size_t{17}, bytes.size() - 5117}) {
    ASSERT_TRUE(reactor_.send(service_.accepted, std::span(bytes).subspan(offset, piece)));
    offset += piece;
  }
  const ReactorCounters before = reactor_.counters();
  reactor_.run_once(0);
  EXPECT_EQ(reactor_.counters().sends - before.sends, 1u);
  EXPECT_EQ(reactor_.counters().send_buffers - before.send_buffers, 11u);

  for (int turn = 0; turn < 10000 && received_.size() < bytes.size(); ++turn) {
    reactor_.run_once(1);
    read_some(bytes.size() - received_.size());
  }
  ASSERT_EQ(received_.size(), bytes.size());
  EXPECT_TRUE(received_ == bytes) << "the peer read other bytes than were queued";
  EXPECT_EQ(reactor_.queued_bytes(service_.accepted), 0u);
  // Nothing was short (the socket buffer took it all): still that one send.
  EXPECT_EQ(reactor_.counters().sends - before.sends, 1u);
}

TEST_F(ReactorSend, ShortWritesResumeWhereTheKernelStopped) {
  // Small socket buffers on both sides: the kernel takes a few KiB per
  // send, stopping part-way into a block.
  connect(4096, 4096);
  const std::vector<uint8_t> bytes = pattern(48 * Block::capacity + 999);  // under the queue's cap
  ASSERT_TRUE(reactor_.send(service_.accepted, bytes));
  const ReactorCounters before = reactor_.counters();
  for (int turn = 0; turn < 200000 && received_.size() < bytes.size(); ++turn) {
    reactor_.run_once(1);
    read_some(1000);  // a slow reader: the window stays small
  }
  ASSERT_EQ(received_.size(), bytes.size());
  EXPECT_TRUE(received_ == bytes) << "the peer read other bytes than were queued";
  const uint64_t sends = reactor_.counters().sends - before.sends;
  const uint64_t short_sends = reactor_.counters().short_sends - before.short_sends;
  EXPECT_GT(short_sends, 0u) << "no short write happened: the test proves nothing";
  EXPECT_GT(sends, 1u);
  // Each send carried at most max_send_vectors blocks.
  EXPECT_LE(reactor_.counters().send_buffers - before.send_buffers, sends * Reactor::max_send_vectors);
  for (int turn = 0; turn < 100 && reactor_.queued_bytes(service_.accepted) > 0; ++turn) reactor_.run_once(1);
  EXPECT_EQ(reactor_.queued_bytes(service_.accepted), 0u);
}

TEST_F(ReactorSend, WhatTheEndOfTurnQueuesLeavesInThatTurn) {
  connect(0, 0);
  // The callbacks stay with the reactor (TearDown turns it again): what
  // they touch lives as long as they do.
  struct Record {
    std::vector<int> order;
    int turns = 0;
    bool owed = false;
  };
  auto record = std::make_shared<Record>();
  const auto bytes = std::make_shared<const std::vector<uint8_t>>(pattern(300));
  // The turn hook stands for the turn's work (a mailbox drain) that leaves
  // something owed at the turn's end, once.
  reactor_.set_turn_hook([record]() -> uint32_t {
    record->order.push_back(0);
    if (record->turns++ == 0) record->owed = true;
    return UINT32_MAX;
  });
  Reactor& reactor = reactor_;
  const SocketHandle socket = service_.accepted;
  reactor_.add_end_of_turn([record, bytes, &reactor, socket] {
    record->order.push_back(1);
    if (!record->owed) return;
    record->owed = false;
    EXPECT_TRUE(reactor.send(socket, *bytes));
  });
  reactor_.add_end_of_turn([record] { record->order.push_back(2); });
  const ReactorCounters before = reactor_.counters();
  reactor_.run_once(0);
  EXPECT_EQ(record->order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(reactor_.counters().sends - before.sends, 1u) << "the bytes did not leave in the turn that queued them";
  for (int turn = 0; turn < 10000 && received_.size() < bytes->size(); ++turn) {
    reactor_.run_once(1);
    read_some(bytes->size() - received_.size());
  }
  EXPECT_TRUE(received_ == *bytes) << "the peer read other bytes than were queued";
  EXPECT_EQ(reactor_.counters().sends - before.sends, 1u);
}

}  // namespace
}  // namespace mf
