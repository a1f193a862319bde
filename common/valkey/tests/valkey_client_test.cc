// The Valkey client against a real redis-server (Redis 7 speaks the same
// RESP2 as Valkey): each test starts its own server on a random loopback
// port in a temporary directory (no persistence) and stops it. The client
// runs on a Reactor driven by the test thread, which plays shard 0. An
// independent client (hiredis' blocking API, off the reactor) publishes and
// inspects the server. Every wait is bounded.
#include "common/valkey/valkey_client.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/runtime/reactor.h"
#include "common/runtime/shard_check.h"
#include "common/valkey/tests/redis_test_server.h"
#include "common/valkey/tests/valkey_client_fixture.h"
#include "common/valkey/tests/valkey_test_recorder.h"

namespace mf::valkey {
namespace {

using namespace std::string_literals;
using test::free_loopback_port;
using test::redis_binary;
using test::RedisServer;
using test::SyncClient;

using test::Recorder;
using test::Result;

class ValkeyClientTest : public test::ValkeyClientFixture<Client> {
 protected:
  Config config_for(const RedisServer& server) {
    Config c;
    c.address = server.address();
    c.connect_timeout_ms = 500;
    c.command_timeout_ms = 500;
    c.backoff_min_ms = 20;
    c.backoff_max_ms = 200;
    c.tick_ms = 10;
    c.random_seed = 42;
    return c;
  }
  void make_client(const Config& config) {
    auto c = Client::create(reactor_, config, Handlers{&Recorder::on_state, &Recorder::on_message, &rec_});
    ASSERT_TRUE(c.has_value()) << c.error();
    client_ = std::move(*c);
  }

  bool ready(Role role = Role::command) { return client_->state(role) == LinkState::ready; }

  std::expected<void, SubmitError> send(std::vector<std::string_view> argv, uint64_t cookie) {
    return client_->command(argv, rec_.done(cookie));
  }

};

TEST_F(ValkeyClientTest, RejectsABadConfiguration) {
  Config c;
  c.address = "valkey.internal:6379";  // no DNS on a shard
  auto r = Client::create(reactor_, c, {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("valkey address"), std::string::npos);
  c.address = "0.0.0.0:6379";  // not a server address
  EXPECT_FALSE(Client::create(reactor_, c, {}));
  c.address = "127.0.0.1:0";
  EXPECT_FALSE(Client::create(reactor_, c, {}));
  c.address = "127.0.0.1:6379";
  c.backoff_min_ms = 500;
  c.backoff_max_ms = 100;
  EXPECT_FALSE(Client::create(reactor_, c, {}));
}

TEST_F(ValkeyClientTest, TenThousandPipelinedCommandsAnsweredInOrder) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  make_client(config_for(server));
  // Some commands before the connection is up: they wait in the queue.
  ASSERT_TRUE(send({"SET", "early", "1"}, 0));
  ASSERT_TRUE(send({"GET", "early"}, 1));
  ASSERT_TRUE(run_until([&] { return rec_.results.size() == 2; }, 5000));
  EXPECT_TRUE(ready());
  EXPECT_EQ(rec_.results[1].text, "1");
  rec_.results.clear();

  // 10,002 commands issued in one go: SET/GET/DEL per key (more bytes than
  // the socket's send queue takes at once, so the backlog is used too).
  constexpr uint64_t keys = 3334;
  std::vector<std::string> names, values;
  for (uint64_t i = 0; i < keys; ++i) {
    names.push_back("key:" + std::to_string(i));
    values.push_back("value-" + std::to_string(i * 31) + std::string(i % 50, 'x'));
  }
  uint64_t cookie = 0;
  for (uint64_t i = 0; i < keys; ++i) {
    ASSERT_TRUE(send({"SET", names[i], values[i]}, cookie++));
    ASSERT_TRUE(send({"GET", names[i]}, cookie++));
    ASSERT_TRUE(send({"DEL", names[i]}, cookie++));
  }
  ASSERT_TRUE(run_until([&] { return rec_.results.size() == cookie; }, 10000)) << rec_.results.size();
  for (uint64_t n = 0; n < cookie; ++n) {
    const Result& r = rec_.results[n];
    ASSERT_EQ(r.cookie, n) << "FIFO order";
    ASSERT_EQ(r.status, CommandStatus::reply);
    const uint64_t i = n / 3;
    switch (n % 3) {
      case 0: ASSERT_EQ(r.type, resp::ReplyType::status); ASSERT_EQ(r.text, "OK"); break;
      case 1: ASSERT_EQ(r.type, resp::ReplyType::string); ASSERT_EQ(r.text, values[i]); break;
      case 2: ASSERT_EQ(r.type, resp::ReplyType::integer); ASSERT_EQ(r.integer, 1); break;
    }
  }
  EXPECT_EQ(client_->queued_commands(), 0u);
  EXPECT_EQ(client_->queued_bytes(), 0u);
  EXPECT_EQ(client_->counters().replies, cookie + 2);
  EXPECT_EQ(client_->counters().dropped, 0u);
  EXPECT_GT(client_->counters().bytes_out, 300'000u);
}

TEST_F(ValkeyClientTest, BinarySafeKeysAndValuesAndALargeValue) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  make_client(config_for(server));
  const std::string key("bin\0key\r\n", 9);
  const std::string value("\0\r\n$3\r\n*1\r\n\r\n\0", 15);
  // 1 MiB: larger than the socket's send queue cap (256 KiB), so it leaves
  // in several pieces.
  std::string large(1 << 20, '\0');
  for (size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 7 + i / 251);
  ASSERT_TRUE(send({"SET", key, value}, 0));
  ASSERT_TRUE(send({"GET", key}, 1));
  ASSERT_TRUE(send({"SET", "large", large}, 2));
  ASSERT_TRUE(send({"GET", "large"}, 3));
  ASSERT_TRUE(send({"STRLEN", key}, 4));
  ASSERT_TRUE(run_until([&] { return rec_.results.size() == 5; }, 10000));
  EXPECT_EQ(rec_.results[1].text, value);
  EXPECT_EQ(rec_.results[2].text, "OK");
  EXPECT_TRUE(rec_.results[3].text == large) << "large value differs";
  EXPECT_EQ(rec_.results[4].integer, static_cast<int64_t>(value.size()));
  SyncClient other(server.port(), {});
  redisReply* r = other.command({"GET", key});
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(std::string(r->str, r->len), value);
  freeReplyObject(r);
}

TEST_F(ValkeyClientTest, ErrorRepliesAreRepliesAndTheLinkStays) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  make_client(config_for(server));
  ASSERT_TRUE(send({"NOSUCHCOMMAND", "x"}, 0));
  ASSERT_TRUE(send({"SET", "s", "text"}, 1));
  ASSERT_TRUE(send({"INCR", "s"}, 2));
  ASSERT_TRUE(send({"PING"}, 3));
  ASSERT_TRUE(run_until([&] { return rec_.results.size() == 4; }, 5000));
  EXPECT_EQ(rec_.results[0].type, resp::ReplyType::error);
  EXPECT_NE(rec_.results[0].text.find("unknown command"), std::string::npos) << rec_.results[0].text;
  EXPECT_EQ(rec_.results[2].type, resp::ReplyType::error);
  EXPECT_EQ(rec_.results[3].text, "PONG");
  EXPECT_EQ(client_->counters().error_replies, 2u);
  EXPECT_TRUE(ready());
  EXPECT_EQ(client_->counters().connects, 1u);
  EXPECT_EQ(client_->command({}, {}).error(), SubmitError::invalid);
}

TEST_F(ValkeyClientTest, ScriptsRunByEvalshaAndFallBackToEvalOnNoscript) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Config config = config_for(server);
  config.scripts = {"return {KEYS[1], ARGV[1], ARGV[2]}", "return redis.call('INCR', KEYS[1])"};
  make_client(config);
  // Loaded by the handshake: the first EVALSHA finds it.
  std::vector<std::string_view> echo{"1", std::string_view("k\r\n1", 4), std::string_view("a\0b", 3), "$5\r\n"};
  std::vector<std::string_view> incr{"1", "counter"};
  ASSERT_TRUE(client_->script(0, echo, rec_.done(0)));
  ASSERT_TRUE(client_->script(1, incr, rec_.done(1)));
  ASSERT_TRUE(run_until([&] { return rec_.results.size() == 2; }, 5000));
  EXPECT_EQ(rec_.results[1].integer, 1);
  EXPECT_EQ(client_->counters().script_fallbacks, 0u);
  EXPECT_EQ(client_->script_sha(1).size(), 40u);
  {
    SyncClient other(server.port(), {});
    redisReply* r = other.command({"SCRIPT", "EXISTS", std::string(client_->script_sha(0)),
                                   std::string(client_->script_sha(1))});
    ASSERT_NE(r, nullptr);
    ASSERT_EQ(r->elements, 2u);
    EXPECT_EQ(r->element[0]->integer, 1);
    EXPECT_EQ(r->element[1]->integer, 1);
    freeReplyObject(r);
    // The script cache flushed under the client: the next script commands
    // are answered NOSCRIPT and sent again as EVAL, transparently, with
    // their arguments.
    freeReplyObject(other.command({"SCRIPT", "FLUSH"}));
  }
  rec_.results.clear();
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(client_->script(1, incr, rec_.done(10 + i)));
  ASSERT_TRUE(client_->script(0, echo, rec_.done(13)));
  ASSERT_TRUE(run_until([&] { return rec_.results.size() == 4; }, 5000));
  std::vector<int64_t> counts;
  for (const Result& r : rec_.results) {
    ASSERT_EQ(r.status, CommandStatus::reply);
    if (r.cookie < 13) counts.push_back(r.integer);
  }
  EXPECT_EQ(counts, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(rec_.results.back().cookie, 13u);
  EXPECT_EQ(rec_.results.back().type, resp::ReplyType::array);
  EXPECT_GE(client_->counters().script_fallbacks, 1u);
  EXPECT_EQ(client_->counters().error_replies, 0u) << "NOSCRIPT is never shown to the caller";
  EXPECT_EQ(client_->queued_commands(), 0u);
  EXPECT_EQ(client_->script(2, incr, {}).error(), SubmitError::invalid);
}

TEST_F(ValkeyClientTest, AuthWithTheRightPassword) {
  RedisServer server("s3cret pass");
  ASSERT_TRUE(server.start());
  Config c = config_for(server);
  c.password = server.password();
  make_client(c);
  ASSERT_TRUE(send({"SET", "a", "1"}, 0));
  ASSERT_TRUE(run_until([&] { return rec_.results.size() == 1; }, 5000));
  EXPECT_EQ(rec_.results[0].text, "OK");
  EXPECT_EQ(client_->counters().auth_failures, 0u);
}

TEST_F(ValkeyClientTest, AuthWithAWrongPasswordIsAClearErrorState) {
  RedisServer server("s3cret");
  ASSERT_TRUE(server.start());
  Config c = config_for(server);
  c.password = "wrong";
  make_client(c);
  ASSERT_TRUE(send({"SET", "a", "1"}, 0));
  ASSERT_TRUE(run_until([&] { return client_->counters().auth_failures >= 2; }, 5000));
  EXPECT_EQ(client_->state(Role::command), LinkState::disconnected);
  EXPECT_EQ(client_->last_reason(Role::command), Reason::auth_failed);
  EXPECT_NE(client_->last_detail(Role::command).find("WRONGPASS"), std::string::npos)
      << client_->last_detail(Role::command);
  EXPECT_GE(rec_.count_states(Role::command, LinkState::disconnected, Reason::auth_failed), 2u);
  // Never sent: it waits for a link that authenticates.
  EXPECT_TRUE(rec_.results.empty());
  EXPECT_EQ(client_->queued_commands(), 1u);
  client_->stop();
  ASSERT_EQ(rec_.results.size(), 1u);
  EXPECT_EQ(rec_.results[0].status, CommandStatus::stopped);
}

TEST_F(ValkeyClientTest, NoPasswordAgainstRequirepassFailsTheHandshake) {
  RedisServer server("s3cret");
  ASSERT_TRUE(server.start());
  make_client(config_for(server));
  ASSERT_TRUE(run_until([&] { return client_->last_reason(Role::command) == Reason::handshake_failed; }, 5000));
  EXPECT_NE(client_->last_detail(Role::command).find("NOAUTH"), std::string::npos)
      << client_->last_detail(Role::command);
}

TEST_F(ValkeyClientTest, SubscribeDeliversPublishedMessagesInOrder) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  make_client(config_for(server));
  ASSERT_TRUE(client_->subscribe("edge:1"));
  ASSERT_TRUE(client_->subscribe("edge:2"));
  ASSERT_TRUE(client_->subscribe("edge:1"));  // idempotent
  EXPECT_EQ(client_->subscriptions(), 2u);
  SyncClient other(server.port(), {});
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(run_until([&] { return other.numsub("edge:1") == 1 && other.numsub("edge:2") == 1; }, 5000));
  EXPECT_TRUE(ready(Role::subscriber));

  std::vector<std::pair<std::string, std::string>> expected;
  for (int i = 0; i < 1000; ++i) {
    std::string channel = i % 3 == 0 ? "edge:2" : "edge:1";
    std::string payload = "{\"seq\":" + std::to_string(i) + "}" + std::string("\0\r\n", 3);
    ASSERT_EQ(other.integer({"PUBLISH", channel, payload}), 1);
    expected.emplace_back(channel, payload);
  }
  ASSERT_TRUE(run_until([&] { return rec_.messages.size() == expected.size(); }, 5000));
  EXPECT_TRUE(rec_.messages == expected);

  ASSERT_TRUE(client_->unsubscribe("edge:2"));
  ASSERT_TRUE(run_until([&] { return other.numsub("edge:2") == 0; }, 5000));
  EXPECT_EQ(other.integer({"PUBLISH", "edge:2", "lost"}), 0);
  EXPECT_EQ(other.integer({"PUBLISH", "edge:1", "last"}), 1);
  ASSERT_TRUE(run_until([&] { return rec_.messages.size() == expected.size() + 1; }, 5000));
  EXPECT_EQ(rec_.messages.back().second, "last");
  EXPECT_EQ(client_->counters().messages, expected.size() + 1);
}

TEST_F(ValkeyClientTest, ServerKilledAndRestartedReconnectsResubscribesAndBoundsTheQueue) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Config c = config_for(server);
  c.max_queued_commands = 100;
  make_client(c);
  ASSERT_TRUE(client_->subscribe("presence"));
  SyncClient before(server.port(), {});
  ASSERT_TRUE(run_until([&] { return ready() && before.numsub("presence") == 1; }, 5000));

  // Commands in flight when the server dies fail with `disconnected`.
  for (uint64_t i = 0; i < 50; ++i) ASSERT_TRUE(send({"INCR", "counter"}, i));
  server.kill_now();
  ASSERT_TRUE(run_until([&] { return rec_.results.size() == 50; }, 5000));
  size_t disconnected = 0;
  for (const Result& r : rec_.results) disconnected += r.status == CommandStatus::disconnected;
  EXPECT_GT(disconnected, 0u) << "some INCRs may have been answered before the kill";
  EXPECT_EQ(client_->counters().failed_disconnected, disconnected);
  ASSERT_TRUE(run_until([&] { return !ready() && !ready(Role::subscriber); }, 5000));
  EXPECT_GE(rec_.count_states(Role::command, LinkState::disconnected, Reason::peer_closed), 1u);
  EXPECT_GE(rec_.count_states(Role::subscriber, LinkState::disconnected, Reason::peer_closed), 1u);
  rec_.results.clear();

  // While it is down: 100 commands queue, the next 20 are dropped at once.
  for (uint64_t i = 0; i < 120; ++i) {
    auto r = send({"RPUSH", "list", std::to_string(i)}, 1000 + i);
    if (i < 100) {
      ASSERT_TRUE(r) << i;
    } else {
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error(), SubmitError::dropped);
    }
  }
  EXPECT_EQ(client_->counters().dropped, 20u);
  EXPECT_EQ(client_->queued_commands(), 100u);
  // Some backoff rounds against a closed port.
  const uint64_t failures_before = client_->counters().connect_failures;
  ASSERT_TRUE(run_until([&] { return client_->counters().connect_failures >= failures_before + 3; }, 5000));

  ASSERT_TRUE(server.restart());
  ASSERT_TRUE(run_until([&] { return rec_.results.size() == 100; }, 5000));
  for (uint64_t i = 0; i < 100; ++i) {
    EXPECT_EQ(rec_.results[i].cookie, 1000 + i);
    EXPECT_EQ(rec_.results[i].status, CommandStatus::reply);
    EXPECT_EQ(rec_.results[i].integer, static_cast<int64_t>(i + 1));  // RPUSH returns the length: in order
  }
  EXPECT_GE(client_->counters().reconnects, 2u);
  SyncClient after(server.port(), {});
  ASSERT_TRUE(run_until([&] { return after.numsub("presence") == 1; }, 5000)) << "resubscribed by itself";
  EXPECT_EQ(after.integer({"PUBLISH", "presence", "back"}), 1);
  ASSERT_TRUE(run_until([&] { return !rec_.messages.empty(); }, 5000));
  EXPECT_EQ(rec_.messages.back(), (std::pair<std::string, std::string>{"presence", "back"}));
  EXPECT_GE(rec_.count_states(Role::subscriber, LinkState::ready, Reason::none), 2u);
}

TEST_F(ValkeyClientTest, StoppedServerTimesOutThenRecoversAfterSigcont) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Config c = config_for(server);
  c.command_timeout_ms = 300;
  c.connect_timeout_ms = 300;
  c.max_queued_commands = 1000;
  make_client(c);
  ASSERT_TRUE(client_->subscribe("ch"));
  ASSERT_TRUE(run_until([&] { return ready() && ready(Role::subscriber); }, 5000));

  server.pause();
  ASSERT_TRUE(send({"SET", "k", "v"}, 1));
  ASSERT_TRUE(run_until([&] { return !rec_.results.empty(); }, 3000));
  EXPECT_EQ(rec_.results[0].status, CommandStatus::disconnected);
  EXPECT_GE(rec_.count_states(Role::command, LinkState::disconnected, Reason::command_timeout), 1u);
  // Reconnects find a kernel that accepts but a server that never answers.
  ASSERT_TRUE(run_until([&] {
    return rec_.count_states(Role::command, LinkState::disconnected, Reason::connect_timeout) >= 2;
  }, 5000));
  // Memory stays bounded: the queue takes 1,000 and drops the rest.
  uint64_t dropped = 0;
  for (uint64_t i = 0; i < 1500; ++i) dropped += !send({"INCR", "n"}, 10 + i).has_value();
  EXPECT_EQ(dropped, 500u);
  EXPECT_LE(client_->queued_commands(), 1000u);
  const size_t live_before = reactor_.live_sockets();
  EXPECT_LE(live_before, 8u) << "abandoned connections must not pile up";

  server.resume();
  ASSERT_TRUE(run_until([&] { return ready() && rec_.results.size() == 1001; }, 10000)) << rec_.results.size();
  int64_t last = 0;
  for (size_t i = 1; i < rec_.results.size(); ++i) {
    ASSERT_EQ(rec_.results[i].status, CommandStatus::reply);
    ASSERT_EQ(rec_.results[i].integer, last + 1);
    last = rec_.results[i].integer;
  }
  ASSERT_TRUE(run_until([&] { return ready(Role::subscriber); }, 5000));
  SyncClient other(server.port(), {});
  ASSERT_TRUE(run_until([&] { return other.numsub("ch") == 1; }, 5000));
  EXPECT_GE(client_->counters().timeouts, 2u);
}

TEST_F(ValkeyClientTest, HealthCheckPingsAnIdleLink) {
  RedisServer server;
  ASSERT_TRUE(server.start());
  Config c = config_for(server);
  c.health_check_ms = 100;
  make_client(c);
  ASSERT_TRUE(run_until([&] { return ready(); }, 5000));
  const uint64_t sent = client_->counters().commands_sent;
  ASSERT_TRUE(run_until([&] { return client_->counters().replies >= 3; }, 3000));
  EXPECT_GE(client_->counters().commands_sent, sent + 3);
  EXPECT_EQ(client_->counters().reconnects, 0u);
}

}  // namespace
}  // namespace mf::valkey
