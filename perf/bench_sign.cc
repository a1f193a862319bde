// mf-sign's costs (docs/benchmarks.md, "Segment manifests"): SHA-256
// throughput, CMAF chunk splitting, one ES256 signature, and the whole
// re-sign of a 6-rendition live stream when each playlist gains a segment
// (hash the new segment and its chunks, sign, write and fsync 6 manifests).
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "origin/cmaf_chunks.h"
#include "origin/jws_compact.h"
#include "origin/p256_key.h"
#include "origin/playlist_signer.h"
#include "origin/sha256.h"
#include "origin/tests/bmff_test_box.h"

namespace {

using namespace mf::origin;

// A 1 s CMAF segment of `bytes` (about), cut into 4 fragments as ffmpeg's
// frag_duration=250000 does.
std::string cmaf_segment(size_t bytes, char fill) {
  std::string out = bmff_test_box("styp", 16, 's');
  for (int i = 0; i < 4; ++i) out += bmff_test_box("moof", 600, 'm') + bmff_test_box("mdat", bytes / 4, fill);
  return out;
}

const P256PrivateKey& key() {
  static P256PrivateKey k = [] {
    auto generated = P256PrivateKey::generate();
    if (!generated) std::abort();
    return std::move(*generated);
  }();
  return k;
}

void BM_Sha256(benchmark::State& state) {
  std::vector<uint8_t> data(static_cast<size_t>(state.range(0)), 0x5a);
  for (auto _ : state) benchmark::DoNotOptimize(sha256(std::span<const uint8_t>(data)));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Sha256)->Arg(64 << 10)->Arg(1 << 20);

void BM_SplitCmafChunks(benchmark::State& state) {
  std::string segment = cmaf_segment(750000, 'x');
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(segment.data()), segment.size());
  for (auto _ : state) {
    auto chunks = split_cmaf_chunks(bytes);
    if (!chunks || chunks->size() != 4) std::abort();
    benchmark::DoNotOptimize(chunks);
  }
}
BENCHMARK(BM_SplitCmafChunks);

void BM_SignEs256(benchmark::State& state) {
  // A live manifest's signing input: header and a payload of 6 segments of
  // 4 chunks, about 2.5 KB.
  std::string input = jws_signing_input(manifest_jws_header("kid-0123456789ab"), std::string(1900, 'p'));
  for (auto _ : state) {
    auto signature = key().sign(input);
    if (!signature) std::abort();
    benchmark::DoNotOptimize(signature);
  }
}
BENCHMARK(BM_SignEs256);

void BM_VerifyEs256(benchmark::State& state) {
  std::string input = jws_signing_input(manifest_jws_header("kid-0123456789ab"), std::string(1900, 'p'));
  auto signature = key().sign(input);
  if (!signature) std::abort();
  for (auto _ : state) {
    if (!key().public_key().verify(input, *signature)) std::abort();
  }
}
BENCHMARK(BM_VerifyEs256);

// One live update: every rendition's playlist gains its next 1 s segment
// and drops the oldest (6 listed), then mf-sign re-signs the 6 playlists.
// Segment sizes are those of a 6000/4500/3000/1800/1000/500 kbit/s ladder.
void BM_ResignLiveUpdate6Renditions(benchmark::State& state) {
  char pattern[] = "/tmp/mf-bench-sign-XXXXXX";
  if (!::mkdtemp(pattern)) std::abort();
  std::string root = pattern;
  const size_t kbps[] = {6000, 4500, 3000, 1800, 1000, 500};
  std::vector<std::string> playlists;
  for (size_t r = 0; r < 6; ++r) {
    std::string dir = root + "/r" + std::to_string(r);
    ::mkdir(dir.c_str(), 0755);
    std::ofstream(dir + "/init.mp4", std::ios::binary) << bmff_test_box("ftyp", 16, 'f') << bmff_test_box("moov", 900, 'm');
    playlists.push_back(dir + "/index.m3u8");
  }
  PlaylistSigner signer(key(), SignerSettings{"bench", "kid-0123456789ab", 0, true}, [] { return int64_t{1}; });
  uint64_t next = 0;
  auto publish = [&] {
    for (size_t r = 0; r < 6; ++r) {
      std::string dir = root + "/r" + std::to_string(r);
      std::ofstream(dir + "/seg_" + std::to_string(next) + ".m4s", std::ios::binary)
          << cmaf_segment(kbps[r] * 125, static_cast<char>('a' + next % 26));
      uint64_t first = next >= 5 ? next - 5 : 0;
      std::string text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:" +
                         std::to_string(first) + "\n#EXT-X-MAP:URI=\"init.mp4\"\n";
      for (uint64_t n = first; n <= next; ++n) text += "#EXTINF:1.0,\nseg_" + std::to_string(n) + ".m4s\n";
      std::ofstream(playlists[r], std::ios::binary) << text;
    }
    ++next;
  };
  for (int warm = 0; warm < 6; ++warm) {
    publish();
    for (const std::string& p : playlists)
      if (!signer.sign(p)) std::abort();
  }
  for (auto _ : state) {
    state.PauseTiming();
    publish();
    state.ResumeTiming();
    for (const std::string& p : playlists) {
      auto signed_playlist = signer.sign(p);
      if (!signed_playlist || !*signed_playlist) std::abort();
    }
  }
  state.counters["new_bytes_per_update"] =
      static_cast<double>((6000 + 4500 + 3000 + 1800 + 1000 + 500) * 125);
  std::filesystem::remove_all(root);
}
BENCHMARK(BM_ResignLiveUpdate6Renditions)->Unit(benchmark::kMillisecond);

}  // namespace
