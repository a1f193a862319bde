// Cost of routing a command in a Valkey Cluster: the hash slot of its key
// (CRC16 of the hash tag), computed for every command the edge sends to a
// cluster, so it must stay far below the command's own encoding cost
// (bench_resp_codec).

#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "common/valkey/valkey_keyslot.h"

namespace {

using mf::valkey::key_slot;

// The keys and channels the edge uses (docs/cluster.md, "Key layout").
void BM_SlotOwnerKey(benchmark::State& state) {
  std::string key = "mf:{p:Vq3m9ZxT0rL2pQ8wYk4s1A}:own";
  for (auto _ : state) benchmark::DoNotOptimize(key_slot(key));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(key.size()));
}
BENCHMARK(BM_SlotOwnerKey);

void BM_SlotSignalChannel(benchmark::State& state) {
  std::string key = "mf:{e:edge-eu-west-17}:sig:3";
  for (auto _ : state) benchmark::DoNotOptimize(key_slot(key));
}
BENCHMARK(BM_SlotSignalChannel);

// A key without a tag, of the given length: the CRC over all of it.
void BM_SlotUntagged(benchmark::State& state) {
  std::string key(static_cast<size_t>(state.range(0)), 'k');
  for (auto _ : state) benchmark::DoNotOptimize(key_slot(key));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_SlotUntagged)->Arg(16)->Arg(64)->Arg(256);

}  // namespace

BENCHMARK_MAIN();
