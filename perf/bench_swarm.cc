// Swarm membership and peer matching at swarm sizes 10, 1,000 and 100,000:
// the cost of a join (enter + first `peers`) must not grow with the swarm.
#include <benchmark/benchmark.h>

#include <array>
#include <string>
#include <vector>

#include "edge/swarm.h"

namespace {

using mf::edge::MemberHandle;
using mf::edge::PickRequest;
using mf::edge::Rng;
using mf::edge::Swarm;
using mf::edge::Topology;

constexpr const char* regions[] = {"eu-west", "eu-central", "us-east", "us-west", "ap-south",
                                   "ap-northeast", "sa-east", "af-south", "me-central", "ca-central"};
constexpr const char* countries[] = {"FR", "DE", "US", "BR", "IN", "JP", "ZA", "AE", "CA", "GB", "ES", "IT"};

// Mixed topology: 10 regions (skewed: the first holds about a third), 12
// countries, 40 ASNs, 1 member in 8 not accepting peers.
mf::edge::Member make_member(uint64_t n, Rng& rng) {
  uint32_t r = rng.below(15);
  auto topology = mf::edge::make_topology(regions[r < 5 ? 0 : r - 5], countries[rng.below(12)],
                                          64'500 + rng.below(40), "wifi");
  mf::edge::Member m;
  m.peer_id.assign("peer-" + std::to_string(n));
  m.topology = *topology;
  m.accepting_peers = rng.below(8) != 0;
  return m;
}

struct Fixture {
  explicit Fixture(int64_t size) : rng(12345), swarm(rng.next()) {
    for (int64_t i = 0; i < size; ++i) handles.push_back(swarm.add(make_member(next_id++, rng)));
  }
  Rng rng;
  Swarm swarm;
  std::vector<MemberHandle> handles;
  uint64_t next_id = 0;
};

Topology requester_in(const char* region) { return *mf::edge::make_topology(region, "FR", 64'510, ""); }

void run_pick(benchmark::State& state, const Topology& topology) {
  Fixture f(state.range(0));
  std::array<MemberHandle, 8> out;
  std::array<std::string_view, 2> exclude = {"peer-1", "peer-2"};
  PickRequest request;
  request.requester = "peer-0";
  request.requester_topology = topology;
  request.count = 8;
  request.exclude = exclude;
  uint64_t now_ms = 0;
  for (auto _ : state) {
    request.now_ms = now_ms += 7;
    benchmark::DoNotOptimize(f.swarm.pick(request, out, f.rng));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// Requester in the largest region: the region index answers alone.
void BM_PickSameRegion(benchmark::State& state) { run_pick(state, requester_in("eu-west")); }
BENCHMARK(BM_PickSameRegion)->Arg(10)->Arg(1'000)->Arg(100'000);

// Requester in a small region (1/15 of members).
void BM_PickSmallRegion(benchmark::State& state) { run_pick(state, requester_in("ca-central")); }
BENCHMARK(BM_PickSmallRegion)->Arg(10)->Arg(1'000)->Arg(100'000);

// Requester in a region nobody else is in, or with no topology: the whole
// swarm is searched (scanned or sampled).
void BM_PickNoRegionMatch(benchmark::State& state) { run_pick(state, requester_in("antarctica")); }
BENCHMARK(BM_PickNoRegionMatch)->Arg(10)->Arg(1'000)->Arg(100'000);

// Leave of a random member (a record moves into its place) and a join of a
// new one: the membership part of churn.
void BM_RemoveAdd(benchmark::State& state) {
  Fixture f(state.range(0));
  std::vector<mf::edge::Member> fresh;
  for (int i = 0; i < 1024; ++i) fresh.push_back(make_member(f.next_id++, f.rng));
  size_t k = 0;
  for (auto _ : state) {
    uint32_t victim = f.rng.below(static_cast<uint32_t>(f.handles.size()));
    f.swarm.remove(f.handles[victim]);
    f.handles[victim] = f.swarm.add(fresh[k++ & 1023]);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_RemoveAdd)->Arg(10)->Arg(1'000)->Arg(100'000);

// A whole join as the owner shard sees it: a member leaves, a new one enters
// and gets its first `peers` (8 candidates).
void BM_Join(benchmark::State& state) {
  Fixture f(state.range(0));
  std::vector<mf::edge::Member> fresh;
  for (int i = 0; i < 1024; ++i) fresh.push_back(make_member(f.next_id++, f.rng));
  std::array<MemberHandle, 8> out;
  size_t k = 0;
  uint64_t now_ms = 0;
  for (auto _ : state) {
    uint32_t victim = f.rng.below(static_cast<uint32_t>(f.handles.size()));
    f.swarm.remove(f.handles[victim]);
    const mf::edge::Member& joining = fresh[k++ & 1023];
    f.handles[victim] = f.swarm.add(joining);
    PickRequest request;
    request.requester = joining.peer_id.view();
    request.requester_topology = joining.topology;
    request.count = 8;
    request.now_ms = now_ms += 7;
    benchmark::DoNotOptimize(f.swarm.pick(request, out, f.rng));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_Join)->Arg(10)->Arg(1'000)->Arg(100'000);

}  // namespace
