// Parsing (with whole-message validation) of SDK messages of typical shapes.
#include <benchmark/benchmark.h>

#include <string>

#include "edge/sdk_message.h"
#include "perf/bench_parse.h"

namespace {

void parse_message(benchmark::State& state, const std::string& text) {
  mf::perf::bench_parse<mf::edge::SdkMessageParser>(state, text);
}

void BM_ParsePing(benchmark::State& state) { parse_message(state, R"({"type":"ping","t":1732200000000,"id":17})"); }
BENCHMARK(BM_ParsePing);

void BM_ParseSignalCandidate(benchmark::State& state) {
  parse_message(state, R"({"type":"signal","to":"peer-8f3a2c","kind":"candidate","data":{"candidate":"candidate:842163049 1 udp 1677729535 192.0.2.10 50412 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag X2m9 network-cost 999","sdpMid":"0","sdpMLineIndex":0}})");
}
BENCHMARK(BM_ParseSignalCandidate);

void BM_ParseSignalOffer(benchmark::State& state) {
  std::string sdp = "v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\n";
  while (sdp.size() < 1800) sdp += "a=candidate:1 1 udp 2122260223 192.0.2.1 56143 typ host generation 0\\r\\n";
  parse_message(state, R"({"type":"signal","to":"peer-8f3a2c","kind":"offer","data":{"type":"offer","sdp":")" + sdp + R"("}})");
}
BENCHMARK(BM_ParseSignalOffer);

void BM_ParseBadJson(benchmark::State& state) { parse_message(state, R"({"type":"ping","t":[1,2,3)"); }
BENCHMARK(BM_ParseBadJson);

}  // namespace
