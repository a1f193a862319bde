#include "edge/stream_signal_counts.h"

#include <gtest/gtest.h>

namespace mf::edge {
namespace {

uint64_t signals_of(const StreamSignalCounts& counts, std::string_view stream) {
  std::vector<StreamSignals> out;
  counts.append_to(out);
  for (const auto& s : out)
    if (s.stream_id == stream) return s.signals;
  return UINT64_MAX;  // no entry
}

TEST(StreamSignalCounts, CountsWhileAMemberIsHereAndRestartsWhenTheLastLeaves) {
  StreamSignalCounts counts;
  counts.delivered("s");  // no member here: not counted, no entry made
  EXPECT_EQ(counts.size(), 0u);
  counts.joined("s");
  counts.joined("s");
  counts.joined("t");
  counts.delivered("s");
  counts.delivered("s");
  counts.delivered("t");
  EXPECT_EQ(signals_of(counts, "s"), 2u);
  EXPECT_EQ(signals_of(counts, "t"), 1u);
  counts.left("s");
  EXPECT_EQ(signals_of(counts, "s"), 2u);  // one member left: still counting
  counts.left("s");
  EXPECT_EQ(signals_of(counts, "s"), UINT64_MAX);
  EXPECT_EQ(counts.size(), 1u);
  counts.left("unknown");  // harmless
  counts.joined("s");
  EXPECT_EQ(signals_of(counts, "s"), 0u);
}

}  // namespace
}  // namespace mf::edge
