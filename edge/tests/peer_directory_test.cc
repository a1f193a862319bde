#include "edge/peer_directory.h"

#include <gtest/gtest.h>

namespace mf::edge {
namespace {

constexpr PeerLocation a{0, 1, 1};
constexpr PeerLocation b{1, 7, 3};
constexpr PeerLocation c{0, 1, 2};  // same slot as a, later generation

TEST(PeerDirectory, FirstClaimGetsTheFreshSession) {
  PeerDirectory d;
  ClaimResult r = d.claim("p1", a, 1, "s1", std::nullopt, "fresh-1");
  EXPECT_EQ(r.outcome, ClaimOutcome::claimed);
  EXPECT_EQ(r.session, "fresh-1");
  ASSERT_NE(d.find("p1"), nullptr);
  EXPECT_EQ(d.find("p1")->stream_id, "s1");
  EXPECT_EQ(d.find("p1")->location, a);
}

TEST(PeerDirectory, ASecondConnectionWithoutSessionIsRefused) {
  PeerDirectory d;
  d.claim("p1", a, 1, "s1", std::nullopt, "fresh-1");
  ClaimResult r = d.claim("p1", b, 1, "s1", std::nullopt, "fresh-2");
  EXPECT_EQ(r.outcome, ClaimOutcome::taken);
  EXPECT_EQ(d.find("p1")->location, a);
  ClaimResult wrong = d.claim("p1", b, 1, "s1", std::string_view("fresh-2"), "fresh-3");
  EXPECT_EQ(wrong.outcome, ClaimOutcome::taken);
  ClaimResult prefix = d.claim("p1", b, 1, "s1", std::string_view("fresh-"), "fresh-3");
  EXPECT_EQ(prefix.outcome, ClaimOutcome::taken);
}

TEST(PeerDirectory, TheRightSessionTakesOverAndTheSessionRotates) {
  PeerDirectory d;
  d.claim("p1", a, 1, "s1", std::nullopt, "fresh-1");
  ClaimResult r = d.claim("p1", b, 1, "s2", std::string_view("fresh-1"), "fresh-2");
  EXPECT_EQ(r.outcome, ClaimOutcome::taken_over);
  EXPECT_EQ(r.replaced, a);
  EXPECT_EQ(r.session, "fresh-2");
  // The presented session takes nothing over any more; the new one does.
  EXPECT_EQ(d.claim("p1", c, 1, "s2", std::string_view("fresh-1"), "x").outcome, ClaimOutcome::taken);
  EXPECT_EQ(d.find("p1")->location, b);
  EXPECT_EQ(d.find("p1")->location, b);
  EXPECT_EQ(d.find("p1")->stream_id, "s2");
  // The replaced connection's late release must not free the new holder.
  EXPECT_FALSE(d.release("p1", a, 1));
  ASSERT_NE(d.find("p1"), nullptr);
  EXPECT_TRUE(d.release("p1", b, 1));
  EXPECT_EQ(d.find("p1"), nullptr);
}

TEST(PeerDirectory, SameHolderSwitchesStream) {
  PeerDirectory d;
  d.claim("p1", a, 1, "s1", std::nullopt, "fresh-1");
  ClaimResult r = d.claim("p1", a, 1, "s2", std::nullopt, "ignored");
  EXPECT_EQ(r.outcome, ClaimOutcome::same_holder);
  EXPECT_EQ(r.session, "fresh-1");
  EXPECT_EQ(d.find("p1")->stream_id, "s2");
}

TEST(PeerDirectory, GenerationsDistinguishReusedSlots) {
  PeerDirectory d;
  d.claim("p1", a, 1, "s1", std::nullopt, "fresh-1");
  EXPECT_EQ(d.claim("p1", c, 1, "s1", std::nullopt, "x").outcome, ClaimOutcome::taken);
  EXPECT_FALSE(d.release("p1", c, 1));
  EXPECT_EQ(d.size(), 1u);
}

// A join abandoned while its claim's reply was in flight is undone by that
// reply (release with the claim's sequence); by then the same connection may
// have claimed the peerId again: the late release must miss.
TEST(PeerDirectory, ReleaseOfAnOlderClaimOfTheSameConnectionMisses) {
  PeerDirectory d;
  d.claim("p1", a, 4, "s1", std::nullopt, "fresh-1");
  EXPECT_EQ(d.claim("p1", a, 6, "s1", std::nullopt, "x").outcome, ClaimOutcome::same_holder);
  EXPECT_FALSE(d.release("p1", a, 4));
  EXPECT_EQ(d.find("p1")->sequence, 6u);
  EXPECT_TRUE(d.release("p1", a, 6));
  EXPECT_EQ(d.size(), 0u);
}

TEST(PeerDirectory, TakeoverRecordsTheNewHoldersSequence) {
  PeerDirectory d;
  d.claim("p1", a, 2, "s1", std::nullopt, "fresh-1");
  EXPECT_EQ(d.claim("p1", b, 9, "s1", std::string_view("fresh-1"), "x").outcome, ClaimOutcome::taken_over);
  EXPECT_FALSE(d.release("p1", a, 2));
  EXPECT_FALSE(d.release("p1", b, 2));
  EXPECT_TRUE(d.release("p1", b, 9));
}

}  // namespace
}  // namespace mf::edge
