// The CLUSTER SHARDS reply below was read from a real cluster made by
// `redis-cli --cluster create` (redis-server 7.0.15, 3 primaries with a
// replica each, loopback); the MOVED answers are what its nodes sent. The
// last test makes a cluster of its own and checks routing against it.
#include "common/valkey/valkey_cluster_map.h"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common/valkey/tests/redis_test_server.h"

namespace mf::valkey {
namespace {



const std::string redis7_shards =
    "*3\r\n*4\r\n$5\r\nslots\r\n*2\r\n:10923\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "ee5523391de7c3be8da34bc74359d416ab53215e\r\n$4\r\nport\r\n:35761\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
    "$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n"
    ":14\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "43eb08c741c8eb522b956c69ec7dc61efc08f602\r\n$4\r\nport\r\n:45123\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
    "$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n"
    ":0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n*4\r\n$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n$5\r\nnodes\r\n"
    "*2\r\n*14\r\n$2\r\nid\r\n$40\r\n1c3c86c08d01ea53e027964af1d9a8ef6ad43f62\r\n$4\r\nport\r\n:35139\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
    "$18\r\nreplication-offset\r\n:14\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "c86eac5b5efe53c9b287b7f9784eb973eae666d3\r\n$4\r\nport\r\n:52077\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
    "$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n"
    ":0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n"
    "*2\r\n*14\r\n$2\r\nid\r\n$40\r\n765959993b667b17c32a1db6df17a06bf79562ff\r\n$4\r\nport\r\n:40881\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
    "$18\r\nreplication-offset\r\n:14\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "5fdc68423d248e406be91e193484e9c8d540bbed\r\n$4\r\nport\r\n:46769\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
    "$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n"
    ":0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n";

// Parses `bytes` as one reply and builds the map from it.
std::expected<SlotMap, std::string> map_of(std::string_view bytes, size_t max_primaries = 16) {
  resp::ReplyReader reader;
  EXPECT_TRUE(reader.feed(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
  auto reply = reader.next();
  EXPECT_TRUE(reply && reply->has_value());
  if (!reply || !reply->has_value()) return std::unexpected(std::string("no reply"));
  return SlotMap::from_shards(**reply, max_primaries);
}

using test::reply_text;

TEST(ValkeyClusterMap, ReadsTheSlotMapOfARealRedis7Cluster) {
  auto map = map_of(redis7_shards);
  ASSERT_TRUE(map) << map.error();
  ASSERT_EQ(map->primaries().size(), 3u) << "replicas are not routed to";
  EXPECT_EQ(map->unassigned_slots(), 0u);
  auto address_of = [&](uint16_t slot) { return map->primaries()[map->node_of_slot(slot)].address; };
  EXPECT_EQ(address_of(0), "127.0.0.1:40881");
  EXPECT_EQ(address_of(5460), "127.0.0.1:40881");
  EXPECT_EQ(address_of(5461), "127.0.0.1:35139");
  EXPECT_EQ(address_of(10922), "127.0.0.1:35139");
  EXPECT_EQ(address_of(10923), "127.0.0.1:35761");
  EXPECT_EQ(address_of(16383), "127.0.0.1:35761");
  // What the cluster itself answered for GET foo and GET a: MOVED to 35761.
  EXPECT_EQ(map->primaries()[map->node_of_key("foo")].address, "127.0.0.1:35761");
  EXPECT_EQ(map->primaries()[map->node_of_key("a")].address, "127.0.0.1:35761");
  EXPECT_EQ(map->primaries()[map->node_of_slot(10923)].id, "ee5523391de7c3be8da34bc74359d416ab53215e");
  EXPECT_TRUE(map->primaries()[0].online);
  // Bounded: three primaries where two are allowed is refused whole.
  EXPECT_FALSE(map_of(redis7_shards, 2));
}

std::string shard(std::string_view slots, std::string_view nodes, size_t node_count) {
  return "*4\r\n$5\r\nslots\r\n" + std::string(slots) + "$5\r\nnodes\r\n*" + std::to_string(node_count) + "\r\n" +
         std::string(nodes);
}
std::string node(std::string_view ip, int port, std::string_view role, std::string_view health = "online") {
  auto bulk = [](std::string_view s) { return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n"; };
  return "*8\r\n" + bulk("ip") + bulk(ip) + bulk("port") + ":" + std::to_string(port) + "\r\n" + bulk("role") +
         bulk(role) + bulk("health") + bulk(health);
}

TEST(ValkeyClusterMap, PartialMapsIPv6AndRefusals) {
  // One shard of two ranges, a primary "failed" during a failover, IPv6.
  std::string one = "*1\r\n" + shard("*4\r\n:0\r\n:99\r\n:200\r\n:200\r\n",
                                     node("::1", 7000, "master", "failed") + node("::1", 7001, "replica"), 2);
  auto map = map_of(one);
  ASSERT_TRUE(map) << map.error();
  ASSERT_EQ(map->primaries().size(), 1u);
  EXPECT_EQ(map->primaries()[0].address, "[::1]:7000");
  EXPECT_FALSE(map->primaries()[0].online);
  EXPECT_EQ(map->node_of_slot(99), 0u);
  EXPECT_EQ(map->node_of_slot(100), SlotMap::unassigned);
  EXPECT_EQ(map->node_of_slot(200), 0u);
  EXPECT_EQ(map->unassigned_slots(), 16384u - 101u);
  // A shard serving nothing is skipped; "primary" is accepted for "master".
  EXPECT_TRUE(map_of("*2\r\n" + shard("*0\r\n", node("10.0.0.9", 7009, "master"), 1) +
                     shard("*2\r\n:0\r\n:16383\r\n", node("10.0.0.1", 7000, "primary"), 1)));
  for (const std::string& bad : {
           std::string("+OK\r\n"),
           "*1\r\n" + shard("*2\r\n:5\r\n:4\r\n", node("10.0.0.1", 7000, "master"), 1),       // reversed
           "*1\r\n" + shard("*2\r\n:0\r\n:16384\r\n", node("10.0.0.1", 7000, "master"), 1),   // out of range
           "*1\r\n" + shard("*1\r\n:0\r\n", node("10.0.0.1", 7000, "master"), 1),             // odd
           "*1\r\n" + shard("*2\r\n:0\r\n:9\r\n", node("10.0.0.1", 7000, "replica"), 1),      // no primary
           "*1\r\n" + shard("*2\r\n:0\r\n:9\r\n", node("", 7000, "master"), 1),               // no ip
           "*1\r\n" + shard("*2\r\n:0\r\n:9\r\n", node("10.0.0.1", 0, "master"), 1),          // no port
           "*1\r\n" + shard("*2\r\n:0\r\n:9\r\n", node("10.0.0.1", 7000, "master") + node("10.0.0.2", 7000, "master"), 2),
           "*2\r\n" + shard("*2\r\n:0\r\n:9\r\n", node("10.0.0.1", 7000, "master"), 1) +
               shard("*2\r\n:9\r\n:10\r\n", node("10.0.0.2", 7000, "master"), 1),             // slot 9 twice
       })
    EXPECT_FALSE(map_of(bad)) << bad;
}

TEST(ValkeyClusterMap, Redirections) {
  auto moved = parse_redirect("MOVED 12182 127.0.0.1:35761");
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->kind, Redirect::Kind::moved);
  EXPECT_EQ(moved->slot, 12182);
  EXPECT_EQ(moved->host, "127.0.0.1");
  EXPECT_EQ(moved->port, 35761);
  auto ask = parse_redirect("ASK 3999 [::1]:6381");
  ASSERT_TRUE(ask);
  EXPECT_EQ(ask->kind, Redirect::Kind::ask);
  EXPECT_EQ(ask->host, "::1");
  auto same_host = parse_redirect("MOVED 1 :6380");
  ASSERT_TRUE(same_host);
  EXPECT_EQ(same_host->host, "");
  for (std::string_view bad : {"ERR unknown command", "MOVED", "MOVED 16384 127.0.0.1:1", "MOVED x 127.0.0.1:1",
                               "ASK 1 127.0.0.1", "ASK 1 127.0.0.1:0", "ASK 1 127.0.0.1:65536", "MOVED 1 [::1:5",
                               "CLUSTERDOWN Hash slot not served"})
    EXPECT_FALSE(parse_redirect(bad)) << bad;
}

// One command on a fresh blocking connection; the raw bytes of its reply
// (read until the reader has one whole reply; bounded by the socket timeout).
std::string raw_command(uint16_t port, std::vector<std::string_view> argv) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out, request;
  resp::append_command(request, argv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return out;
  }
  resp::ReplyReader reader;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
    if (!reader.feed(std::span(reinterpret_cast<const uint8_t*>(buffer), static_cast<size_t>(n)))) break;
    auto reply = reader.next();
    if (!reply || reply->has_value()) break;
  }
  ::close(fd);
  return out;
}


// Three cluster-enabled redis-server 7 nodes, each a primary of a third of
// the slots, made one cluster with CLUSTER MEET: the slot map, the MOVED and
// the ASK that the client will follow are checked against what real nodes
// answer (the routing of every key, a slot being migrated).
TEST(ValkeyClusterMap, RoutesAsARealRedis7ClusterAnswers) {
  ASSERT_EQ(access(test::redis_binary, X_OK), 0) << "redis-server is missing: run ./install-deps.sh";
  test::RedisServer nodes[3] = {test::RedisServer({}, true), test::RedisServer({}, true), test::RedisServer({}, true)};
  for (auto& n : nodes) ASSERT_TRUE(n.start());
  std::vector<std::pair<int, int>> ranges;
  ASSERT_TRUE(test::form_cluster(nodes, &ranges)) << "the cluster did not form within 20 s";
  std::string shards;
  std::expected<SlotMap, std::string> map = std::unexpected(std::string("not read"));
  // Gossip may still be completing a node's view of the others' slots.
  for (int attempt = 0; attempt < 200; ++attempt) {
    shards = raw_command(nodes[1].port(), {"CLUSTER", "SHARDS"});
    map = map_of(shards);
    if (map && map->unassigned_slots() == 0 && map->primaries().size() == 3) break;
    usleep(50'000);
  }
  ASSERT_TRUE(map) << map.error();
  ASSERT_EQ(map->primaries().size(), 3u);
  ASSERT_EQ(map->unassigned_slots(), 0u);
  auto port_of = [&](uint16_t node) { return std::stoi(map->primaries()[node].address.substr(10)); };
  for (int i = 0; i < 3; ++i) EXPECT_EQ(port_of(map->node_of_slot(static_cast<uint16_t>(ranges[static_cast<size_t>(i)].first))), nodes[i].port());

  // Every key is served where the map says; elsewhere MOVED names that node.
  for (int i = 0; i < 200; ++i) {
    std::string key = "mf:{p:peer-" + std::to_string(i) + "}:own";
    uint16_t owner = map->node_of_key(key);
    int right = port_of(owner);
    int wrong = port_of(static_cast<uint16_t>((owner + 1) % 3));
    test::SyncClient at_owner(static_cast<uint16_t>(right), {});
    ASSERT_EQ(reply_text(at_owner.command({"SET", key, "x"})), "OK") << key;
    test::SyncClient elsewhere(static_cast<uint16_t>(wrong), {});
    std::string moved_text = reply_text(elsewhere.command({"GET", key}));
    auto moved = parse_redirect(moved_text);
    ASSERT_TRUE(moved) << moved_text;
    EXPECT_EQ(moved->kind, Redirect::Kind::moved);
    EXPECT_EQ(moved->slot, key_slot(key));
    EXPECT_EQ(moved->port, right);
  }

  // A slot being migrated: its old node answers ASK for a key it no longer
  // has; the new node serves it only after ASKING (else MOVED back).
  const std::string key = "mf:{s:live}:viewers";
  const uint16_t slot = key_slot(key);
  const uint16_t from = map->node_of_slot(slot);
  const uint16_t to = static_cast<uint16_t>((from + 1) % 3);
  test::SyncClient source(static_cast<uint16_t>(port_of(from)), {});
  test::SyncClient target(static_cast<uint16_t>(port_of(to)), {});
  ASSERT_EQ(reply_text(target.command({"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING",
                                       map->primaries()[from].id})),
            "OK");
  ASSERT_EQ(reply_text(source.command({"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING",
                                       map->primaries()[to].id})),
            "OK");
  std::string ask_text = reply_text(source.command({"GET", key}));
  auto ask = parse_redirect(ask_text);
  ASSERT_TRUE(ask) << ask_text;
  EXPECT_EQ(ask->kind, Redirect::Kind::ask);
  EXPECT_EQ(ask->slot, slot);
  EXPECT_EQ(ask->port, port_of(to));
  auto without_asking = parse_redirect(reply_text(target.command({"GET", key})));
  ASSERT_TRUE(without_asking);
  EXPECT_EQ(without_asking->kind, Redirect::Kind::moved);
  EXPECT_EQ(reply_text(target.command({"ASKING"})), "OK");
  EXPECT_EQ(reply_text(target.command({"GET", key})), "(nil)");
}

}  // namespace
}  // namespace mf::valkey
