#pragma once
// One parser benchmark body for every simdjson-based message parser (SDK
// messages, tracker messages): `text` is copied once into storage with
// simdjson's padding after it, then parsed again and again by one parser;
// items and bytes per second are reported.
#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <string>
#include <string_view>

namespace mf::perf {

template <typename Parser>
void bench_parse(benchmark::State& state, const std::string& text) {
  Parser parser;
  std::string storage = text + std::string(simdjson::SIMDJSON_PADDING, ' ');
  std::string_view view(storage.data(), text.size());
  for (auto _ : state) {
    auto result = parser.parse(view);
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

}  // namespace mf::perf
