#include "edge/peer_directory.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

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

// ---- handles: what the relay carries between shards instead of the text ----

TEST(PeerDirectory, AClaimNamesItsEntryByHandle) {
  PeerDirectory d(3);
  ClaimResult r = d.claim("p1", a, 1, "s1", std::nullopt, "fresh-1");
  ASSERT_TRUE(r.handle.valid());
  EXPECT_EQ(r.handle.shard, 3u);
  const DirectoryEntry* entry = d.resolve(r.handle, "p1");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry, d.find("p1"));
  EXPECT_EQ(entry->handle, r.handle);
  EXPECT_EQ(entry->peer_id, "p1");
  // A switch and a takeover keep the claim's handle; a refused claim gets none.
  EXPECT_EQ(d.claim("p1", a, 2, "s2", std::nullopt, "x").handle, r.handle);
  EXPECT_FALSE(d.claim("p1", b, 1, "s2", std::nullopt, "x").handle.valid());
  EXPECT_EQ(d.claim("p1", b, 1, "s2", std::string_view("fresh-1"), "fresh-2").handle, r.handle);
}

TEST(PeerDirectory, AStaleGenerationResolvesToNothing) {
  PeerDirectory d;
  DirectoryHandle first = d.claim("p1", a, 1, "s1", std::nullopt, "fresh-1").handle;
  ASSERT_TRUE(d.release("p1", a, 1));
  EXPECT_EQ(d.resolve(first, "p1"), nullptr);  // given back
  // Claimed again, in the same slot: the old handle stays stale.
  DirectoryHandle second = d.claim("p1", c, 1, "s1", std::nullopt, "fresh-2").handle;
  EXPECT_EQ(second.slot, first.slot);
  EXPECT_NE(second.generation, first.generation);
  EXPECT_EQ(d.resolve(first, "p1"), nullptr);
  ASSERT_NE(d.resolve(second, "p1"), nullptr);
  EXPECT_EQ(d.resolve(second, "p1")->location, c);
  // The slot taken by another peerId: the old handle still names nothing.
  ASSERT_TRUE(d.release("p1", c, 1));
  DirectoryHandle other = d.claim("p2", a, 1, "s1", std::nullopt, "fresh-3").handle;
  EXPECT_EQ(other.slot, first.slot);
  EXPECT_EQ(d.resolve(second, "p1"), nullptr);
  EXPECT_EQ(d.resolve(second, "p2"), nullptr);
  EXPECT_NE(d.resolve(other, "p2"), nullptr);
}

TEST(PeerDirectory, AHandleOfAnotherShardOrSlotOrTextResolvesToNothing) {
  PeerDirectory d(1);
  DirectoryHandle h = d.claim("p1", a, 1, "s1", std::nullopt, "fresh-1").handle;
  EXPECT_EQ(d.resolve(DirectoryHandle{0, h.slot, h.generation}, "p1"), nullptr);  // wrong shard
  EXPECT_EQ(d.resolve(DirectoryHandle{1, h.slot + 1, h.generation}, "p1"), nullptr);  // slot out of range
  EXPECT_EQ(d.resolve(DirectoryHandle{1, UINT32_MAX - 1, h.generation}, "p1"), nullptr);
  EXPECT_EQ(d.resolve(DirectoryHandle{}, "p1"), nullptr);  // no handle
  // The right handle with another text (malformed, a prefix, a longer one).
  EXPECT_EQ(d.resolve(h, "p2"), nullptr);
  EXPECT_EQ(d.resolve(h, "p"), nullptr);
  EXPECT_EQ(d.resolve(h, std::string_view("p1\0", 3)), nullptr);
  EXPECT_EQ(d.resolve(h, ""), nullptr);
  EXPECT_NE(d.resolve(h, "p1"), nullptr);
}

TEST(PeerDirectory, FindWithThePrecomputedHash) {
  PeerDirectory d;
  d.claim("p1", a, 1, "s1", std::nullopt, "fresh-1");
  EXPECT_EQ(d.find("p1", PeerDirectory::hash_of("p1")), d.find("p1"));
  EXPECT_EQ(d.find("p2", PeerDirectory::hash_of("p2")), nullptr);
  // A wrong hash never finds another peerId's entry (the text is compared).
  EXPECT_EQ(d.find("p2", PeerDirectory::hash_of("p1")), nullptr);
}

// Many claims and releases in every order: the index grows, and its
// deletions (moving entries back along their probe runs) lose nobody.
TEST(PeerDirectory, ManyClaimsAndReleasesKeepEveryEntryFindable) {
  PeerDirectory d;
  constexpr uint32_t n = 5000;
  std::vector<DirectoryHandle> handles(n);
  auto id = [](uint32_t i) { return "peer-" + std::to_string(i); };
  for (uint32_t i = 0; i < n; ++i) {
    handles[i] = d.claim(id(i), PeerLocation{0, i, 1}, 1, "s", std::nullopt, "x").handle;
    ASSERT_TRUE(handles[i].valid());
  }
  EXPECT_EQ(d.size(), n);
  for (uint32_t i = 0; i < n; i += 3) ASSERT_TRUE(d.release(id(i), PeerLocation{0, i, 1}, 1));
  for (uint32_t i = 0; i < n; ++i) {
    const bool released = i % 3 == 0;
    const DirectoryEntry* found = d.find(id(i));
    ASSERT_EQ(found == nullptr, released) << i;
    ASSERT_EQ(d.resolve(handles[i], id(i)) == nullptr, released) << i;
    if (!released) {
      ASSERT_EQ(found->location, (PeerLocation{0, i, 1}));
    }
  }
  // The freed slots serve new claims; the survivors keep their handles.
  for (uint32_t i = 0; i < n; i += 3)
    ASSERT_TRUE(d.claim("again-" + std::to_string(i), PeerLocation{1, i, 1}, 1, "s", std::nullopt, "x").handle.valid());
  EXPECT_EQ(d.size(), n);
  for (uint32_t i = 0; i < n; ++i) {
    if (i % 3 == 0) {
      ASSERT_NE(d.find("again-" + std::to_string(i)), nullptr) << i;
      ASSERT_EQ(d.resolve(handles[i], id(i)), nullptr) << i;
    } else {
      ASSERT_NE(d.resolve(handles[i], id(i)), nullptr) << i;
    }
  }
  for (uint32_t i = 0; i < n; ++i) {
    if (i % 3 == 0) {
      ASSERT_TRUE(d.release("again-" + std::to_string(i), PeerLocation{1, i, 1}, 1));
    } else {
      ASSERT_TRUE(d.release(id(i), PeerLocation{0, i, 1}, 1));
    }
  }
  EXPECT_EQ(d.size(), 0u);
  EXPECT_EQ(d.find(id(1)), nullptr);
}

}  // namespace
}  // namespace mf::edge
