#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/codec/utf8_validator.h"
#include "common/codec/websocket_codec.h"

namespace {

using mf::ws::Decoder;
using mf::ws::DecoderConfig;
using mf::ws::Opcode;

struct CountingHandler {
  size_t bytes = 0;
  size_t messages = 0;
  void on_message_data(std::span<const uint8_t> c, bool, bool, bool last) {
    bytes += c.size();
    messages += last;
  }
  void on_ping(std::span<const uint8_t>) {}
  void on_pong(std::span<const uint8_t>) {}
  void on_close(uint16_t, std::string_view) {}
  void on_error(uint16_t, std::string_view) { std::abort(); }
};

// JSON-like ASCII text of n bytes.
std::vector<uint8_t> ascii_text(size_t n) {
  const std::string pattern = "{\"type\":\"signal\",\"to\":\"peer-42\",\"kind\":\"candidate\"}";
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(pattern[i % pattern.size()]);
  return out;
}

// Mostly ASCII with 2-, 3- and 4-byte characters mixed in.
std::vector<uint8_t> mixed_text(size_t n) {
  const std::string pattern = "name:Ren\xC3\xA9" "e city:\xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x8E\xA5 ok ";
  std::vector<uint8_t> out;
  while (out.size() + pattern.size() <= n) out.insert(out.end(), pattern.begin(), pattern.end());
  while (out.size() < n) out.push_back('.');
  return out;
}

// Decodes a batch of 64 masked text frames of the given payload size per
// iteration. Decoding unmasks in place, which would corrupt the input for the
// next iteration, so the frames use an all-zero key: the XOR work is the
// same for every key value.
void BM_DecodeMaskedText(benchmark::State& state) {
  const size_t payload_size = static_cast<size_t>(state.range(0));
  constexpr size_t kFrames = 64;
  const uint8_t key[4] = {0, 0, 0, 0};
  const auto payload = ascii_text(payload_size);
  std::vector<uint8_t> stream;
  for (size_t i = 0; i < kFrames; ++i) {
    uint8_t frame[mf::ws::max_header_bytes + 1000];
    const size_t n = mf::ws::encode_frame(frame, Opcode::text, true, payload, key);
    stream.insert(stream.end(), frame, frame + n);
  }
  DecoderConfig config;
  Decoder decoder(mf::ws::Role::server, &config);
  CountingHandler handler;
  for (auto _ : state) {
    decoder.feed(stream, handler);
    benchmark::DoNotOptimize(handler.bytes);
  }
  if (handler.messages != kFrames * state.iterations()) std::abort();
  state.SetBytesProcessed(static_cast<int64_t>(stream.size() * state.iterations()));
  state.SetItemsProcessed(static_cast<int64_t>(kFrames * state.iterations()));
  state.counters["frames/s"] =
      benchmark::Counter(static_cast<double>(kFrames * state.iterations()),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeMaskedText)->Arg(100)->Arg(1000);

void BM_EncodeServerFrame(benchmark::State& state) {
  const auto payload = ascii_text(static_cast<size_t>(state.range(0)));
  std::vector<uint8_t> out(mf::ws::max_header_bytes + payload.size());
  for (auto _ : state) {
    const size_t n = mf::ws::encode_frame(out, Opcode::text, true, payload, nullptr);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(payload.size() * state.iterations()));
}
BENCHMARK(BM_EncodeServerFrame)->Arg(100)->Arg(1000);

void BM_EncodeServerHeader(benchmark::State& state) {
  uint8_t out[mf::ws::max_header_bytes];
  uint64_t length = 100;
  for (auto _ : state) {
    benchmark::DoNotOptimize(length);
    const size_t n = mf::ws::encode_header(out, Opcode::text, true, length, nullptr);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_EncodeServerHeader);

void BM_MaskCopy(benchmark::State& state) {
  const auto payload = ascii_text(static_cast<size_t>(state.range(0)));
  std::vector<uint8_t> out(payload.size());
  const uint8_t key[4] = {0x37, 0xFA, 0x21, 0x3D};
  for (auto _ : state) {
    mf::ws::mask_copy(out.data(), payload.data(), payload.size(), key);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(payload.size() * state.iterations()));
}
BENCHMARK(BM_MaskCopy)->Arg(1000);

void BM_Utf8Ascii(benchmark::State& state) {
  const auto text = ascii_text(static_cast<size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(mf::is_valid_utf8(text));
  state.SetBytesProcessed(static_cast<int64_t>(text.size() * state.iterations()));
}
BENCHMARK(BM_Utf8Ascii)->Arg(100)->Arg(1000)->Arg(16 * 1024);

void BM_Utf8Mixed(benchmark::State& state) {
  const auto text = mixed_text(static_cast<size_t>(state.range(0)));
  if (!mf::is_valid_utf8(text)) std::abort();
  for (auto _ : state) benchmark::DoNotOptimize(mf::is_valid_utf8(text));
  state.SetBytesProcessed(static_cast<int64_t>(text.size() * state.iterations()));
}
BENCHMARK(BM_Utf8Mixed)->Arg(1000)->Arg(16 * 1024);

}  // namespace
