// Accepting into a full direct-descriptor table (reactor.h, add_listener):
// an accept takes the connection off the backlog before it looks for a free
// index, so one that finds none closes a client the server never saw. The
// reactor arms an accept only for an index nothing else can take; at the
// limit clients wait in the backlog and every one is served once sockets are
// released. The checks count what the service sees (every client accepted,
// every client's bytes read); loops are bounded by turns, not time.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/net/listen_socket.h"
#include "common/runtime/reactor.h"
#include "common/runtime/shard_check.h"

namespace mf {
namespace {

constexpr uint32_t table_size = 8;

// Holds every accepted socket until the test closes it; counts the bytes
// each client sent.
class HoldingService : public SocketService {
 public:
  explicit HoldingService(Reactor& reactor) : reactor_(reactor) {}
  void on_accepted(SocketHandle socket, const sockaddr_storage*) override {
    held.push_back(socket);
    ++accepted;
  }
  void on_received(SocketHandle, std::span<uint8_t> bytes) override { bytes_received += bytes.size(); }
  void on_peer_closed(SocketHandle socket, int) override { reactor_.close(socket, CloseMode::abort); }
  void on_timer(SocketHandle) override {}
  void on_released(SocketHandle) override { ++released; }

  std::vector<SocketHandle> held;
  size_t accepted = 0;
  size_t released = 0;
  size_t bytes_received = 0;

 private:
  Reactor& reactor_;
};

class ReactorAccept : public ::testing::Test {
 protected:
  void SetUp() override {
    current_shard_id = 0;  // this thread runs shard 0's loop (checked in debug builds)
    ReactorOptions options;
    options.max_sockets = table_size;
    options.recv_buffer_count = 16;
    ASSERT_TRUE(reactor_.init(options).has_value());
  }
  void TearDown() override {
    for (HoldingService* service : {&public_, &admin_})
      for (SocketHandle socket : service->held) reactor_.close(socket, CloseMode::abort);
    for (int turn = 0; turn < 1000 && reactor_.live_sockets() > 0; ++turn) reactor_.run_once(10);
    for (int client : clients_) ::close(client);
    for (int listener : listeners_) ::close(listener);
    current_shard_id = no_shard;
  }

  uint16_t listen(HoldingService& service, bool want_peer_address) {
    auto address = parse_socket_address("127.0.0.1:0");
    EXPECT_TRUE(address.has_value());
    auto listener = open_listener(*address, 64);
    EXPECT_TRUE(listener.has_value()) << listener.error();
    listeners_.push_back(*listener);
    reactor_.add_listener(*listener, &service, want_peer_address);
    return bound_port(*listener);
  }

  // A client whose handshake the kernel completes from the backlog, and
  // which then sends five bytes: a connection the server closes unread is
  // reset, not ended.
  void connect_client(uint16_t port) {
    int client = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(client, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&to), sizeof to), 0) << std::strerror(errno);
    ASSERT_EQ(::send(client, "hello", 5, MSG_NOSIGNAL), 5);
    clients_.push_back(client);
  }

  template <class Done>
  void run_until(Done done) {
    for (int turn = 0; turn < 2000 && !done(); ++turn) reactor_.run_once(5);
  }

  void serve_three_tables_of_clients(bool want_peer_address);

  // Closes the oldest held socket and runs until it is released.
  void release_oldest(HoldingService& service) {
    ASSERT_FALSE(service.held.empty());
    size_t released = service.released;
    reactor_.close(service.held.front(), CloseMode::abort);
    service.held.erase(service.held.begin());
    run_until([&] { return service.released > released; });
    ASSERT_GT(service.released, released);
  }

  Reactor reactor_{0};
  HoldingService public_{reactor_};
  HoldingService admin_{reactor_};
  std::vector<int> listeners_;
  std::vector<int> clients_;
};

// Three times the table's clients against one listener: the table fills,
// the rest queue, and each release serves exactly one more.
void ReactorAccept::serve_three_tables_of_clients(bool want_peer_address) {
  const uint16_t port = listen(public_, want_peer_address);
  const size_t clients = 3 * table_size;
  for (size_t i = 0; i < clients; ++i) connect_client(port);
  run_until([&] { return public_.accepted == table_size && public_.bytes_received == 5 * table_size; });
  ASSERT_EQ(public_.accepted, table_size);
  EXPECT_EQ(reactor_.free_indices(), 0u);
  EXPECT_GE(reactor_.counters().accept_table_full, 1u);
  while (public_.accepted < clients) {
    const size_t before = public_.accepted;
    release_oldest(public_);
    run_until([&] { return public_.accepted > before; });
    ASSERT_EQ(public_.accepted, before + 1) << "the released index served one waiting client";
  }
  run_until([&] { return public_.bytes_received == 5 * clients; });
  EXPECT_EQ(public_.bytes_received, 5 * clients) << "every client's bytes were read: none was reset";
  EXPECT_EQ(reactor_.counters().accepted, clients);
}

TEST_F(ReactorAccept, AtTheLimitClientsWaitInTheBacklogAndAreAllServed) { serve_three_tables_of_clients(false); }

TEST_F(ReactorAccept, AtTheLimitClientsWaitInTheBacklogAndAreAllServedWithAddresses) {
  serve_three_tables_of_clients(true);
}

TEST_F(ReactorAccept, TheLastFreeIndicesGoToEveryListenerInTurn) {
  const uint16_t public_port = listen(public_, true);
  const uint16_t admin_port = listen(admin_, false);
  for (size_t i = 0; i < table_size + 4; ++i) connect_client(public_port);
  run_until([&] { return public_.accepted == table_size; });
  ASSERT_EQ(public_.accepted, table_size);
  // An operator's request while the public listener's backlog is full.
  connect_client(admin_port);
  // Two releases at most before the admin listener gets an index.
  for (int release = 0; release < 2 && admin_.accepted == 0; ++release) {
    const size_t before = public_.accepted + admin_.accepted;
    release_oldest(public_);
    run_until([&] { return public_.accepted + admin_.accepted > before; });
  }
  EXPECT_EQ(admin_.accepted, 1u);
  run_until([&] { return admin_.bytes_received == 5; });
  EXPECT_EQ(admin_.bytes_received, 5u);
}

TEST_F(ReactorAccept, AnOutboundConnectionDoesNotTakeAnIndexAnAcceptCountsOn) {
  const uint16_t port = listen(public_, false);
  for (size_t i = 0; i < table_size - 1; ++i) connect_client(port);
  run_until([&] { return public_.accepted == table_size - 1; });
  ASSERT_EQ(public_.accepted, table_size - 1);
  // The one index left is an armed accept's.
  EXPECT_EQ(reactor_.free_indices(), 0u);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto outbound = reactor_.connect_adopted(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to, &admin_);
  ASSERT_FALSE(outbound.has_value());
  EXPECT_EQ(outbound.error(), -ENFILE);
  // The accept still serves the next client.
  connect_client(port);
  run_until([&] { return public_.accepted == table_size; });
  EXPECT_EQ(public_.accepted, table_size);
}

}  // namespace
}  // namespace mf
