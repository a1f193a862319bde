#include "edge/cluster_summary.h"

#include <gtest/gtest.h>
#include <simdjson.h>

namespace mf::edge {
namespace {

template <class T>
T get(simdjson::simdjson_result<simdjson::dom::element> e) {
  T v{};
  EXPECT_EQ(e.get(v), simdjson::SUCCESS);
  return v;
}

std::vector<std::unique_ptr<MetricsSnapshot>> shards_with(size_t streams) {
  std::vector<std::unique_ptr<MetricsSnapshot>> shards;
  for (int i = 0; i < 2; ++i) shards.push_back(std::make_unique<MetricsSnapshot>());
  for (size_t i = 0; i < streams; ++i) {
    StreamSummary s;
    s.stream_id = "stream-" + std::to_string(i);
    s.viewers = static_cast<uint32_t>(i + 1);
    s.stats = StreamStats{300, 100, 50, 0};
    shards[i % 2]->streams.push_back(s);
    shards[i % 2]->peers_joined += i + 1;
  }
  shards[0]->connections = 7;
  shards[1]->connections = 5;
  shards[0]->edge.joins = 4;
  shards[1]->edge.signals_relayed = 9;
  shards[1]->edge.errors[3] = 2;
  shards[0]->edge.offload = StreamStats{600, 200, 10, 0};
  return shards;
}

TEST(ClusterSummary, TotalsAndTheBusiestStreams) {
  std::string text = format_edge_summary(shards_with(12), "edge-a", ValkeyState::up);
  simdjson::dom::parser parser;
  simdjson::dom::element root = get<simdjson::dom::element>(parser.parse(text));
  EXPECT_EQ(get<std::string_view>(root["edge"]), "edge-a");
  EXPECT_EQ(get<std::string_view>(root["valkey"]), "up");
  EXPECT_EQ(get<uint64_t>(root["shards"]), 2u);
  EXPECT_EQ(get<uint64_t>(root["connections"]), 12u);
  EXPECT_EQ(get<uint64_t>(root["peers"]), 78u);  // 1 + ... + 12
  EXPECT_EQ(get<uint64_t>(root["joins"]), 4u);
  EXPECT_EQ(get<uint64_t>(root["signals"]), 9u);
  EXPECT_EQ(get<uint64_t>(root["errors"]), 2u);
  EXPECT_EQ(get<uint64_t>(root["p2pBytes"]), 600u);
  EXPECT_DOUBLE_EQ(get<double>(root["offloadRatio"]), 0.75);
  EXPECT_EQ(get<uint64_t>(root["streamCount"]), 12u);
  auto streams = get<simdjson::dom::array>(root["streams"]);
  ASSERT_EQ(streams.size(), summary_top_streams);
  EXPECT_EQ(get<std::string_view>(get<simdjson::dom::element>(streams.at(0))["streamId"]), "stream-11");
  EXPECT_EQ(get<uint64_t>(get<simdjson::dom::element>(streams.at(0))["peers"]), 12u);
}

TEST(ClusterSummary, RecordRoundTripsAndRefusesWhatNoEdgeWrote) {
  std::string record = encode_summary_record(123456, "{\"edge\":\"e\"}");
  auto decoded = decode_summary_record(record);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->expires_unix_ms, 123456u);
  EXPECT_EQ(decoded->summary, "{\"edge\":\"e\"}");
  EXPECT_FALSE(decode_summary_record("garbage"));
  EXPECT_FALSE(decode_summary_record(encode_summary_record(1, "not json")));
}

TEST(ClusterJson, OwnSummaryFirstThenOthersWithinTheBounds) {
  std::string own = format_edge_summary(shards_with(1), "a", ValkeyState::off);
  std::vector<std::string> texts;
  for (int i = 0; i < 100; ++i) texts.push_back(format_edge_summary(shards_with(0), "o" + std::to_string(i), ValkeyState::up));
  std::vector<std::string_view> others(texts.begin(), texts.end());
  simdjson::dom::parser parser;
  std::string alone = format_cluster_json("a", ValkeyState::off, own, {}, 1 << 20);
  simdjson::dom::element root = get<simdjson::dom::element>(parser.parse(alone));
  EXPECT_EQ(get<uint64_t>(root["edgeCount"]), 1u);
  EXPECT_EQ(get<std::string_view>(root["valkey"]), "off");
  EXPECT_EQ(get<simdjson::dom::array>(root["edges"]).size(), 1u);

  simdjson::dom::parser parser2;
  std::string many = format_cluster_json("a", ValkeyState::up, own, others, 1 << 20);
  root = get<simdjson::dom::element>(parser2.parse(many));
  EXPECT_EQ(get<uint64_t>(root["edgeCount"]), 101u);
  EXPECT_TRUE(get<bool>(root["truncated"]));
  auto edges = get<simdjson::dom::array>(root["edges"]);
  ASSERT_EQ(edges.size(), cluster_max_edges);
  EXPECT_EQ(get<std::string_view>(get<simdjson::dom::element>(edges.at(0))["edge"]), "a");
  EXPECT_EQ(get<std::string_view>(get<simdjson::dom::element>(edges.at(1))["edge"]), "o0");

  std::string small = format_cluster_json("a", ValkeyState::up, own, others, own.size() + 1000);
  EXPECT_LE(small.size(), own.size() + 1000);
  simdjson::dom::parser parser3;
  EXPECT_EQ(parser3.parse(small).error(), simdjson::SUCCESS);
}

}  // namespace
}  // namespace mf::edge
