// SlotFifo: accept order kept, any member removed in O(1), removal of a slot
// that is not queued is harmless, and the list empties to `none`.
#include "common/base/slot_fifo.h"

#include <gtest/gtest.h>

#include <vector>

namespace mf {
namespace {

struct Table {
  std::vector<SlotFifo::Links> links = std::vector<SlotFifo::Links>(8);
  SlotFifo fifo;
  auto links_of() {
    return [this](uint32_t slot) -> SlotFifo::Links& { return links[slot]; };
  }
  std::vector<uint32_t> order() {
    std::vector<uint32_t> out;
    for (uint32_t s = fifo.oldest(); s != SlotFifo::none; s = links[s].newer) out.push_back(s);
    return out;
  }
};

TEST(SlotFifo, KeepsAcceptOrderAndRemovesAnyMember) {
  Table t;
  EXPECT_EQ(t.fifo.oldest(), SlotFifo::none);
  for (uint32_t s : {3u, 1u, 5u, 0u}) t.fifo.push_newest(s, t.links_of());
  EXPECT_EQ(t.order(), (std::vector<uint32_t>{3, 1, 5, 0}));
  t.fifo.remove(5, t.links_of());  // middle
  EXPECT_EQ(t.order(), (std::vector<uint32_t>{3, 1, 0}));
  t.fifo.remove(3, t.links_of());  // oldest
  EXPECT_EQ(t.fifo.oldest(), 1u);
  t.fifo.remove(0, t.links_of());  // newest
  EXPECT_EQ(t.order(), (std::vector<uint32_t>{1}));
  t.fifo.remove(7, t.links_of());  // never queued
  t.fifo.remove(0, t.links_of());  // already removed
  EXPECT_EQ(t.order(), (std::vector<uint32_t>{1}));
  t.fifo.push_newest(0, t.links_of());  // a removed slot can come back
  EXPECT_EQ(t.order(), (std::vector<uint32_t>{1, 0}));
  t.fifo.remove(1, t.links_of());
  t.fifo.remove(0, t.links_of());
  EXPECT_EQ(t.fifo.oldest(), SlotFifo::none);
  for (const auto& l : t.links) EXPECT_FALSE(l.listed);
}

}  // namespace
}  // namespace mf
