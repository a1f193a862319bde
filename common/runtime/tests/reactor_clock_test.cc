// Reactor::now_ms() is "now" for every completion a loop turn dispatches:
// a completion that arrived while the loop was waiting must not see the time
// from before the wait. Otherwise a timer armed from it (a handshake
// deadline armed at accept) fires early by as long as the wait lasted, which
// a loaded machine makes hundreds of milliseconds.
//
// The check is by ordering, not by a margin: the client thread reads the
// clock, then connects; the accept is dispatched after the connect, so the
// reactor's clock at dispatch can be no earlier than the client's reading.
#include "common/runtime/reactor.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "common/net/listen_socket.h"
#include "common/runtime/shard_check.h"

namespace mf {
namespace {

class RecordingService : public SocketService {
 public:
  explicit RecordingService(Reactor& reactor) : reactor_(reactor) {}
  void on_accepted(SocketHandle socket, const sockaddr_storage*) override {
    accepted_at_ms = reactor_.now_ms();
    accepted = socket;
  }
  void on_received(SocketHandle, std::span<uint8_t>) override {}
  void on_peer_closed(SocketHandle socket, int) override { reactor_.close(socket, CloseMode::abort); }
  void on_timer(SocketHandle) override {}
  void on_released(SocketHandle) override {}

  uint64_t accepted_at_ms = 0;
  SocketHandle accepted{};

 private:
  Reactor& reactor_;
};

TEST(ReactorClock, CompletionsAfterAWaitSeeTheTimeAfterTheWait) {
  current_shard_id = 0;  // this thread runs shard 0's loop (checked in debug builds)
  Reactor reactor(0);
  ReactorOptions options;
  options.max_sockets = 16;
  options.recv_buffer_count = 16;
  ASSERT_TRUE(reactor.init(options).has_value());

  auto address = parse_socket_address("127.0.0.1:0");
  ASSERT_TRUE(address.has_value());
  auto listener = open_listener(*address, 16);
  ASSERT_TRUE(listener.has_value()) << listener.error();
  const uint16_t port = bound_port(*listener);

  RecordingService service(reactor);
  reactor.add_listener(*listener, &service);
  reactor.run_once(0);  // the accept is armed; the clock is read at the end of this turn
  const uint64_t clock_before_wait = reactor.now_ms();

  std::atomic<uint64_t> connect_started_ms{0};
  int client = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(client, 0);
  std::thread connector([&] {
    // Long enough that the monotonic clock has moved on since the reactor's
    // last reading (1 ms resolution), whatever the scheduler does.
    while (Reactor::monotonic_ms() <= clock_before_wait + 20) ::usleep(5000);
    connect_started_ms.store(Reactor::monotonic_ms());
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::connect(client, reinterpret_cast<sockaddr*>(&to), sizeof to);
  });
  for (int turn = 0; turn < 1000 && !service.accepted.valid(); ++turn) reactor.run_once(1000);
  connector.join();
  ASSERT_TRUE(service.accepted.valid()) << "the connection was never accepted";
  EXPECT_GE(service.accepted_at_ms, connect_started_ms.load())
      << "the accept was dispatched with the clock from before the wait";
  EXPECT_GT(service.accepted_at_ms, clock_before_wait);

  reactor.close(service.accepted, CloseMode::abort);
  for (int turn = 0; turn < 100 && reactor.live_sockets() > 0; ++turn) reactor.run_once(10);
  ::close(client);
  ::close(*listener);
  current_shard_id = no_shard;
}

}  // namespace
}  // namespace mf
