#include "perf/latency_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace mf::perf {
namespace {

using H = LatencyHistogram;

TEST(LatencyHistogram, EmptyReportsZero) {
  H h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0u);
  EXPECT_EQ(h.percentile(50), 0u);
  EXPECT_EQ(h.percentile(100), 0u);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  for (uint64_t v = 0; v < 2 * H::sub_buckets; ++v) {
    EXPECT_EQ(H::bucket_index(v), v);
    EXPECT_EQ(H::bucket_lowest(static_cast<uint32_t>(v)), v);
    EXPECT_EQ(H::bucket_highest(static_cast<uint32_t>(v)), v);
  }
}

TEST(LatencyHistogram, BucketsTileTheRangeWithoutGapsOrOverlap) {
  uint64_t expected_lowest = 0;
  for (uint32_t i = 0; i < H::bucket_count; ++i) {
    ASSERT_EQ(H::bucket_lowest(i), expected_lowest) << i;
    ASSERT_GE(H::bucket_highest(i), H::bucket_lowest(i));
    ASSERT_EQ(H::bucket_index(H::bucket_lowest(i)), i);
    ASSERT_EQ(H::bucket_index(H::bucket_highest(i)), i);
    expected_lowest = H::bucket_highest(i) + 1;
  }
  EXPECT_GT(expected_lowest, H::max_trackable_ns);
}

TEST(LatencyHistogram, BucketWidthIsUnderOnePercentFromOneMicrosecondToSixtySeconds) {
  for (uint64_t v = 1000; v <= H::max_trackable_ns; v = v * 1013 / 1000 + 1) {
    uint32_t i = H::bucket_index(v);
    double width = static_cast<double>(H::bucket_highest(i) - H::bucket_lowest(i) + 1);
    ASSERT_LT(width / static_cast<double>(H::bucket_lowest(i)), 0.01) << v;
  }
}

TEST(LatencyHistogram, MinMaxMeanAreExact) {
  H h;
  h.record(1'000);
  h.record(3'000'017);
  h.record(2'000);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_EQ(h.min(), 1'000u);
  EXPECT_EQ(h.max(), 3'000'017u);
  EXPECT_EQ(h.mean(), (1'000u + 3'000'017u + 2'000u) / 3);
  EXPECT_EQ(h.percentile(100), 3'000'017u);
  // The lowest rank reports its bucket's upper end: within 1 %, never below.
  EXPECT_GE(h.percentile(0), 1'000u);
  EXPECT_LE(h.percentile(0), 1'010u);
}

TEST(LatencyHistogram, PercentilesUseNearestRank) {
  H h;
  for (uint64_t v = 1; v <= 100; ++v) h.record(v);  // exact range
  EXPECT_EQ(h.percentile(50), 50u);
  EXPECT_EQ(h.percentile(90), 90u);
  EXPECT_EQ(h.percentile(99), 99u);
  EXPECT_EQ(h.percentile(99.9), 100u);
  EXPECT_EQ(h.percentile(1), 1u);
  EXPECT_EQ(h.percentile(0.5), 1u);
}

TEST(LatencyHistogram, PercentilesMatchSortedSamplesWithinOnePercent) {
  std::mt19937_64 random(42);
  std::lognormal_distribution<double> latency(std::log(200'000.0), 1.2);  // ~200 us median
  H h;
  std::vector<uint64_t> samples;
  for (int i = 0; i < 200'000; ++i) {
    uint64_t v = std::clamp<uint64_t>(static_cast<uint64_t>(latency(random)), 1'000, H::max_trackable_ns);
    samples.push_back(v);
    h.record(v);
  }
  std::sort(samples.begin(), samples.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(samples.size())));
    double truth = static_cast<double>(samples[rank - 1]);
    double got = static_cast<double>(h.percentile(p));
    EXPECT_GE(got, truth) << p;  // never understates
    EXPECT_LE((got - truth) / truth, 0.01) << p;
  }
  EXPECT_EQ(h.max(), samples.back());
}

TEST(LatencyHistogram, MergeEqualsRecordingEverythingInOne) {
  H a, b, all;
  for (uint64_t v = 500; v < 5'000'000; v = v * 11 / 10) {
    a.record(v);
    all.record(v);
  }
  for (uint64_t v = 7'000; v < 90'000'000; v = v * 13 / 10) {
    b.record(v);
    all.record(v);
  }
  H merged = a;
  merged.merge(b);
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_EQ(merged.mean(), all.mean());
  for (double p : {50.0, 90.0, 99.0, 99.9, 100.0}) EXPECT_EQ(merged.percentile(p), all.percentile(p)) << p;
}

TEST(LatencyHistogram, MergingAnEmptyHistogramChangesNothing) {
  H a, empty;
  a.record(12'345);
  a.merge(empty);
  EXPECT_EQ(a.count(), 1u);
  EXPECT_EQ(a.min(), 12'345u);
  EXPECT_EQ(a.max(), 12'345u);
  H e2;
  e2.merge(a);
  EXPECT_EQ(e2.min(), 12'345u);
}

TEST(LatencyHistogram, ValuesAboveSixtySecondsSaturate) {
  H h;
  h.record(120'000'000'000);
  h.record(5);
  EXPECT_EQ(h.saturated(), 1u);
  EXPECT_EQ(h.max(), H::max_trackable_ns);
  EXPECT_EQ(h.percentile(100), H::max_trackable_ns);
}

TEST(LatencyHistogram, ResetEmpties) {
  H h;
  h.record(77);
  h.reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile(50), 0u);
  EXPECT_EQ(h.min(), 0u);
}

TEST(LatencyHistogram, OutOfRangePercentsAreClamped) {
  H h;
  h.record(10);
  h.record(20);
  EXPECT_EQ(h.percentile(-5), 10u);
  EXPECT_EQ(h.percentile(250), 20u);
}

}  // namespace
}  // namespace mf::perf
