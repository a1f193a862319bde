#include "edge/swarm.h"

#include <gtest/gtest.h>

#include <array>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace mf::edge {
namespace {

Topology topo(std::string_view region, std::string_view country = "", int64_t asn = -1, std::string_view network = "") {
  auto t = make_topology(region, country, asn, network);
  if (!t) std::abort();
  return *t;
}

Member member(std::string_view id, const Topology& t = {}, bool accepting = true) {
  Member m;
  if (!m.peer_id.assign(id)) std::abort();
  m.topology = t;
  m.accepting_peers = accepting;
  return m;
}

std::string json(const Topology& t) {
  std::array<char, max_topology_json_bytes> buffer;
  size_t n = write_topology_json(buffer, t);
  return std::string(buffer.data(), n);
}

// Picks and returns the peer ids, best first.
std::vector<std::string> pick_ids(Swarm& swarm, Rng& rng, std::string_view requester, const Topology& t, uint32_t count,
                                  std::span<const std::string_view> exclude = {}, uint64_t now_ms = 0) {
  std::array<MemberHandle, Swarm::max_pick> out;
  PickRequest request{.requester = requester, .requester_topology = t, .count = count, .exclude = exclude, .now_ms = now_ms};
  size_t n = swarm.pick(request, out, rng);
  std::vector<std::string> ids;
  for (size_t i = 0; i < n; ++i) ids.emplace_back(swarm.at(out[i]).peer_id.view());
  return ids;
}

TEST(InlineString, AssignsWithinCapacityOnly) {
  PeerId id;
  EXPECT_TRUE(id.assign(std::string(128, 'a')));
  EXPECT_EQ(id.view().size(), 128u);
  EXPECT_FALSE(id.assign(std::string(129, 'b')));
  EXPECT_EQ(id.view(), std::string(128, 'a'));  // unchanged on refusal
  EXPECT_TRUE(id.assign(""));
  EXPECT_TRUE(id.empty());
  EXPECT_FALSE(PeerId::from(std::string(200, 'x')).has_value());
  EXPECT_EQ(PeerId::from("p-1")->view(), "p-1");
}

TEST(Topology, MakeRefusesLongStrings) {
  std::string s64(64, 'r'), s65(65, 'r');
  EXPECT_TRUE(make_topology(s64, s64, 1, s64).has_value());
  EXPECT_FALSE(make_topology(s65, "", -1, "").has_value());
  EXPECT_FALSE(make_topology("", s65, -1, "").has_value());
  EXPECT_FALSE(make_topology("", "", -1, s65).has_value());
  EXPECT_EQ(make_topology("", "", -7, "")->asn, -1);
}

TEST(Topology, FieldsMatchOnlyWhenBothDeclared) {
  Topology none, eu = topo("eu", "FR", 3215), eu2 = topo("eu", "DE", 3215), us = topo("us", "FR", 7922);
  EXPECT_TRUE(same_region(eu, eu2));
  EXPECT_FALSE(same_region(eu, us));
  EXPECT_FALSE(same_region(none, none));
  EXPECT_TRUE(same_asn(eu, eu2));
  EXPECT_FALSE(same_asn(eu, us));
  EXPECT_FALSE(same_asn(none, none));
  EXPECT_TRUE(same_country(eu, us));
  EXPECT_FALSE(same_country(eu, eu2));
  EXPECT_FALSE(same_country(none, none));
}

TEST(TopologyJson, NormalizedFieldOrderAndEmptyObject) {
  EXPECT_EQ(json(Topology{}), "{}");
  EXPECT_EQ(json(topo("eu-west", "FR", 3215, "wifi")), R"({"region":"eu-west","country":"FR","asn":3215,"network":"wifi"})");
  EXPECT_EQ(json(topo("", "", 0, "")), R"({"asn":0})");
  EXPECT_EQ(json(topo("", "BR", -1, "cell")), R"({"country":"BR","network":"cell"})");
  EXPECT_EQ(json(topo("a\"b\\c\n\x01", "", -1, "")), R"({"region":"a\"b\\c\n\u0001"})");
}

TEST(TopologyJson, WorstCaseFitsAndShortBufferFails) {
  std::string controls(64, '\x02');
  Topology worst = topo(controls, controls, INT64_MAX, controls);
  std::array<char, max_topology_json_bytes> buffer;
  size_t n = write_topology_json(buffer, worst);
  ASSERT_GT(n, 0u);
  EXPECT_LE(n, max_topology_json_bytes);
  std::array<char, 10> small;
  EXPECT_EQ(write_topology_json(small, topo("eu-west", "FR")), 0u);
  std::array<char, 2> two;
  EXPECT_EQ(write_topology_json(two, Topology{}), 2u);
  std::array<char, 1> one;
  EXPECT_EQ(write_topology_json(one, Topology{}), 0u);
}

TEST(Rng, DeterministicPerSeedAndBounded) {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.next();
    EXPECT_EQ(x, b.next());
    differs |= x != c.next();
  }
  EXPECT_TRUE(differs);
  std::array<int, 7> counts{};
  for (int i = 0; i < 70'000; ++i) {
    uint32_t v = a.below(7);
    ASSERT_LT(v, 7u);
    ++counts[v];
  }
  for (int n : counts) EXPECT_NEAR(n, 10'000, 500);
  EXPECT_EQ(a.below(1), 0u);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(a.below(UINT32_MAX), UINT32_MAX);
}

TEST(Swarm, HandlesStayValidAcrossRemovalAndGoStaleAfterIt) {
  Swarm swarm(1);
  MemberHandle a = swarm.add(member("a", topo("eu"))), b = swarm.add(member("b", topo("us"))),
               c = swarm.add(member("c", topo("eu")));
  EXPECT_EQ(swarm.size(), 3u);
  EXPECT_EQ(swarm.region_count(), 2u);
  EXPECT_TRUE(swarm.remove(a));  // c moves into a's place
  EXPECT_EQ(swarm.size(), 2u);
  EXPECT_FALSE(swarm.contains(a));
  EXPECT_EQ(swarm.find(a), nullptr);
  EXPECT_FALSE(swarm.remove(a));
  EXPECT_FALSE(swarm.update(a, Topology{}, true));
  EXPECT_EQ(swarm.at(b).peer_id.view(), "b");
  EXPECT_EQ(swarm.at(c).peer_id.view(), "c");
  MemberHandle d = swarm.add(member("d"));  // reuses a's slot with a new generation
  EXPECT_EQ(d.slot, a.slot);
  EXPECT_NE(d.generation, a.generation);
  EXPECT_FALSE(swarm.contains(a));
  EXPECT_EQ(swarm.at(d).peer_id.view(), "d");
  EXPECT_FALSE(swarm.contains(MemberHandle{}));
  EXPECT_FALSE(swarm.contains(MemberHandle{999, 1}));
  // A region's index goes with its last member (or its last update away).
  EXPECT_EQ(swarm.region_count(), 2u);
  EXPECT_TRUE(swarm.update(c, topo("ap"), true));
  EXPECT_EQ(swarm.region_count(), 2u);  // us, ap
  EXPECT_TRUE(swarm.remove(b));
  EXPECT_TRUE(swarm.remove(c));
  EXPECT_EQ(swarm.region_count(), 0u);
  EXPECT_EQ(swarm.size(), 1u);
}

TEST(SwarmDeathTest, AtWithStaleHandleAborts) {
  Swarm swarm(1);
  MemberHandle a = swarm.add(member("a"));
  swarm.remove(a);
  EXPECT_DEATH(swarm.at(a), "");
}

// Random adds, removes and updates against a model. After every step each
// live handle names its own member, stale ones miss, and a pick of 64 (the
// swarm stays under 64 members, so it is scanned in full) returns exactly
// the accepting members, those of the requester's region first.
TEST(Swarm, RandomOperationsMatchModel) {
  Swarm swarm(7);
  Rng rng(99);
  struct Expected {
    std::string id;
    std::string region;
    bool accepting;
  };
  std::map<uint32_t, std::pair<MemberHandle, Expected>> live;  // by slot
  std::vector<MemberHandle> stale;
  const char* regions[] = {"", "eu", "us", "ap"};
  int next_id = 0;
  for (int step = 0; step < 20'000; ++step) {
    uint32_t op = rng.below(10);
    if ((op < 4 || live.empty()) && live.size() < 60) {
      Expected e{"p" + std::to_string(next_id++), regions[rng.below(4)], rng.below(5) != 0};
      MemberHandle h = swarm.add(member(e.id, topo(e.region), e.accepting));
      ASSERT_FALSE(live.count(h.slot));
      live[h.slot] = {h, e};
    } else {
      auto it = live.begin();
      std::advance(it, rng.below(static_cast<uint32_t>(live.size())));
      if (op < 8 || live.size() >= 60) {
        ASSERT_TRUE(swarm.remove(it->second.first));
        stale.push_back(it->second.first);
        live.erase(it);
      } else {
        Expected& e = it->second.second;
        e.region = regions[rng.below(4)];
        e.accepting = rng.below(5) != 0;
        ASSERT_TRUE(swarm.update(it->second.first, topo(e.region), e.accepting));
      }
    }
    ASSERT_EQ(swarm.size(), live.size());
    for (auto& [slot, entry] : live) {
      ASSERT_EQ(swarm.at(entry.first).peer_id.view(), entry.second.id);
      ASSERT_EQ(swarm.at(entry.first).topology.region.view(), entry.second.region);
    }
    if (stale.size() > 100) stale.erase(stale.begin(), stale.begin() + 50);
    for (MemberHandle h : stale) ASSERT_FALSE(swarm.contains(h));

    const char* region = regions[rng.below(4)];
    std::set<std::string> eligible;
    size_t eligible_in_region = 0;
    std::map<std::string, Expected> by_id;
    for (auto& [slot, entry] : live) {
      by_id[entry.second.id] = entry.second;
      if (!entry.second.accepting) continue;
      eligible.insert(entry.second.id);
      eligible_in_region += *region != 0 && entry.second.region == region;
    }
    auto ids = pick_ids(swarm, rng, "requester", topo(region), 64);
    ASSERT_EQ(std::set<std::string>(ids.begin(), ids.end()), eligible) << "step " << step;
    ASSERT_EQ(ids.size(), eligible.size());
    for (size_t i = 0; i < ids.size(); ++i)
      ASSERT_EQ(*region != 0 && by_id.at(ids[i]).region == region, i < eligible_in_region) << "position " << i;
  }
}

TEST(SwarmPick, NeverSelfExcludedOrNonAcceptingNoDuplicatesCountRespected) {
  Swarm swarm(3);
  for (int i = 0; i < 40; ++i) swarm.add(member("p" + std::to_string(i), topo(i % 2 ? "eu" : "us"), i % 5 != 0));
  Rng rng(5);
  std::array<std::string_view, 3> exclude = {"p1", "p3", "nobody"};
  for (uint32_t count : {1u, 3u, 8u, 20u, 64u}) {
    for (int round = 0; round < 50; ++round) {
      auto ids = pick_ids(swarm, rng, "p7", topo("eu"), count, exclude);
      // 40 members, 8 non-accepting, minus self and two excluded.
      EXPECT_EQ(ids.size(), std::min<size_t>(count, 29));
      std::set<std::string> unique(ids.begin(), ids.end());
      EXPECT_EQ(unique.size(), ids.size());
      for (const std::string& id : ids) {
        EXPECT_NE(id, "p7");
        EXPECT_NE(id, "p1");
        EXPECT_NE(id, "p3");
        int n = std::stoi(id.substr(1));
        EXPECT_NE(n % 5, 0) << id << " does not accept peers";
      }
    }
  }
}

TEST(SwarmPick, CountLimitedByOutputSpanAndEmptyCases) {
  Swarm swarm(3);
  Rng rng(5);
  EXPECT_TRUE(pick_ids(swarm, rng, "x", {}, 8).empty());
  for (int i = 0; i < 100; ++i) swarm.add(member("p" + std::to_string(i)));
  EXPECT_TRUE(pick_ids(swarm, rng, "x", {}, 0).empty());
  std::array<MemberHandle, 4> small;
  PickRequest request;
  request.requester = "x";
  request.count = 50;
  EXPECT_EQ(swarm.pick(request, small, rng), 4u);
  std::array<MemberHandle, 80> large;
  request.count = 80;
  EXPECT_EQ(swarm.pick(request, large, rng), Swarm::max_pick);
  // Only the requester itself, or nobody accepting.
  Swarm alone(3);
  alone.add(member("me"));
  alone.add(member("closed", {}, false));
  EXPECT_TRUE(pick_ids(alone, rng, "me", {}, 8).empty());
}

TEST(SwarmPickDeathTest, MoreThan64ExcludedAborts) {
  Swarm swarm(3);
  swarm.add(member("a"));
  Rng rng(1);
  std::vector<std::string_view> exclude(65, "z");
  std::array<MemberHandle, 8> out;
  PickRequest request;
  request.requester = "x";
  request.count = 8;
  request.exclude = exclude;
  EXPECT_DEATH(swarm.pick(request, out, rng), "");
}

TEST(SwarmDeathTest, InconsistentTuningAborts) {
  EXPECT_DEATH(Swarm(1, SwarmTuning{.min_sample = 600}), "");
  EXPECT_DEATH(Swarm(1, SwarmTuning{.min_sample = 0}), "");
}

TEST(SwarmPick, SixtyFourExcludedAreAllHonoured) {
  Swarm swarm(3);
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    ids.push_back("p" + std::to_string(i));
    swarm.add(member(ids.back()));
  }
  std::vector<std::string_view> exclude(ids.begin(), ids.begin() + 64);
  Rng rng(1);
  auto picked = pick_ids(swarm, rng, "p99", {}, 64, exclude);
  EXPECT_EQ(picked.size(), 35u);
  for (const std::string& id : picked) EXPECT_GE(std::stoi(id.substr(1)), 64) << id;
}

TEST(SwarmPick, OrderRegionThenAsnThenCountryThenProposals) {
  Swarm swarm(11);
  Topology me = topo("eu", "FR", 3215);
  swarm.add(member("nothing", topo("us", "US", 7922)));
  swarm.add(member("country", topo("us", "FR", 7922)));
  swarm.add(member("asn", topo("us", "US", 3215)));
  swarm.add(member("asn+country", topo("us", "FR", 3215)));
  swarm.add(member("region", topo("eu", "DE", 1)));
  swarm.add(member("region+country", topo("eu", "FR", 1)));
  swarm.add(member("region+asn", topo("eu", "DE", 3215)));
  swarm.add(member("undeclared"));
  Rng rng(2);
  // now_ms far apart so proposals from the previous round have decayed away.
  for (int round = 0; round < 20; ++round) {
    auto ids = pick_ids(swarm, rng, "me", me, 8, {}, uint64_t(round) * 10'000'000);
    std::vector<std::string> expected_head = {"region+asn", "region+country", "region", "asn+country", "asn", "country"};
    ASSERT_EQ(ids.size(), 8u);
    EXPECT_EQ(std::vector<std::string>(ids.begin(), ids.begin() + 6), expected_head);
    std::set<std::string> tail(ids.begin() + 6, ids.end());
    EXPECT_EQ(tail, (std::set<std::string>{"nothing", "undeclared"}));
  }
}

TEST(SwarmPick, UndeclaredRequesterMatchesNobody) {
  Swarm swarm(11);
  swarm.add(member("undeclared"));
  swarm.add(member("declared", topo("eu", "FR", 1)));
  Rng rng(2);
  std::map<std::string, int> first;
  for (int i = 0; i < 2000; ++i) ++first[pick_ids(swarm, rng, "me", {}, 1, {}, uint64_t(i) * 10'000'000)[0]];
  EXPECT_NEAR(first["undeclared"], 1000, 150);
  EXPECT_NEAR(first["declared"], 1000, 150);
}

TEST(SwarmPick, FewestProposalsFirstAndCountersIncrement) {
  Swarm swarm(11);
  std::vector<MemberHandle> handles;
  for (int i = 0; i < 4; ++i) handles.push_back(swarm.add(member("p" + std::to_string(i), topo("eu"))));
  Rng rng(2);
  // Same time: each pick proposes the least-proposed member, so 4 picks of
  // one cover all four, and 8 picks of one give each exactly 2.
  std::set<std::string> seen;
  for (int i = 0; i < 4; ++i) seen.insert(pick_ids(swarm, rng, "me", topo("eu"), 1)[0]);
  EXPECT_EQ(seen.size(), 4u);
  for (int i = 0; i < 4; ++i) pick_ids(swarm, rng, "me", topo("eu"), 1);
  for (MemberHandle h : handles) EXPECT_EQ(swarm.proposals(h, 0), 2u);
  // A region match still beats proposals.
  MemberHandle far = swarm.add(member("far", topo("us")));
  for (int i = 0; i < 3; ++i) EXPECT_NE(pick_ids(swarm, rng, "me", topo("eu"), 1)[0], "far");
  EXPECT_EQ(swarm.proposals(far, 0), 0u);
  // A pick of 2 returns the two with fewest proposals.
  swarm.forget_proposal(handles[0], 0);
  swarm.forget_proposal(handles[0], 0);
  swarm.forget_proposal(handles[0], 0);  // saturates at 0
  EXPECT_EQ(swarm.proposals(handles[0], 0), 0u);
  auto two = pick_ids(swarm, rng, "me", topo("eu"), 2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0], "p0");
  EXPECT_EQ(swarm.proposals(handles[0], 0), 1u);
  EXPECT_EQ(swarm.proposals(MemberHandle{}, 0), 0u);
}

TEST(SwarmPick, ProposalsHalveEachHalfLife) {
  Swarm swarm(11, SwarmTuning{.proposal_half_life_ms = 1000});
  MemberHandle h = swarm.add(member("p"));
  Rng rng(2);
  for (int i = 0; i < 8; ++i) pick_ids(swarm, rng, "me", {}, 1, {}, 500);
  EXPECT_EQ(swarm.proposals(h, 500), 8u);
  EXPECT_EQ(swarm.proposals(h, 999), 8u);
  EXPECT_EQ(swarm.proposals(h, 1000), 4u);
  EXPECT_EQ(swarm.proposals(h, 2500), 2u);
  EXPECT_EQ(swarm.proposals(h, 100'000), 0u);
  EXPECT_EQ(swarm.proposals(h, 0), 8u);  // an earlier clock never adds
  pick_ids(swarm, rng, "me", {}, 1, {}, 2000);  // 8 -> 2, then + 1
  EXPECT_EQ(swarm.proposals(h, 2000), 3u);
  EXPECT_EQ(swarm.proposals(h, 3000), 1u);
  swarm.forget_proposal(h, 3000);
  EXPECT_EQ(swarm.proposals(h, 3000), 0u);
}

TEST(SwarmPick, TiesAreBrokenRandomlyAndEvenly) {
  Swarm swarm(13, SwarmTuning{.proposal_half_life_ms = 1});
  for (int i = 0; i < 10; ++i) swarm.add(member("p" + std::to_string(i), topo("eu")));
  Rng rng(17);
  std::map<std::string, int> first, in_three;
  const int rounds = 20'000;
  for (int r = 0; r < rounds; ++r) {
    // 64 ms later every counter has decayed to 0: all ten members tie.
    auto ids = pick_ids(swarm, rng, "me", topo("eu"), 3, {}, uint64_t(r) * 64);
    ASSERT_EQ(ids.size(), 3u);
    ++first[ids[0]];
    for (const auto& id : ids) ++in_three[id];
  }
  ASSERT_EQ(first.size(), 10u);
  for (auto& [id, n] : first) EXPECT_NEAR(n, rounds / 10, rounds / 10 * 0.12) << id;
  for (auto& [id, n] : in_three) EXPECT_NEAR(n, rounds * 3 / 10, rounds * 3 / 10 * 0.08) << id;
}

TEST(SwarmPick, UpdateChangesRegionAndAccepting) {
  Swarm swarm(5);
  MemberHandle a = swarm.add(member("a", topo("us")));
  swarm.add(member("b", topo("us")));
  Rng rng(3);
  EXPECT_EQ(pick_ids(swarm, rng, "me", topo("eu"), 2).size(), 2u);
  ASSERT_TRUE(swarm.update(a, topo("eu"), true));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(pick_ids(swarm, rng, "me", topo("eu"), 2, {}, uint64_t(i) * 10'000'000)[0], "a");
  ASSERT_TRUE(swarm.update(a, topo("eu"), false));
  EXPECT_EQ(pick_ids(swarm, rng, "me", topo("eu"), 2), std::vector<std::string>{"b"});
  EXPECT_EQ(swarm.at(a).topology.region.view(), "eu");
  EXPECT_FALSE(swarm.at(a).accepting_peers);
}

// Large swarms are sampled: the result must still be valid, and the region
// index must deliver same-region peers when the region has enough of them.
class LargeSwarm : public ::testing::Test {
 protected:
  static constexpr int members = 100'000;
  void SetUp() override {
    const char* regions[] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"};
    for (int i = 0; i < members; ++i) {
      ids_.push_back("p" + std::to_string(i));
      // 10 regions of 10% each, except that "rare" holds 0.1%; 1 in 4 does not accept.
      std::string_view region = i % 1000 == 0 ? "rare" : regions[i % 10];
      handles_.push_back(swarm_.add(member(ids_.back(), topo(region, i % 3 ? "FR" : "DE", i % 7), i % 4 != 1)));
    }
  }
  Swarm swarm_{21};
  std::vector<std::string> ids_;
  std::vector<MemberHandle> handles_;
};

TEST_F(LargeSwarm, PickReturnsDistinctValidSameRegionMembers) {
  Rng rng(8);
  std::array<std::string_view, 2> exclude = {"p3", "p13"};
  for (int round = 0; round < 200; ++round) {
    auto ids = pick_ids(swarm_, rng, "p23", topo("r3", "FR", 2), 8, exclude);
    ASSERT_EQ(ids.size(), 8u);
    std::set<std::string> unique(ids.begin(), ids.end());
    ASSERT_EQ(unique.size(), 8u);
    for (const std::string& id : ids) {
      ASSERT_TRUE(id != "p23" && id != "p3" && id != "p13");
      int n = std::stoi(id.substr(1));
      ASSERT_NE(n % 4, 1) << id;
      ASSERT_EQ(n % 10, 3) << id << " is not in r3";
    }
  }
}

TEST_F(LargeSwarm, RareRegionIsFoundThroughTheIndex) {
  Rng rng(8);
  // 100 members are in "rare" (all accepting): a blind sample of 64 out of
  // 100,000 would almost never contain 8 of them.
  for (int round = 0; round < 50; ++round) {
    auto ids = pick_ids(swarm_, rng, "me", topo("rare"), 8);
    ASSERT_EQ(ids.size(), 8u);
    for (const std::string& id : ids) ASSERT_EQ(std::stoi(id.substr(1)) % 1000, 0) << id;
  }
}

TEST_F(LargeSwarm, RegionWithTooFewMembersIsCompletedFromTheWholeSwarm) {
  Rng rng(8);
  // Leave only 3 accepting members in "rare".
  int kept = 0;
  for (int i = 0; i < members; i += 1000) {
    if (kept++ < 3) continue;
    swarm_.update(handles_[i], topo("rare"), false);
  }
  auto ids = pick_ids(swarm_, rng, "me", topo("rare"), 8);
  ASSERT_EQ(ids.size(), 8u);
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), 8u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(std::stoi(ids[i].substr(1)) % 1000, 0) << ids[i];
  for (size_t i = 3; i < 8; ++i) EXPECT_NE(std::stoi(ids[i].substr(1)) % 1000, 0) << ids[i];
}

TEST_F(LargeSwarm, RemovingMostMembersKeepsHandlesAndIndexConsistent) {
  Rng rng(8);
  for (int i = 0; i < members; ++i)
    if (i % 50 != 0) {
      ASSERT_TRUE(swarm_.remove(handles_[i]));
    }
  ASSERT_EQ(swarm_.size(), 2000u);
  for (int i = 0; i < members; i += 50) ASSERT_EQ(swarm_.at(handles_[i]).peer_id.view(), ids_[i]);
  ASSERT_FALSE(swarm_.contains(handles_[1]));
  // Accepting members of r0 left: i % 50 == 0, i % 10 == 0, i % 4 != 1, not "rare" (i % 1000 != 0).
  auto ids = pick_ids(swarm_, rng, "me", topo("r0"), 64);
  ASSERT_EQ(ids.size(), 64u);
  for (const std::string& id : ids) {
    int n = std::stoi(id.substr(1));
    ASSERT_EQ(n % 50, 0);
    ASSERT_NE(n % 1000, 0);
  }
}

TEST_F(LargeSwarm, RequesterWithoutRegionGetsValidMembers) {
  Rng rng(9);
  for (uint32_t count : {1u, 8u, 64u}) {
    auto ids = pick_ids(swarm_, rng, "p0", {}, count);
    ASSERT_EQ(ids.size(), count);
    std::set<std::string> unique(ids.begin(), ids.end());
    ASSERT_EQ(unique.size(), count);
    for (const std::string& id : ids) ASSERT_NE(std::stoi(id.substr(1)) % 4, 1) << id;
  }
}

// Sampled region search that finds too few eligible members falls through
// to the whole-swarm sample, which may meet the same members again: the
// result must still hold no duplicates.
TEST(SwarmPick, SampledRegionPlusSampledSwarmHasNoDuplicates) {
  SwarmTuning tuning{.scan_limit = 8, .sample_per_wanted = 1, .min_sample = 16, .max_sample = 16};
  Swarm swarm(4, tuning);
  for (int i = 0; i < 100; ++i) swarm.add(member("eu" + std::to_string(i), topo("eu"), i % 10 == 0));
  for (int i = 0; i < 30; ++i) swarm.add(member("us" + std::to_string(i), topo("us"), true));
  Rng rng(6);
  for (int round = 0; round < 2000; ++round) {
    auto ids = pick_ids(swarm, rng, "me", topo("eu"), 16, {}, uint64_t(round) * 10'000'000);
    std::set<std::string> unique(ids.begin(), ids.end());
    ASSERT_EQ(unique.size(), ids.size());
    ASSERT_FALSE(ids.empty());
    // Same-region results always come first.
    bool other_seen = false;
    for (const std::string& id : ids) {
      bool eu = id.starts_with("eu");
      ASSERT_FALSE(eu && other_seen);
      other_seen |= !eu;
      if (eu) {
        ASSERT_EQ(std::stoi(id.substr(2)) % 10, 0);
      }
    }
  }
}

// Sampling is uniform: over many picks from a sampled swarm every member is
// returned about equally often.
TEST(SwarmPick, SampledSwarmSpreadsOverAllMembers) {
  SwarmTuning tuning{.scan_limit = 16, .sample_per_wanted = 1, .min_sample = 16, .max_sample = 16,
                     .proposal_half_life_ms = 1};
  Swarm swarm(4, tuning);
  for (int i = 0; i < 200; ++i) swarm.add(member("p" + std::to_string(i)));
  Rng rng(6);
  std::map<std::string, int> counts;
  const int rounds = 20'000;
  for (int r = 0; r < rounds; ++r)
    for (auto& id : pick_ids(swarm, rng, "me", {}, 4, {}, uint64_t(r) * 64)) ++counts[id];
  ASSERT_EQ(counts.size(), 200u);
  for (auto& [id, n] : counts) EXPECT_NEAR(n, rounds * 4 / 200, rounds * 4 / 200 * 0.35) << id;
}

}  // namespace
}  // namespace mf::edge
