// Cost of RESP per command on the Valkey client's hot path (docs/cluster.md): the
// presence registry refreshes peers in pipelined batches, so what matters is
// encoding one SET with a TTL into a reused buffer, and reading a pipeline
// of small replies (+OK, :n, short bulk strings) out of received bytes.
// hiredis' own formatter is measured beside ours: it allocates per command.

#include <benchmark/benchmark.h>
#include <hiredis/hiredis.h>

#include <array>
#include <string>
#include <string_view>

#include "common/codec/resp_codec.h"

namespace {

using namespace mf::resp;

const std::string kValue(100, 'v');
const std::array<std::string_view, 5> kSet{"SET", "mf:{s:stream-42}:peer:p-000123", kValue, "PX", "30000"};

void BM_EncodeSet100(benchmark::State& state) {
  std::string out;
  out.reserve(4096);
  for (auto _ : state) {
    out.clear();
    append_command(out, kSet);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * command_size(kSet)));
}
BENCHMARK(BM_EncodeSet100);

void BM_EncodeSet100Hiredis(benchmark::State& state) {
  std::array<const char*, 5> pointers;
  std::array<size_t, 5> lengths;
  for (size_t i = 0; i < kSet.size(); ++i) {
    pointers[i] = kSet[i].data();
    lengths[i] = kSet[i].size();
  }
  for (auto _ : state) {
    char* out = nullptr;
    int n = redisFormatCommandArgv(&out, 5, pointers.data(), lengths.data());
    benchmark::DoNotOptimize(n);
    redisFreeCommand(out);
  }
}
BENCHMARK(BM_EncodeSet100Hiredis);

std::string make_pipeline() {
  std::string input;
  for (int i = 0; i < 1000; ++i) {
    switch (i % 3) {
      case 0: input += "+OK\r\n"; break;
      case 1: input += ":" + std::to_string(i * 7919) + "\r\n"; break;
      case 2: input += "$16\r\npeer-" + std::to_string(1000000000 + i) + "0\r\n"; break;
    }
  }
  return input;
}

// The pipeline arrives in 16 KiB receive buffers (the reactor's size); 1,000
// small replies fit in one.
void BM_ParsePipeline1000(benchmark::State& state) {
  const std::string input = make_pipeline();
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  ReplyReader reader;
  for (auto _ : state) {
    if (!reader.feed(bytes)) state.SkipWithError("feed failed");
    size_t n = 0;
    for (;;) {
      auto r = reader.next();
      if (!r || !r->has_value()) break;
      benchmark::DoNotOptimize((*r)->type());
      ++n;
    }
    if (n != 1000) state.SkipWithError("wrong reply count");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * 1000));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * input.size()));
}
BENCHMARK(BM_ParsePipeline1000);

}  // namespace
