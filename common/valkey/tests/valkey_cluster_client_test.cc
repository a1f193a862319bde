// The Valkey Cluster client against a real Redis 7 cluster: three
// cluster-enabled redis-server processes on random loopback ports, each the
// primary of a third of the slots (redis_test_server.h). The client runs on
// a Reactor driven by the test thread (shard 0); an independent blocking
// client (hiredis) moves slots and publishes. Every wait is bounded and
// waits for the event, never for a fixed time.
#include "common/valkey/valkey_cluster_client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "common/runtime/reactor.h"
#include "common/runtime/shard_check.h"
#include "common/valkey/tests/redis_test_server.h"
#include "common/valkey/tests/valkey_client_fixture.h"
#include "common/valkey/tests/valkey_test_recorder.h"
#include "common/valkey/valkey_keyslot.h"

namespace mf::valkey {
namespace {

using test::RedisServer;
using test::reply_text;
using test::SyncClient;

using test::Recorder;
using test::Result;

// Subscribers of a sharded channel on one node (-1: no answer).
long long shard_subscribers(SyncClient& node, const std::string& channel) {
  redisReply* r = node.command({"PUBSUB", "SHARDNUMSUB", channel});
  long long n = r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
  freeReplyObject(r);
  return n;
}

class ValkeyClusterClientTest : public test::ValkeyClientFixture<ClusterClient> {
 protected:
  void SetUp() override {
    test::ValkeyClientFixture<ClusterClient>::SetUp();
    if (HasFatalFailure()) return;
    for (auto& n : nodes_) ASSERT_TRUE(n.start());
    ASSERT_TRUE(test::form_cluster(nodes_)) << "the cluster did not form within 20 s";
  }
  void make_client(std::vector<std::string> scripts = {}) {
    ClusterConfig c;
    c.seeds = {nodes_[1].address()};
    c.node.connect_timeout_ms = 500;
    c.node.command_timeout_ms = 2000;
    c.node.backoff_min_ms = 20;
    c.node.backoff_max_ms = 200;
    c.node.tick_ms = 10;
    c.node.scripts = std::move(scripts);
    c.min_refresh_ms = 20;
    Handlers h;
    h.on_state = &Recorder::on_state;
    h.on_message = &Recorder::on_message;
    h.context = &rec_;
    auto client = ClusterClient::create(reactor_, c, h);
    ASSERT_TRUE(client.has_value()) << client.error();
    client_ = std::move(*client);
    ASSERT_TRUE(run_until([&] { return client_->state(Role::command) == LinkState::ready; }, 10000));
  }
  bool answered(size_t n) {
    return run_until([&] { return rec_.results.size() >= n; }, 10000);
  }
  // The primary node at `address`, or nullptr (reported) when no primary
  // of the fixture is there: a test must not silently pick another node.
  RedisServer* node_at(std::string_view address) {
    for (auto& n : nodes_)
      if (n.address() == address) return &n;
    ADD_FAILURE() << "no primary of the fixture at " << address;
    return nullptr;
  }
  // RPUSH `count` values to `key`, numbered on from `sent_`, each command's
  // cookie its value.
  void push(const std::string& key, int count) {
    for (int i = 0; i < count; ++i) {
      std::string value = std::to_string(sent_);
      std::string_view argv[] = {"RPUSH", key, value};
      ASSERT_TRUE(client_->command(argv, rec_.done(sent_)).has_value());
      ++sent_;
    }
  }
  std::string id_of(RedisServer& node) {
    SyncClient c(node.port(), {});
    return reply_text(c.command({"CLUSTER", "MYID"}));
  }

  RedisServer nodes_[3] = {RedisServer({}, true), RedisServer({}, true), RedisServer({}, true)};
  uint64_t sent_ = 0;
};

TEST_F(ValkeyClusterClientTest, RoutesEveryKeyAndScriptToItsPrimary) {
  make_client({"return redis.call('INCRBY', KEYS[1], ARGV[1])"});
  EXPECT_EQ(client_->primaries(), 3u);
  EXPECT_EQ(client_->unassigned_slots(), 0u);
  constexpr int keys = 300;
  for (int i = 0; i < keys; ++i) {
    std::string key = "key-" + std::to_string(i), value = "value-" + std::to_string(i);
    std::string_view argv[] = {"SET", key, value};
    ASSERT_TRUE(client_->command(argv, rec_.done(static_cast<uint64_t>(i))).has_value());
  }
  for (int i = 0; i < keys; ++i) {
    std::string key = "counter-" + std::to_string(i);
    std::string_view args[] = {"1", key, "7"};
    ASSERT_TRUE(client_->script(0, args, rec_.done(static_cast<uint64_t>(keys + i))).has_value());
  }
  ASSERT_TRUE(answered(2 * keys));
  // Each node answers in order; the nodes' answers interleave.
  std::vector<int> seen(2 * keys, 0);
  for (const Result& r : rec_.results) {
    ASSERT_EQ(r.status, CommandStatus::reply);
    ASSERT_LT(r.cookie, seen.size());
    ++seen[r.cookie];
    if (r.cookie < keys) {
      EXPECT_EQ(r.text, "OK") << r.cookie;
    } else {
      EXPECT_EQ(r.integer, 7) << r.cookie << " " << r.text;
    }
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 2 * keys);
  // Each key is on the primary of its slot, as the cluster itself says.
  for (int i = 0; i < keys; i += 37) {
    std::string key = "key-" + std::to_string(i);
    RedisServer* owner_node = node_at(client_->address_of_slot(key_slot(key)));
    ASSERT_NE(owner_node, nullptr);
    SyncClient owner(owner_node->port(), {});
    EXPECT_EQ(reply_text(owner.command({"GET", key})), "value-" + std::to_string(i));
  }
  EXPECT_EQ(client_->counters().redirects_moved, 0u);
  EXPECT_GE(client_->counters().map_refreshes, 1u);
}

// A slot moved by hand as `redis-cli --cluster reshard` does (IMPORTING,
// MIGRATING, MIGRATE, SETSLOT NODE) while commands of that slot keep
// coming: they follow ASK then MOVED, every one answered, in order (the
// list holds every value once, in the order sent); the sharded
// subscription of that slot moves with it.
TEST_F(ValkeyClusterClientTest, FollowsASlotMigrationInOrderAndMovesItsSubscription) {
  make_client();
  const std::string key = "mf:{s:live}:list";
  const std::string channel = "mf:{s:live}:sig";
  const uint16_t slot = key_slot(key);
  ASSERT_TRUE(client_->subscribe(channel));
  RedisServer* source_node = node_at(client_->address_of_slot(slot));
  ASSERT_NE(source_node, nullptr);
  RedisServer& source = *source_node;
  RedisServer& target = &source == &nodes_[0] ? nodes_[1] : nodes_[0];
  SyncClient at_source(source.port(), {});
  SyncClient at_target(target.port(), {});
  ASSERT_TRUE(run_until([&] { return shard_subscribers(at_source, channel) == 1; }, 5000));
  ASSERT_EQ(at_source.integer({"SPUBLISH", channel, "before"}), 1);
  ASSERT_TRUE(run_until([&] { return rec_.messages.size() == 1; }, 5000));
  EXPECT_EQ(rec_.messages[0].second, "before");

  push(key, 50);
  ASSERT_TRUE(answered(sent_));
  const std::string slot_text = std::to_string(slot);
  ASSERT_EQ(reply_text(at_target.command({"CLUSTER", "SETSLOT", slot_text, "IMPORTING", id_of(source)})), "OK");
  ASSERT_EQ(reply_text(at_source.command({"CLUSTER", "SETSLOT", slot_text, "MIGRATING", id_of(target)})), "OK");
  push(key, 25);  // the key is still at the source: served there
  ASSERT_TRUE(answered(sent_));
  ASSERT_EQ(reply_text(at_source.command({"MIGRATE", "127.0.0.1", std::to_string(target.port()), key, "0", "5000"})),
            "OK");
  push(key, 25);  // the key has moved, the slot has not: ASK, then ASKING at the target
  ASSERT_TRUE(answered(sent_));
  EXPECT_GE(client_->counters().redirects_ask, 1u);
  for (auto& n : nodes_) {
    SyncClient c(n.port(), {});
    ASSERT_EQ(reply_text(c.command({"CLUSTER", "SETSLOT", slot_text, "NODE", id_of(target)})), "OK");
  }
  // The slot has moved: MOVED for the first of these, which are in flight
  // together, and more sent while the redirection is followed.
  push(key, 40);
  reactor_.run_once(0);
  push(key, 40);
  ASSERT_TRUE(answered(sent_));
  EXPECT_GE(client_->counters().redirects_moved, 1u);
  for (const Result& r : rec_.results) {
    ASSERT_EQ(r.status, CommandStatus::reply) << r.cookie;
    ASSERT_EQ(r.type, resp::ReplyType::integer) << r.cookie << ": " << r.text;
  }
  redisReply* list = at_target.command({"LRANGE", key, "0", "-1"});
  ASSERT_NE(list, nullptr);
  ASSERT_EQ(list->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(list->elements, sent_);
  for (size_t i = 0; i < list->elements; ++i)
    EXPECT_EQ(std::string(list->element[i]->str, list->element[i]->len), std::to_string(i));
  freeReplyObject(list);
  EXPECT_EQ(client_->address_of_slot(slot), target.address());

  // The subscription followed the slot to its new primary.
  ASSERT_TRUE(run_until([&] { return shard_subscribers(at_target, channel) == 1; }, 5000));
  ASSERT_EQ(at_target.integer({"SPUBLISH", channel, "after"}), 1);
  ASSERT_TRUE(run_until([&] { return rec_.messages.size() == 2; }, 5000));
  EXPECT_EQ(rec_.messages[1].second, "after");
}

// A primary killed (SIGKILL) with commands of its slot in flight and more
// sent while it is down: its replica is promoted, the client follows the new
// map (ready again), and every command is answered exactly once: a reply, or
// `disconnected` for those handed to the dead primary's socket; the promoted
// replica's list holds what it had, what was replicated of the in-flight
// ones, then every later one in order; the slot's subscription moves to the
// promoted replica.
TEST_F(ValkeyClusterClientTest, FollowsAFailoverWithoutLosingOrReorderingCommands) {
  RedisServer replicas[3] = {RedisServer({}, true), RedisServer({}, true), RedisServer({}, true)};
  for (auto& n : replicas) ASSERT_TRUE(n.start());
  ASSERT_TRUE(test::add_replicas(nodes_, replicas)) << "the replicas did not sync within 30 s";
  make_client();
  const std::string key = "mf:{p:failover}:list";
  const std::string channel = "mf:{p:failover}:sig";
  const uint16_t slot = key_slot(key);
  ASSERT_TRUE(client_->subscribe(channel));
  RedisServer* primary_node = node_at(client_->address_of_slot(slot));
  ASSERT_NE(primary_node, nullptr);
  RedisServer& primary = *primary_node;
  RedisServer* replica = nullptr;
  for (int i = 0; i < 3; ++i)
    if (&nodes_[i] == &primary) replica = &replicas[i];
  ASSERT_NE(replica, nullptr);
  SyncClient at_primary(primary.port(), {});
  ASSERT_TRUE(run_until([&] { return shard_subscribers(at_primary, channel) == 1; }, 5000));

  // The replica follows this primary (the cluster says so, not the order
  // the fixture paired them in).
  SyncClient at_replica(replica->port(), {});
  ASSERT_NE(reply_text(at_replica.command({"INFO", "replication"})).find(
                "master_port:" + std::to_string(primary.port()) + "\r\n"),
            std::string::npos);
  ASSERT_EQ(reply_text(at_replica.command({"READONLY"})), "OK");

  push(key, 50);
  ASSERT_TRUE(answered(sent_));
  // Replication is asynchronous: a reply from the primary does not mean the
  // replica has the value. Wait until the replica holds all 50 (read there
  // with READONLY), so what is lost below is only what was in flight.
  ASSERT_TRUE(run_until([&] { return at_replica.integer({"LLEN", key}) == 50; }, 10000))
      << "the replica did not receive the first 50 values";
  push(key, 30);  // in flight when the primary dies
  primary.kill_now();
  ASSERT_TRUE(run_until([&] { return client_->state(Role::command) != LinkState::ready; }, 5000));
  push(key, 30);  // sent while it is known down: they wait for the new map
  ASSERT_TRUE(run_until([&] { return client_->address_of_slot(slot) == replica->address(); }, 30000))
      << "the replica was not promoted";
  ASSERT_TRUE(run_until([&] { return client_->state(Role::command) == LinkState::ready; }, 10000));
  ASSERT_TRUE(answered(sent_));
  std::vector<int> seen(sent_, 0);
  std::vector<uint64_t> replied;
  for (const Result& r : rec_.results) {
    ++seen[r.cookie];
    if (r.status == CommandStatus::reply) {
      ASSERT_EQ(r.type, resp::ReplyType::integer) << r.cookie << ": " << r.text;
      replied.push_back(r.cookie);
    } else {
      EXPECT_EQ(r.status, CommandStatus::disconnected) << r.cookie;
      EXPECT_GE(r.cookie, 50u);
      EXPECT_LT(r.cookie, 80u) << "only what was on the dead primary's socket";
    }
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), static_cast<long>(sent_)) << "each answered once";
  EXPECT_TRUE(std::is_sorted(replied.begin(), replied.end()));
  // The commands sent while the primary was down were never on its socket:
  // they reached the promoted replica.
  for (uint64_t c = 80; c < sent_; ++c) EXPECT_NE(std::find(replied.begin(), replied.end(), c), replied.end()) << c;
  // The promoted replica's list: the 50 it had, then the prefix of the
  // in-flight ones the primary executed and replicated before it died (a
  // primary answers before it replicates, so that prefix may be shorter or
  // longer than what was answered), then every one sent after, once each,
  // in order.
  redisReply* list = at_replica.command({"LRANGE", key, "0", "-1"});
  ASSERT_NE(list, nullptr);
  ASSERT_EQ(list->type, REDIS_REPLY_ARRAY);
  std::vector<uint64_t> values;
  for (size_t i = 0; i < list->elements; ++i)
    values.push_back(std::stoull(std::string(list->element[i]->str, list->element[i]->len)));
  freeReplyObject(list);
  ASSERT_GE(values.size(), 80u);
  ASSERT_LE(values.size(), sent_);
  const size_t replicated_in_flight = values.size() - 80;
  for (size_t i = 0; i < values.size(); ++i) {
    const uint64_t expected = i < 50 + replicated_in_flight ? i : 80 + (i - 50 - replicated_in_flight);
    ASSERT_EQ(values[i], expected) << "at " << i << " of " << values.size();
  }
  ASSERT_TRUE(run_until([&] { return shard_subscribers(at_replica, channel) == 1; }, 5000));
  ASSERT_EQ(at_replica.integer({"SPUBLISH", channel, "after"}), 1);
  ASSERT_TRUE(run_until([&] { return rec_.messages.size() == 1; }, 5000));
}

TEST(ValkeyClusterClient, RefusesABadSeed) {
  current_shard_id = 0;
  Reactor reactor_{0};
  ClusterConfig c;
  EXPECT_FALSE(ClusterClient::create(reactor_, c, Handlers{}).has_value());
  c.seeds = {"not-an-address"};
  EXPECT_FALSE(ClusterClient::create(reactor_, c, Handlers{}).has_value());
  current_shard_id = no_shard;
}

}  // namespace
}  // namespace mf::valkey
