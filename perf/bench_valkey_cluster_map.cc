// Cost of the cluster slot map: routing one key (slot, then the primary
// serving it: every command to a cluster pays this), and rebuilding the map
// from a CLUSTER SHARDS reply of 3 primaries with a replica each (paid on
// every MOVED and every reconnect, so it only needs to be far below a
// round trip).

#include <benchmark/benchmark.h>

#include <span>
#include <string>

#include "common/codec/resp_codec.h"
#include "common/valkey/valkey_cluster_map.h"

namespace {

using namespace mf;

std::string bulk(std::string_view s) { return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n"; }

// Three shards of 5461 slots, each a primary and a replica, as Redis 7 sends them.
std::string three_shards() {
  std::string out = "*3\r\n";
  int ports[3][2] = {{7000, 7003}, {7001, 7004}, {7002, 7005}};
  int ranges[3][2] = {{0, 5460}, {5461, 10922}, {10923, 16383}};
  for (int s = 0; s < 3; ++s) {
    out += "*4\r\n" + bulk("slots") + "*2\r\n:" + std::to_string(ranges[s][0]) + "\r\n:" + std::to_string(ranges[s][1]) +
           "\r\n" + bulk("nodes") + "*2\r\n";
    for (int n = 0; n < 2; ++n)
      out += "*14\r\n" + bulk("id") + bulk(std::string(40, 'a' + static_cast<char>(s))) + bulk("port") + ":" +
             std::to_string(ports[s][n]) + "\r\n" + bulk("ip") + bulk("127.0.0.1") + bulk("endpoint") +
             bulk("127.0.0.1") + bulk("role") + bulk(n == 0 ? "master" : "replica") + bulk("replication-offset") +
             ":14\r\n" + bulk("health") + bulk("online");
  }
  return out;
}

void BM_RouteOwnerKey(benchmark::State& state) {
  resp::ReplyReader reader;
  std::string bytes = three_shards();
  (void)reader.feed(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  auto map = valkey::SlotMap::from_shards(**reader.next(), 16);
  std::string key = "mf:{p:Vq3m9ZxT0rL2pQ8wYk4s1A}:own";
  for (auto _ : state) benchmark::DoNotOptimize(map->node_of_key(key));
}
BENCHMARK(BM_RouteOwnerKey);

void BM_SlotMapFromShards(benchmark::State& state) {
  std::string bytes = three_shards();
  resp::ReplyReader reader;
  for (auto _ : state) {
    (void)reader.feed(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    auto map = valkey::SlotMap::from_shards(**reader.next(), 16);
    benchmark::DoNotOptimize(map->primaries().data());
  }
}
BENCHMARK(BM_SlotMapFromShards);

}  // namespace

BENCHMARK_MAIN();
