#include "edge/tracker_swarms.h"

#include <gtest/gtest.h>

#include <set>

namespace mf::edge {
namespace {

TrackerId id(char c, uint8_t n = 0) {
  TrackerId out;
  out.fill(static_cast<uint8_t>(c));
  out[19] = n;
  return out;
}

PeerLocation at(uint32_t slot) { return PeerLocation{0, slot, 1}; }

const TrackerId hash_a = id('a'), hash_b = id('b');

TEST(TrackerSwarms, OffersGoToOtherMembersOfTheSameSwarmOnly) {
  TrackerSwarms swarms(7, {});
  std::array<TrackerTarget, 10> targets;
  ASSERT_TRUE(swarms.announce(hash_b, id('x'), at(9), AnnounceEvent::started, false, {}, targets, 0));
  for (uint8_t i = 0; i < 3; ++i)
    ASSERT_TRUE(swarms.announce(hash_a, id('p', i), at(i), AnnounceEvent::started, false, {}, targets, 0));
  std::array<TrackerId, 5> offers{id('o', 0), id('o', 1), id('o', 2), id('o', 3), id('o', 4)};
  auto result = swarms.announce(hash_a, id('p', 0), at(0), AnnounceEvent::update, false, offers, targets, 0);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->incomplete, 3u);
  ASSERT_EQ(result->targets, 2u);  // p1 and p2: never itself, never x
  std::set<uint8_t> seen;
  for (size_t i = 0; i < result->targets; ++i) {
    EXPECT_EQ(targets[i].peer_id[0], 'p');
    EXPECT_NE(targets[i].peer_id[19], 0);
    EXPECT_EQ(targets[i].who.slot, targets[i].peer_id[19]);
    seen.insert(targets[i].peer_id[19]);
  }
  EXPECT_EQ(seen.size(), 2u);
}

TEST(TrackerSwarms, FewestProposalsFirst) {
  TrackerSwarms swarms(7, {});
  std::array<TrackerTarget, 10> targets;
  for (uint8_t i = 0; i < 4; ++i)
    ASSERT_TRUE(swarms.announce(hash_a, id('p', i), at(i), AnnounceEvent::started, false, {}, targets, 0));
  std::array<TrackerId, 1> one{id('o')};
  std::set<uint8_t> seen;
  // p0 offers three times, one offer each: three different members get them.
  for (int round = 0; round < 3; ++round) {
    auto result = swarms.announce(hash_a, id('p', 0), at(0), AnnounceEvent::update, false, one, targets, 0);
    ASSERT_TRUE(result);
    ASSERT_EQ(result->targets, 1u);
    seen.insert(targets[0].peer_id[19]);
  }
  EXPECT_EQ(seen, (std::set<uint8_t>{1, 2, 3}));
}

TEST(TrackerSwarms, AtMostMaxOffers) {
  TrackerSwarms swarms(7, TrackerLimits{.max_offers = 10});
  std::array<TrackerTarget, 64> targets;
  for (uint8_t i = 0; i < 20; ++i)
    ASSERT_TRUE(swarms.announce(hash_a, id('p', i), at(i), AnnounceEvent::started, false, {}, targets, 0));
  std::vector<TrackerId> offers;
  for (uint8_t i = 0; i < 11; ++i) offers.push_back(id('o', i));
  auto result = swarms.announce(hash_a, id('p', 0), at(0), AnnounceEvent::update, false, offers, targets, 0);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->targets, 10u);
}

TEST(TrackerSwarms, PeerIdIsBoundToItsConnection) {
  TrackerSwarms swarms(7, {});
  std::array<TrackerTarget, 10> targets;
  ASSERT_TRUE(swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::started, false, {}, targets, 0));
  auto other = swarms.announce(hash_a, id('p'), at(2), AnnounceEvent::update, false, {}, targets, 0);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error(), TrackerRefusal::peer_id_taken);
  // Another swarm is another binding.
  EXPECT_TRUE(swarms.announce(hash_b, id('p'), at(2), AnnounceEvent::started, false, {}, targets, 0));
  // A stop from the wrong connection is refused too; from the right one frees it.
  EXPECT_FALSE(swarms.announce(hash_a, id('p'), at(2), AnnounceEvent::stopped, false, {}, targets, 0));
  EXPECT_TRUE(swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::stopped, false, {}, targets, 0));
  EXPECT_TRUE(swarms.announce(hash_a, id('p'), at(2), AnnounceEvent::started, false, {}, targets, 0));
}

TEST(TrackerSwarms, AnswerNeedsTheOutstandingOffer) {
  TrackerSwarms swarms(7, TrackerLimits{.offer_ttl_ms = 1000});
  std::array<TrackerTarget, 10> targets;
  ASSERT_TRUE(swarms.announce(hash_a, id('q'), at(2), AnnounceEvent::started, false, {}, targets, 0));
  std::array<TrackerId, 1> offer{id('o')};
  auto sent = swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::started, false, offer, targets, 0);
  ASSERT_TRUE(sent);
  ASSERT_EQ(sent->targets, 1u);
  EXPECT_EQ(targets[0].peer_id, id('q'));
  // Wrong offer id, wrong offerer, wrong connection, another swarm.
  EXPECT_EQ(swarms.answer(hash_a, id('q'), at(2), id('p'), id('z'), 10).error(), TrackerRefusal::no_such_offer);
  EXPECT_EQ(swarms.answer(hash_a, id('q'), at(2), id('r'), id('o'), 10).error(), TrackerRefusal::no_such_offer);
  EXPECT_EQ(swarms.answer(hash_a, id('q'), at(3), id('p'), id('o'), 10).error(), TrackerRefusal::unknown_peer);
  EXPECT_EQ(swarms.answer(hash_b, id('q'), at(2), id('p'), id('o'), 10).error(), TrackerRefusal::unknown_peer);
  auto ok = swarms.answer(hash_a, id('q'), at(2), id('p'), id('o'), 10);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, at(1));
  // Once only.
  EXPECT_EQ(swarms.answer(hash_a, id('q'), at(2), id('p'), id('o'), 10).error(), TrackerRefusal::no_such_offer);
  // Expired.
  ASSERT_TRUE(swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::update, false, offer, targets, 100));
  EXPECT_EQ(swarms.answer(hash_a, id('q'), at(2), id('p'), id('o'), 1100).error(), TrackerRefusal::no_such_offer);
}

TEST(TrackerSwarms, CountsSeedersAndCompletions) {
  TrackerSwarms swarms(7, {});
  std::array<TrackerTarget, 10> targets;
  ASSERT_TRUE(swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::started, true, {}, targets, 0));
  auto r = swarms.announce(hash_a, id('q'), at(2), AnnounceEvent::started, false, {}, targets, 0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->complete, 1u);
  EXPECT_EQ(r->incomplete, 1u);
  ASSERT_TRUE(swarms.announce(hash_a, id('q'), at(2), AnnounceEvent::completed, false, {}, targets, 0));
  auto counts = swarms.scrape(hash_a);
  EXPECT_EQ(counts.complete, 2u);
  EXPECT_EQ(counts.incomplete, 0u);
  EXPECT_EQ(counts.downloaded, 1u);
  EXPECT_EQ(swarms.scrape(hash_b).complete, 0u);
}

TEST(TrackerSwarms, SilentPeersAndOldOffersExpire) {
  TrackerSwarms swarms(7, TrackerLimits{.offer_ttl_ms = 500, .peer_ttl_ms = 1500});
  std::array<TrackerTarget, 10> targets;
  ASSERT_TRUE(swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::started, false, {}, targets, 0));
  std::array<TrackerId, 1> offer{id('o')};
  ASSERT_TRUE(swarms.announce(hash_a, id('q'), at(2), AnnounceEvent::started, false, offer, targets, 1000));
  EXPECT_EQ(swarms.totals().outstanding_offers, 1u);
  swarms.expire(1499);
  EXPECT_EQ(swarms.totals().peers, 2u);
  EXPECT_EQ(swarms.totals().outstanding_offers, 1u);
  swarms.expire(1500);
  EXPECT_EQ(swarms.totals().peers, 1u);  // p: silent since 0
  EXPECT_EQ(swarms.totals().outstanding_offers, 0u);
  swarms.expire(2500);
  EXPECT_EQ(swarms.totals().swarms, 0u);
}

TEST(TrackerSwarms, LeaveOnlyFromTheBoundConnection) {
  TrackerSwarms swarms(7, {});
  std::array<TrackerTarget, 10> targets;
  ASSERT_TRUE(swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::started, false, {}, targets, 0));
  swarms.leave(hash_a, id('p'), at(2));
  EXPECT_EQ(swarms.totals().peers, 1u);
  swarms.leave(hash_a, id('p'), at(1));
  EXPECT_EQ(swarms.totals().peers, 0u);
  EXPECT_EQ(swarms.swarm_count(), 0u);
}

}  // namespace
}  // namespace mf::edge
