#pragma once
// Test support for the Valkey clients' tests: a reactor on shard 0 with room
// for a few sockets, the client under test (Client or ClusterClient) and the
// recorder of what it hands its handlers. TearDown stops the client and
// waits until it has released every socket.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "common/runtime/reactor.h"
#include "common/runtime/shard_check.h"
#include "common/valkey/tests/redis_test_server.h"
#include "common/valkey/tests/valkey_test_recorder.h"

namespace mf::valkey::test {

template <typename ClientType>
class ValkeyClientFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(redis_binary, X_OK), 0) << "redis-server is missing: run ./install-deps.sh";
    current_shard_id = 0;
    ReactorOptions options;
    options.max_sockets = 64;
    options.recv_buffer_count = 64;
    auto init = reactor_.init(options);
    ASSERT_TRUE(init.has_value()) << init.error();
  }
  void TearDown() override {
    if (client_) {
      client_->stop();
      EXPECT_TRUE(run_until([&] { return client_->stopped(); }, 5000)) << "sockets not released";
      client_.reset();
    }
    current_shard_id = no_shard;
  }
  // Turns the reactor until `done` (true) or timeout_ms passed (false): a
  // hang bound, not a margin.
  bool run_until(const std::function<bool()>& done, uint64_t timeout_ms) {
    const uint64_t end = Reactor::monotonic_ms() + timeout_ms;
    while (!done()) {
      if (Reactor::monotonic_ms() > end) return false;
      reactor_.run_once(10);
    }
    return true;
  }

  Reactor reactor_{0};
  Recorder rec_;
  std::unique_ptr<ClientType> client_;
};

}  // namespace mf::valkey::test
