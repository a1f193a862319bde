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
  EXPECT_EQ(ok->edge, 0u);
  EXPECT_EQ(ok->who, at(1));
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
  auto counts = swarms.scrape(hash_a, 0);
  EXPECT_EQ(counts.complete, 2u);
  EXPECT_EQ(counts.incomplete, 0u);
  EXPECT_EQ(counts.downloaded, 1u);
  EXPECT_EQ(swarms.scrape(hash_b, 0).complete, 0u);
}

TEST(TrackerSwarms, ClusterCountsAreReportedWhileFreshAndNeverBelowTheLocalOnes) {
  TrackerSwarms swarms(7, TrackerLimits{.cluster_counts_ttl_ms = 1000});
  std::array<TrackerTarget, 10> targets;
  auto first = swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::started, true, {}, targets, 0);
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->joined);
  EXPECT_FALSE(first->seeder_changed);
  // Valkey counted 3 seeders among 10 members on every edge.
  swarms.cluster_counts(hash_a, 3, 10, 100);
  auto r = swarms.announce(hash_a, id('q'), at(2), AnnounceEvent::started, false, {}, targets, 200);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->complete, 3u);
  EXPECT_EQ(r->incomplete, 7u);
  auto counts = swarms.scrape(hash_a, 500);
  EXPECT_EQ(counts.complete, 3u);
  EXPECT_EQ(counts.incomplete, 7u);
  // Stale counts below the local ones: the local ones.
  swarms.cluster_counts(hash_a, 0, 1, 600);
  counts = swarms.scrape(hash_a, 700);
  EXPECT_EQ(counts.complete, 1u);
  EXPECT_EQ(counts.incomplete, 1u);
  // A leecher that completes is a change the cluster must learn.
  auto done = swarms.announce(hash_a, id('q'), at(2), AnnounceEvent::completed, false, {}, targets, 700);
  ASSERT_TRUE(done);
  EXPECT_TRUE(done->seeder_changed);
  EXPECT_FALSE(swarms.announce(hash_a, id('q'), at(2), AnnounceEvent::update, true, {}, targets, 700)->seeder_changed);
  // Fresh counts expire after cluster_counts_ttl_ms: the local ones again.
  swarms.cluster_counts(hash_a, 5, 9, 1000);
  EXPECT_EQ(swarms.scrape(hash_a, 1999).incomplete, 4u);
  EXPECT_EQ(swarms.scrape(hash_a, 2000).complete, 2u);
  EXPECT_EQ(swarms.scrape(hash_a, 2000).incomplete, 0u);
  // Counts for a swarm with no member here are not kept.
  swarms.cluster_counts(hash_b, 5, 9, 2000);
  EXPECT_EQ(swarms.scrape(hash_b, 2000).incomplete, 0u);
}

TEST(TrackerSwarms, ClusterCountsAreIgnoredWithoutACluster) {
  TrackerSwarms swarms(7, {});
  std::array<TrackerTarget, 10> targets;
  ASSERT_TRUE(swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::started, false, {}, targets, 0));
  swarms.cluster_counts(hash_a, 3, 10, 0);
  EXPECT_EQ(swarms.scrape(hash_a, 1).complete, 0u);
  EXPECT_EQ(swarms.scrape(hash_a, 1).incomplete, 1u);
}

TEST(TrackerSwarms, MemberGivesItsConnectionAndSeederFlag) {
  TrackerSwarms swarms(7, {});
  std::array<TrackerTarget, 10> targets;
  ASSERT_TRUE(swarms.announce(hash_a, id('p'), at(4), AnnounceEvent::started, true, {}, targets, 0));
  auto m = swarms.member(hash_a, id('p'));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->who, at(4));
  EXPECT_TRUE(m->seeder);
  EXPECT_EQ(m->peer_id, id('p'));
  EXPECT_FALSE(swarms.member(hash_a, id('q')).has_value());
  EXPECT_FALSE(swarms.member(hash_b, id('p')).has_value());
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

// Expiry follows each entry's last touch: an announce renews its peer, an
// offer made again renews the offer, an answered offer is gone from the age
// list, and a swarm dropped with offers outstanding leaves none behind.
TEST(TrackerSwarms, ExpiryFollowsTheLastTouch) {
  TrackerSwarms swarms(7, TrackerLimits{.offer_ttl_ms = 500, .peer_ttl_ms = 1500});
  std::array<TrackerTarget, 10> targets;
  ASSERT_TRUE(swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::started, false, {}, targets, 0));
  ASSERT_TRUE(swarms.announce(hash_a, id('q'), at(2), AnnounceEvent::started, false, {}, targets, 100));
  ASSERT_TRUE(swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::update, false, {}, targets, 1000));
  swarms.expire(1600);  // q (100) is gone, p (renewed at 1000) stays
  EXPECT_EQ(swarms.totals().peers, 1u);
  EXPECT_TRUE(swarms.is_member(hash_a, id('p')));
  ASSERT_TRUE(swarms.announce(hash_a, id('q'), at(2), AnnounceEvent::started, false, {}, targets, 1600));
  std::array<TrackerId, 1> one{id('o')};
  ASSERT_EQ(swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::update, false, one, targets, 1600)->targets, 1u);
  ASSERT_EQ(swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::update, false, one, targets, 1900)->targets, 1u);
  EXPECT_EQ(swarms.totals().outstanding_offers, 1u);  // the same offer, renewed
  swarms.expire(2200);  // past the first offer's expiry, before the renewed one's
  EXPECT_EQ(swarms.totals().outstanding_offers, 1u);
  EXPECT_TRUE(swarms.answer(hash_a, id('q'), at(2), id('p'), id('o'), 2300));
  EXPECT_EQ(swarms.totals().outstanding_offers, 0u);
  // A swarm whose members all stop takes its outstanding offers with it.
  ASSERT_EQ(swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::update, false, one, targets, 2300)->targets, 1u);
  ASSERT_TRUE(swarms.announce(hash_a, id('q'), at(2), AnnounceEvent::stopped, false, {}, targets, 2300));
  ASSERT_TRUE(swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::stopped, false, {}, targets, 2300));
  EXPECT_EQ(swarms.swarm_count(), 0u);
  swarms.expire(100'000);  // nothing left to touch (ASan: no use after free)
  EXPECT_EQ(swarms.totals().outstanding_offers, 0u);
  // Many peers and offers, expired in one pass.
  for (uint8_t i = 0; i < 100; ++i)
    ASSERT_TRUE(swarms.announce(hash_b, id('m', i), at(i), AnnounceEvent::started, false, one, targets, 200'000));
  EXPECT_EQ(swarms.totals().outstanding_offers, 99u);  // the first member had nobody to offer to
  swarms.expire(200'000 + 1500);
  EXPECT_EQ(swarms.totals().peers, 0u);
  EXPECT_EQ(swarms.totals().outstanding_offers, 0u);
  EXPECT_EQ(swarms.swarm_count(), 0u);
}

TEST(TrackerSwarms, LeaveOnlyFromTheBoundConnection) {
  TrackerSwarms swarms(7, {});
  std::array<TrackerTarget, 10> targets;
  ASSERT_TRUE(swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::started, false, {}, targets, 0));
  EXPECT_FALSE(swarms.leave(hash_a, id('p'), at(2)));
  EXPECT_EQ(swarms.totals().peers, 1u);
  EXPECT_TRUE(swarms.leave(hash_a, id('p'), at(1)));
  EXPECT_EQ(swarms.totals().peers, 0u);
  EXPECT_EQ(swarms.swarm_count(), 0u);
}

TEST(TrackerSwarms, ReportsJoinsStopsAndExpiries) {
  TrackerSwarms swarms(7, TrackerLimits{.peer_ttl_ms = 1500});
  std::array<TrackerTarget, 10> targets;
  auto first = swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::started, false, {}, targets, 0);
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->joined);
  auto again = swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::update, false, {}, targets, 0);
  EXPECT_FALSE(again->joined);
  auto stopped = swarms.announce(hash_a, id('p'), at(1), AnnounceEvent::stopped, false, {}, targets, 0);
  EXPECT_TRUE(stopped->left);
  ASSERT_TRUE(swarms.announce(hash_b, id('q'), at(2), AnnounceEvent::started, false, {}, targets, 0));
  std::vector<TrackerMemberRef> removed;
  swarms.expire(1500, &removed);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].info_hash, hash_b);
  EXPECT_EQ(removed[0].peer_id, id('q'));
  EXPECT_EQ(removed[0].who, at(2));
}

// Offers between edges: the offering edge records where the offer went, the
// receiving edge where it came from; each answer is checked on both.
TEST(TrackerSwarms, OffersAcrossEdgesAreAnsweredOnceOnBothEdges) {
  TrackerSwarms a(7, TrackerLimits{.offer_ttl_ms = 1000});
  TrackerSwarms b(8, TrackerLimits{.offer_ttl_ms = 1000});
  std::array<TrackerTarget, 10> targets;
  ASSERT_TRUE(a.announce(hash_a, id('p'), at(1), AnnounceEvent::started, false, {}, targets, 0));
  ASSERT_TRUE(b.announce(hash_a, id('q'), at(2), AnnounceEvent::started, false, {}, targets, 0));
  uint32_t edge_b = a.edge_index("edge-b"), edge_a = b.edge_index("edge-a");
  EXPECT_EQ(a.edge_index("edge-b"), edge_b);
  EXPECT_EQ(a.edge_name(edge_b), "edge-b");
  // Only a member on its own connection can have offers sent for it.
  EXPECT_FALSE(a.offer_sent_to_edge(hash_a, id('p'), at(9), id('q'), id('o'), edge_b, 0));
  EXPECT_FALSE(a.offer_sent_to_edge(hash_b, id('p'), at(1), id('q'), id('o'), edge_b, 0));
  ASSERT_TRUE(a.offer_sent_to_edge(hash_a, id('p'), at(1), id('q'), id('o'), edge_b, 0));
  // Delivered on b only to a member of that swarm, on its bound connection.
  EXPECT_FALSE(b.offer_from_edge(hash_b, id('q'), id('p'), id('o'), edge_a, 3, 0));
  EXPECT_FALSE(b.offer_from_edge(hash_a, id('r'), id('p'), id('o'), edge_a, 3, 0));
  auto delivered = b.offer_from_edge(hash_a, id('q'), id('p'), id('o'), edge_a, 3, 0);
  ASSERT_TRUE(delivered);
  EXPECT_EQ(*delivered, at(2));
  // q answers on b: routed back to edge a, shard 3.
  auto route = b.answer(hash_a, id('q'), at(2), id('p'), id('o'), 10);
  ASSERT_TRUE(route);
  EXPECT_EQ(route->edge, edge_a);
  EXPECT_EQ(route->shard, 3u);
  EXPECT_EQ(b.answer(hash_a, id('q'), at(2), id('p'), id('o'), 10).error(), TrackerRefusal::no_such_offer);
  // On a: only from the edge the offer went to, once.
  uint32_t edge_c = a.edge_index("edge-c");
  EXPECT_EQ(a.answer_from_edge(hash_a, id('q'), id('p'), id('o'), edge_c, 10).error(), TrackerRefusal::no_such_offer);
  // A peer here using the recipient's id cannot answer an offer that went elsewhere.
  ASSERT_TRUE(a.announce(hash_a, id('q'), at(4), AnnounceEvent::started, false, {}, targets, 0));
  EXPECT_EQ(a.answer(hash_a, id('q'), at(4), id('p'), id('o'), 10).error(), TrackerRefusal::no_such_offer);
  auto back = a.answer_from_edge(hash_a, id('q'), id('p'), id('o'), edge_b, 10);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, at(1));
  EXPECT_EQ(a.answer_from_edge(hash_a, id('q'), id('p'), id('o'), edge_b, 10).error(), TrackerRefusal::no_such_offer);
  // Expired offers are not answered.
  ASSERT_TRUE(a.offer_sent_to_edge(hash_a, id('p'), at(1), id('q'), id('o'), edge_b, 100));
  EXPECT_EQ(a.answer_from_edge(hash_a, id('q'), id('p'), id('o'), edge_b, 1100).error(), TrackerRefusal::no_such_offer);
}

}  // namespace
}  // namespace mf::edge
