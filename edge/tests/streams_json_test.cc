#include "edge/streams_json.h"

#include <gtest/gtest.h>
#include <simdjson.h>

namespace mf::edge {
namespace {

StreamSummary summary(std::string id, uint32_t viewers, std::vector<RenditionPeers> renditions) {
  StreamSummary s;
  s.stream_id = std::move(id);
  s.viewers = viewers;
  s.renditions = std::move(renditions);
  return s;
}

// Two shards: each owns one stream; signals of stream "live" were delivered
// on both shards, so they are summed.
std::vector<std::unique_ptr<MetricsSnapshot>> two_shards() {
  std::vector<std::unique_ptr<MetricsSnapshot>> shards;
  shards.push_back(std::make_unique<MetricsSnapshot>());
  shards.push_back(std::make_unique<MetricsSnapshot>());
  StreamSummary live = summary("live", 3, {{"1080p", 1}, {"720p", 2}});
  live.joins = 5;
  live.proposals = 6;
  live.stats = StreamStats{300, 100, 250, 2};
  shards[0]->streams.push_back(live);
  shards[0]->signals.push_back({"live", 7});
  shards[0]->signals.push_back({"quiet", 1});
  shards[1]->streams.push_back(summary("quiet", 1, {{"480p", 1}}));
  shards[1]->signals.push_back({"live", 4});
  // Tracker swarms on both shards: summed.
  shards[0]->tracker_swarms = TrackerTotals{2, 5, 1, 10};
  shards[1]->tracker_swarms = TrackerTotals{1, 2, 0, 3};
  shards[0]->edge.tracker.offers_relayed = 4;
  shards[1]->edge.tracker.offers_relayed = 5;
  return shards;
}

simdjson::dom::element parse(simdjson::dom::parser& parser, const std::string& text) {
  simdjson::dom::element root;
  auto error = parser.parse(text).get(root);
  EXPECT_EQ(error, simdjson::SUCCESS) << text;
  return root;
}

simdjson::dom::element at(simdjson::dom::array array, size_t i) {
  simdjson::dom::element e;
  EXPECT_EQ(array.at(i).get(e), simdjson::SUCCESS) << i;
  return e;
}

uint64_t u64(simdjson::dom::element e, std::string_view key) {
  uint64_t v = 0;
  EXPECT_EQ(e[key].get(v), simdjson::SUCCESS) << key;
  return v;
}

std::string_view str(simdjson::dom::element e, std::string_view key) {
  std::string_view v;
  EXPECT_EQ(e[key].get(v), simdjson::SUCCESS) << key;
  return v;
}

TEST(StreamsJson, MergesShardsOrdersByPeersAndComputesTheOffloadRatio) {
  auto shards = two_shards();
  std::string text = format_streams_json(shards, "edge-a", 123456, 1000, SIZE_MAX);
  simdjson::dom::parser parser;
  auto root = parse(parser, text);
  EXPECT_EQ(str(root, "edge"), "edge-a");
  EXPECT_EQ(u64(root, "timeMs"), 123456u);
  EXPECT_EQ(u64(root, "peers"), 4u);
  EXPECT_EQ(u64(root, "streamCount"), 2u);
  simdjson::dom::element tracker;
  ASSERT_EQ(root["tracker"].get(tracker), simdjson::SUCCESS);
  EXPECT_EQ(u64(tracker, "swarms"), 3u);
  EXPECT_EQ(u64(tracker, "peers"), 7u);
  EXPECT_EQ(u64(tracker, "seeders"), 1u);
  EXPECT_EQ(u64(tracker, "offersRelayed"), 9u);
  bool truncated = true;
  ASSERT_EQ(root["truncated"].get(truncated), simdjson::SUCCESS);
  EXPECT_FALSE(truncated);
  simdjson::dom::array streams;
  ASSERT_EQ(root["streams"].get(streams), simdjson::SUCCESS);
  ASSERT_EQ(streams.size(), 2u);
  auto live = at(streams, 0);
  EXPECT_EQ(str(live, "streamId"), "live");
  EXPECT_EQ(u64(live, "peers"), 3u);
  EXPECT_EQ(u64(live, "joins"), 5u);
  EXPECT_EQ(u64(live, "signals"), 11u);
  EXPECT_EQ(u64(live, "proposals"), 6u);
  EXPECT_EQ(u64(live, "connectedProposals"), 2u);
  EXPECT_EQ(u64(live, "p2pBytes"), 300u);
  EXPECT_EQ(u64(live, "cdnBytes"), 100u);
  EXPECT_EQ(u64(live, "uploadedBytes"), 250u);
  double ratio = 0;
  ASSERT_EQ(live["offloadRatio"].get(ratio), simdjson::SUCCESS);
  EXPECT_DOUBLE_EQ(ratio, 0.75);
  simdjson::dom::array renditions;
  ASSERT_EQ(live["renditions"].get(renditions), simdjson::SUCCESS);
  ASSERT_EQ(renditions.size(), 2u);
  EXPECT_EQ(str(at(renditions, 0), "rendition"), "1080p");
  EXPECT_EQ(u64(at(renditions, 1), "peers"), 2u);
  auto quiet = at(streams, 1);
  EXPECT_EQ(str(quiet, "streamId"), "quiet");
  EXPECT_EQ(u64(quiet, "signals"), 1u);
  // No stats yet: no ratio rather than 0 %.
  EXPECT_TRUE(quiet["offloadRatio"].is_null());
}

TEST(StreamsJson, KeepsTheBusiestStreamsAndSaysSo) {
  std::vector<std::unique_ptr<MetricsSnapshot>> shards;
  shards.push_back(std::make_unique<MetricsSnapshot>());
  shards[0]->streams.push_back(summary("b", 1, {{"r", 1}}));
  shards[0]->streams.push_back(summary("c", 5, {{"r", 5}}));
  shards[0]->streams.push_back(summary("a", 1, {{"r", 1}}));
  simdjson::dom::parser parser;
  auto root = parse(parser, format_streams_json(shards, "e", 0, 2, SIZE_MAX));
  EXPECT_EQ(u64(root, "streamCount"), 3u);
  EXPECT_EQ(u64(root, "peers"), 7u);
  bool truncated = false;
  ASSERT_EQ(root["truncated"].get(truncated), simdjson::SUCCESS);
  EXPECT_TRUE(truncated);
  simdjson::dom::array streams;
  ASSERT_EQ(root["streams"].get(streams), simdjson::SUCCESS);
  ASSERT_EQ(streams.size(), 2u);
  EXPECT_EQ(str(at(streams, 0), "streamId"), "c");
  EXPECT_EQ(str(at(streams, 1), "streamId"), "a");  // ties by id
}

TEST(StreamsJson, StaysWithinTheByteBudgetAndSaysSo) {
  // 1,000 streams with 128-byte ids: far above a 256 KiB send queue.
  std::vector<std::unique_ptr<MetricsSnapshot>> shards;
  shards.push_back(std::make_unique<MetricsSnapshot>());
  for (uint32_t i = 0; i < 1000; ++i) {
    std::string id = std::to_string(1000 + i);
    id.resize(128, 'x');
    shards[0]->streams.push_back(summary(id, 1000 - i, {{"r", 1000 - i}}));
  }
  std::string whole = format_streams_json(shards, "e", 0, 1000, SIZE_MAX);
  ASSERT_GT(whole.size(), size_t{256} * 1024);
  for (size_t budget : {size_t{200} * 1024, size_t{4096}, size_t{100}}) {
    std::string text = format_streams_json(shards, "e", 0, 1000, budget);
    EXPECT_LE(text.size(), std::max<size_t>(budget, 256)) << budget;  // the envelope goes whatever the budget
    simdjson::dom::parser parser;
    auto root = parse(parser, text);
    EXPECT_EQ(u64(root, "streamCount"), 1000u);
    bool truncated = false;
    ASSERT_EQ(root["truncated"].get(truncated), simdjson::SUCCESS);
    EXPECT_TRUE(truncated) << budget;
    simdjson::dom::array streams;
    ASSERT_EQ(root["streams"].get(streams), simdjson::SUCCESS);
    EXPECT_LT(streams.size(), 1000u);
    if (budget >= 4096) {
      ASSERT_GT(streams.size(), 0u);
      EXPECT_EQ(u64(at(streams, 0), "peers"), 1000u) << "the busiest first";
    }
  }
}

TEST(StreamsJson, NoStreams) {
  std::vector<std::unique_ptr<MetricsSnapshot>> shards;
  shards.push_back(std::make_unique<MetricsSnapshot>());
  EXPECT_EQ(format_streams_json(shards, "e", 9, 10, SIZE_MAX),
            "{\"edge\":\"e\",\"timeMs\":9,\"peers\":0,\"tracker\":{\"swarms\":0,\"peers\":0,\"seeders\":0,"
            "\"outstandingOffers\":0,\"announces\":0,\"offersRelayed\":0,\"answersRelayed\":0},\"streamCount\":0,"
            "\"truncated\":false,\"streams\":[]}\n");
}

TEST(StreamsJson, RatioOfHugeCountersStaysWithinOne) {
  std::vector<std::unique_ptr<MetricsSnapshot>> shards;
  shards.push_back(std::make_unique<MetricsSnapshot>());
  StreamSummary s = summary("s", 1, {{"r", 1}});
  s.stats.p2p_bytes = UINT64_MAX;
  s.stats.cdn_bytes = UINT64_MAX;
  shards[0]->streams.push_back(s);
  simdjson::dom::parser parser;
  auto root = parse(parser, format_streams_json(shards, "e", 0, 10, SIZE_MAX));
  double ratio = 0;
  ASSERT_EQ(root["streams"].at(0)["offloadRatio"].get(ratio), simdjson::SUCCESS);
  EXPECT_DOUBLE_EQ(ratio, 0.5);
}

}  // namespace
}  // namespace mf::edge
