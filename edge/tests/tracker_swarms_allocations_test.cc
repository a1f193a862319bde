// The tracker's steady state allocates nothing (edge/tracker_swarms.h): once
// the node pool has grown to the peak, announces with ten offers, their
// answers and expiry take no heap allocation. Built only where the counting
// allocator is linked (test hooks, no sanitizer).
#include <gtest/gtest.h>

#include <array>

#include "common/base/heap_allocation_counter.h"
#include "edge/tracker_swarms.h"

namespace mf::edge {
namespace {

TrackerId id(char c, uint16_t n) {
  TrackerId out;
  out.fill(static_cast<uint8_t>(c));
  out[18] = static_cast<uint8_t>(n >> 8);
  out[19] = static_cast<uint8_t>(n);
  return out;
}

TEST(TrackerSwarmsAllocations, AnnouncesOffersAnswersAndExpiryAllocateNothing) {
  ASSERT_TRUE(heap_allocations_counted());
  TrackerSwarms swarms(7, TrackerLimits{.max_offers = 10, .offer_ttl_ms = 1000, .peer_ttl_ms = 100'000});
  const TrackerId hash = id('h', 0);
  constexpr uint16_t members = 50;
  std::array<TrackerTarget, 10> targets;
  std::array<TrackerId, 10> offer_ids;
  for (uint16_t m = 0; m < members; ++m)
    ASSERT_TRUE(swarms.announce(hash, id('p', m), PeerLocation{0, m, 1}, AnnounceEvent::started, false, {}, targets, 0));
  // One round: every member announces ten offers; every other offer is
  // answered, the rest expire.
  auto round = [&](uint64_t now, uint16_t generation) {
    for (uint16_t m = 0; m < members; ++m) {
      for (uint16_t o = 0; o < offer_ids.size(); ++o) offer_ids[o] = id('o', static_cast<uint16_t>(generation * 16 + o));
      auto result = swarms.announce(hash, id('p', m), PeerLocation{0, m, 1}, AnnounceEvent::update, false, offer_ids,
                                    targets, now);
      ASSERT_TRUE(result);
      ASSERT_EQ(result->targets, 10u);
      for (size_t t = 0; t < result->targets; t += 2)
        ASSERT_TRUE(swarms.answer(hash, targets[t].peer_id, targets[t].who, id('p', m), offer_ids[t], now));
    }
    swarms.expire(now);
  };
  for (uint16_t warm = 0; warm < 20; ++warm) round(warm * 600, warm);
  const uint64_t before = heap_allocations();
  for (uint16_t r = 20; r < 220; ++r) round(r * 600, r);
  EXPECT_EQ(heap_allocations() - before, 0u);
  EXPECT_LE(swarms.totals().outstanding_offers, 2u * members * 5);  // expired ones were dropped
}

}  // namespace
}  // namespace mf::edge
