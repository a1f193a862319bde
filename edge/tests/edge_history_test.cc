#include "edge/edge_history.h"

#include <gtest/gtest.h>
#include <simdjson.h>

namespace mf::edge {
namespace {

HistoryTotals at(uint64_t time_ms, uint64_t peers, uint64_t signals, uint64_t p2p, uint64_t cdn) {
  HistoryTotals t;
  t.time_ms = time_ms;
  t.peers = peers;
  t.connections = peers + 1;
  t.joins = peers;
  t.signals = signals;
  t.p2p_bytes = p2p;
  t.cdn_bytes = cdn;
  return t;
}

TEST(EdgeHistory, SamplesHoldWhatHappenedDuringTheirPeriod) {
  EdgeHistory h(4, at(1000, 0, 0, 0, 0));
  h.record(at(11000, 3, 50, 300, 100));
  HistoryTotals second = at(21000, 2, 70, 300, 500);
  second.errors[2] = 4;
  h.record(second);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.at(0).time_ms, 11000u);
  EXPECT_EQ(h.at(0).period_ms, 10000u);
  EXPECT_EQ(h.at(0).peers, 3u);
  EXPECT_EQ(h.at(0).signals, 50u);
  EXPECT_EQ(h.at(0).p2p_bytes, 300u);
  EXPECT_EQ(h.at(0).cdn_bytes, 100u);
  EXPECT_EQ(h.at(1).peers, 2u);
  EXPECT_EQ(h.at(1).signals, 20u);
  EXPECT_EQ(h.at(1).p2p_bytes, 0u);
  EXPECT_EQ(h.at(1).cdn_bytes, 400u);
  EXPECT_EQ(h.at(1).errors[2], 4u);
  EXPECT_EQ(h.at(1).errors[0], 0u);
}

TEST(EdgeHistory, RingKeepsTheNewestCapacitySamples) {
  EdgeHistory h(3, at(0, 0, 0, 0, 0));
  for (uint64_t i = 1; i <= 7; ++i) h.record(at(i * 100, i, i * 10, 0, 0));
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.capacity(), 3u);
  EXPECT_EQ(h.at(0).peers, 5u);
  EXPECT_EQ(h.at(1).peers, 6u);
  EXPECT_EQ(h.at(2).peers, 7u);
  EXPECT_EQ(h.at(2).signals, 10u);
  EXPECT_EQ(h.memory_bytes(), 3 * sizeof(HistorySample));
  EXPECT_EQ(sizeof(HistorySample), 80u);  // the figure docs/edge.md gives
}

TEST(EdgeHistory, ACounterThatWentDownAndAZeroPeriodCountNothing) {
  EdgeHistory h(4, at(0, 0, 0, 0, 0));
  h.record(at(100, 1, 40, 10, 10));
  h.record(at(100, 9, 90, 90, 90));  // same instant: skipped
  h.record(at(200, 1, 30, 5, 20));
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.at(1).signals, 0u);
  EXPECT_EQ(h.at(1).p2p_bytes, 0u);
  EXPECT_EQ(h.at(1).cdn_bytes, 10u);
}

simdjson::dom::element parse(simdjson::dom::parser& parser, const std::string& text) {
  simdjson::dom::element root;
  auto error = parser.parse(text).get(root);
  EXPECT_EQ(error, simdjson::SUCCESS) << text;
  return root;
}

// The value at `path` (a key, or an index into an array) as T.
template <class T>
T get(simdjson::simdjson_result<simdjson::dom::element> e) {
  T v{};
  EXPECT_EQ(e.get(v), simdjson::SUCCESS);
  return v;
}

TEST(HistoryJson, SamplesOldestFirstWithRatesAndOffload) {
  EdgeHistory h(8, at(0, 0, 0, 0, 0));
  h.record(at(10000, 3, 50, 300, 100));
  h.record(at(20000, 2, 50, 0, 0));
  std::string text = format_history_json(h, "edge-a", 25000, 10000, 1 << 20);
  simdjson::dom::parser parser;
  auto root = parse(parser, text);
  EXPECT_EQ(get<std::string_view>(root["edge"]), "edge-a");
  EXPECT_EQ(get<uint64_t>(root["timeMs"]), 25000u);
  EXPECT_EQ(get<uint64_t>(root["periodMs"]), 10000u);
  EXPECT_EQ(get<uint64_t>(root["capacity"]), 8u);
  EXPECT_FALSE(get<bool>(root["truncated"]));
  auto codes = get<simdjson::dom::array>(root["errorCodes"]);
  EXPECT_EQ(codes.size(), history_error_codes);
  EXPECT_EQ(get<std::string_view>(codes.at(0)), "bad-json");
  auto samples = get<simdjson::dom::array>(root["samples"]);
  ASSERT_EQ(samples.size(), 2u);
  simdjson::dom::element first = get<simdjson::dom::element>(samples.at(0));
  EXPECT_EQ(get<uint64_t>(first["timeMs"]), 10000u);
  EXPECT_EQ(get<uint64_t>(first["peers"]), 3u);
  EXPECT_DOUBLE_EQ(get<double>(first["signalsPerSecond"]), 5.0);
  EXPECT_DOUBLE_EQ(get<double>(first["offloadRatio"]), 0.75);
  EXPECT_EQ(get<simdjson::dom::array>(first["errors"]).size(), history_error_codes);
  simdjson::dom::element second = get<simdjson::dom::element>(samples.at(1));
  EXPECT_TRUE(second["offloadRatio"].is_null());
  EXPECT_DOUBLE_EQ(get<double>(second["signalsPerSecond"]), 0.0);
}

TEST(HistoryJson, OldestSamplesLeftOutBeyondTheByteBudget) {
  EdgeHistory h(100, at(0, 0, 0, 0, 0));
  for (uint64_t i = 1; i <= 100; ++i) h.record(at(i * 1000, i, i, 0, 0));
  std::string full = format_history_json(h, "e", 100000, 1000, 1 << 20);
  std::string cut = format_history_json(h, "e", 100000, 1000, full.size() / 2);
  EXPECT_LE(cut.size(), full.size() / 2);
  simdjson::dom::parser parser;
  auto root = parse(parser, cut);
  EXPECT_TRUE(get<bool>(root["truncated"]));
  auto samples = get<simdjson::dom::array>(root["samples"]);
  ASSERT_GT(samples.size(), 10u);
  ASSERT_LT(samples.size(), 100u);
  // The newest is kept, last.
  EXPECT_EQ(get<uint64_t>(get<simdjson::dom::element>(samples.at(samples.size() - 1))["peers"]), 100u);
  simdjson::dom::parser parser2;
  auto empty = parse(parser2, format_history_json(EdgeHistory(4, at(0, 0, 0, 0, 0)), "e", 0, 1000, 1 << 20));
  EXPECT_EQ(get<simdjson::dom::array>(empty["samples"]).size(), 0u);
}

}  // namespace
}  // namespace mf::edge
