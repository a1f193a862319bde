// Parsing of WebTorrent tracker messages (docs/tracker.md) of the shapes
// aquatic_ws's load test sends: an announce with 10 offers of a 47-character
// dummy SDP, an answer, a scrape; and writing a relayed offer.
#include <benchmark/benchmark.h>

#include <string>

#include "edge/tracker_message.h"
#include "edge/tracker_reply.h"
#include "perf/bench_parse.h"

namespace {

const std::string sdp47 = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu";

void parse_message(benchmark::State& state, const std::string& text) {
  mf::perf::bench_parse<mf::edge::TrackerMessageParser>(state, text);
}

void BM_ParseAnnounceTenOffers(benchmark::State& state) {
  std::string offers;
  for (int i = 0; i < 10; ++i) {
    if (i) offers += ",";
    offers += R"({"offer":{"type":"offer","sdp":")" + sdp47 + R"("},"offer_id":"offer-id-0123456789)" +
              std::to_string(i) + R"("})";
  }
  parse_message(state, R"({"action":"announce","info_hash":"\u00e4\u0011infohash-0123456","peer_id":"-WW0105-abcdefghijkl",)"
                       R"("event":"started","numwant":10,"uploaded":0,"downloaded":0,"left":0,"offers":[)" +
                           offers + "]}");
}
BENCHMARK(BM_ParseAnnounceTenOffers);

void BM_ParseAnswer(benchmark::State& state) {
  parse_message(state, R"({"action":"announce","info_hash":"infohash-0123456789a","peer_id":"-WW0105-abcdefghijkl",)"
                       R"("to_peer_id":"-WW0105-mnopqrstuvwx","answer":{"type":"answer","sdp":")" + sdp47 +
                           R"("},"offer_id":"offer-id-0123456789a"})");
}
BENCHMARK(BM_ParseAnswer);

void BM_ParseScrape(benchmark::State& state) {
  parse_message(state, R"({"action":"scrape","info_hash":["infohash-0123456789a","infohash-0123456789b"]})");
}
BENCHMARK(BM_ParseScrape);

void BM_WriteOffer(benchmark::State& state) {
  mf::edge::TrackerId info{}, from{}, offer_id{};
  for (size_t i = 0; i < mf::edge::tracker_id_bytes; ++i) {
    info[i] = static_cast<uint8_t>('a' + i);
    from[i] = static_cast<uint8_t>(0xE0 + i % 16);
    offer_id[i] = static_cast<uint8_t>(i);
  }
  std::string offer = R"({"type":"offer","sdp":")" + sdp47 + R"("})";
  std::array<char, 512> out;
  for (auto _ : state) {
    auto text = mf::edge::write_tracker_offer(out, info, from, offer, offer_id);
    benchmark::DoNotOptimize(text);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_WriteOffer);

}  // namespace
