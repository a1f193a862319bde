// Cost of admitting one WebSocket connection at the HTTP layer: finding the
// head end, parsing it, deciding the upgrade (SHA-1 included) and formatting
// the 101, on a browser-shaped request.

#include <benchmark/benchmark.h>

#include <array>
#include <string_view>

#include "common/codec/http_request_head.h"
#include "common/codec/http_response.h"
#include "common/codec/websocket_upgrade.h"

namespace {

using namespace mf::http;

// What Chrome sends for `new WebSocket(url, "meshedflow.v1")`: 12 fields,
// 619 bytes.
constexpr std::string_view browser_upgrade =
    "GET /ws?stream=8f14e45fceea167a&token=eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.c2ln"
    " HTTP/1.1\r\n"
    "Host: edge-eu-1.meshedflow.example:8445\r\n"
    "Connection: Upgrade\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: https://app.meshedflow.example\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
    "Sec-WebSocket-Protocol: meshedflow.v1\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

void BM_FindHeadEnd(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(find_head_end(browser_upgrade));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * browser_upgrade.size()));
}
BENCHMARK(BM_FindHeadEnd);

void BM_ParseRequestHead(benchmark::State& state) {
  for (auto _ : state) {
    auto head = parse_request_head(browser_upgrade);
    benchmark::DoNotOptimize(head);
    if (!head) state.SkipWithError("parse failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * browser_upgrade.size()));
}
BENCHMARK(BM_ParseRequestHead);

void BM_ParseAndDecide(benchmark::State& state) {
  const UpgradeRoutes routes;
  for (auto _ : state) {
    auto head = parse_request_head(browser_upgrade);
    const UpgradeDecision d = decide_upgrade(*head, routes);
    benchmark::DoNotOptimize(d);
    if (d.status != 101) state.SkipWithError("not upgraded");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ParseAndDecide);

void BM_ParseDecideFormat101(benchmark::State& state) {
  const UpgradeRoutes routes;
  std::array<char, 256> out;
  for (auto _ : state) {
    const size_t end = find_head_end(browser_upgrade);
    auto head = parse_request_head(browser_upgrade.substr(0, end));
    const UpgradeDecision d = decide_upgrade(*head, routes);
    const size_t n = format_switching_protocols(out, d.accept,
                                                d.select_subprotocol ? routes.subprotocol : "");
    benchmark::DoNotOptimize(n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ParseDecideFormat101);

void BM_WebSocketAcceptKey(benchmark::State& state) {
  for (auto _ : state) {
    auto accept = websocket_accept_key("x3JJHMbDL1EzLkh9GBhXDw==");
    benchmark::DoNotOptimize(accept);
  }
}
BENCHMARK(BM_WebSocketAcceptKey);

}  // namespace
