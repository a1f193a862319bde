// Cost of the PROXY v2 header per relayed connection: mf-ingress encodes one
// for each connection it opens to an edge, and the edge parses it before the
// TLS handshake. The typical header is TCP over IPv4 with the client's SNI
// and ALPN, with and without the CRC32C TLV.

#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <string_view>

#include "common/codec/proxy_protocol.h"

namespace {

using namespace mf::proxy;

const Endpoint kSource = Endpoint::ipv4({203, 0, 113, 54}, 51234);
const Endpoint kDestination = Endpoint::ipv4({10, 0, 3, 17}, 8445);
const Endpoint kSource6 =
    Endpoint::ipv6({0x20, 0x01, 0x0D, 0xB8, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x54}, 51234);
const Endpoint kDestination6 =
    Endpoint::ipv6({0xFD, 0x00, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0x17}, 8445);
constexpr std::string_view kSni = "edge-eu-1.meshedflow.example";
constexpr std::string_view kAlpn = "http/1.1";

struct Encoded {
  std::array<uint8_t, max_header_bytes> bytes{};
  size_t size = 0;
};

Encoded make_header(const Endpoint& s, const Endpoint& d, bool crc) {
  Encoded e;
  e.size = encode(e.bytes, s, d, kSni, kAlpn, crc);
  return e;
}

void run_parse(benchmark::State& state, const Encoded& header) {
  const std::span<const uint8_t> input(header.bytes.data(), header.size);
  for (auto _ : state) {
    auto h = parse(input);
    benchmark::DoNotOptimize(h);
    if (!h) state.SkipWithError("parse failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * header.size));
  state.counters["header_bytes"] = static_cast<double>(header.size);
}

void BM_ParseIpv4SniAlpn(benchmark::State& state) {
  run_parse(state, make_header(kSource, kDestination, false));
}
BENCHMARK(BM_ParseIpv4SniAlpn);

void BM_ParseIpv4SniAlpnCrc32c(benchmark::State& state) {
  run_parse(state, make_header(kSource, kDestination, true));
}
BENCHMARK(BM_ParseIpv4SniAlpnCrc32c);

void BM_ParseIpv6SniAlpnCrc32c(benchmark::State& state) {
  run_parse(state, make_header(kSource6, kDestination6, true));
}
BENCHMARK(BM_ParseIpv6SniAlpnCrc32c);

void run_encode(benchmark::State& state, const Endpoint& s, const Endpoint& d, bool crc) {
  std::array<uint8_t, max_header_bytes> out;
  size_t n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s);
    n = encode(out, s, d, kSni, kAlpn, crc);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
  if (n == 0) state.SkipWithError("encode failed");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
}

void BM_EncodeIpv4SniAlpn(benchmark::State& state) {
  run_encode(state, kSource, kDestination, false);
}
BENCHMARK(BM_EncodeIpv4SniAlpn);

void BM_EncodeIpv4SniAlpnCrc32c(benchmark::State& state) {
  run_encode(state, kSource, kDestination, true);
}
BENCHMARK(BM_EncodeIpv4SniAlpnCrc32c);

void BM_EncodeLocal(benchmark::State& state) {
  std::array<uint8_t, fixed_header_bytes> out;
  for (auto _ : state) {
    benchmark::DoNotOptimize(encode_local(out));
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_EncodeLocal);

}  // namespace
