#include "edge/signal_packet_pool.h"

#include <gtest/gtest.h>

#include <vector>

namespace mf::edge {
namespace {

TEST(SignalPacketPool, ReusesItsOwnPacketsWithTheirCapacity) {
  SignalPacketPool pool(0, 2);
  auto packet = pool.acquire();
  EXPECT_EQ(packet->home_shard, 0u);
  EXPECT_EQ(pool.allocated(), 1u);
  packet->text.assign(600, 'x');
  SignalPacket* raw = packet.get();
  const size_t capacity = packet->text.capacity();
  EXPECT_EQ(pool.release(std::move(packet)), nullptr);
  EXPECT_EQ(pool.free_count(), 1u);
  auto again = pool.acquire();
  EXPECT_EQ(again.get(), raw);
  EXPECT_EQ(again->next, nullptr);
  EXPECT_EQ(again->text.capacity(), capacity);
  EXPECT_EQ(pool.allocated(), 1u);
  EXPECT_EQ(pool.free_count(), 0u);
}

TEST(SignalPacketPool, ARecycledPacketCarriesNothingOfItsLastSignal) {
  SignalPacketPool pool(0, 1);
  auto packet = pool.acquire();
  packet->sender = PeerLocation{0, 7, 3};
  packet->target = PeerLocation{0, 9, 4};
  packet->relookup = true;  // a cluster signal that came back from a stale place
  packet->to_hash = 42;
  packet->to_handle = DirectoryHandle{1, 2, 3};
  packet->sender_handle = DirectoryHandle{0, 5, 6};
  packet->sender_stream_key = 77;
  pool.release(std::move(packet));
  auto again = pool.acquire();
  EXPECT_FALSE(again->relookup);
  EXPECT_EQ(again->to_hash, 0u);
  EXPECT_FALSE(again->to_handle.valid());
  EXPECT_FALSE(again->sender_handle.valid());
  EXPECT_EQ(again->sender_stream_key, 0u);
  EXPECT_EQ(again->target, PeerLocation{});
  EXPECT_EQ(again->sender, PeerLocation{});
}

TEST(SignalPacketPool, ReturnsAnotherShardsPacketsInFullBatches) {
  SignalPacketPool home(1, 2), away(0, 2);
  std::vector<std::unique_ptr<SignalPacket>> sent;
  for (uint32_t i = 0; i < SignalPacketPool::batch_size; ++i) sent.push_back(home.acquire());
  SignalPacket* batch = nullptr;
  for (uint32_t i = 0; i < SignalPacketPool::batch_size; ++i) {
    SignalPacket* full = away.release(std::move(sent[i]));
    if (i + 1 < SignalPacketPool::batch_size) {
      EXPECT_EQ(full, nullptr) << i;
    } else {
      batch = full;
    }
  }
  ASSERT_NE(batch, nullptr);
  EXPECT_EQ(batch->home_shard, 1u);
  EXPECT_EQ(away.free_count(), 0u);  // none kept away from home
  home.take_home(batch);
  EXPECT_EQ(home.free_count(), SignalPacketPool::batch_size);
  for (uint32_t i = 0; i < SignalPacketPool::batch_size; ++i) (void)home.release(home.acquire());
  EXPECT_EQ(home.allocated(), SignalPacketPool::batch_size);
}

TEST(SignalPacketPool, FlushSendsWhatIsNotYetFull) {
  SignalPacketPool home(1, 3), away(0, 3);
  EXPECT_EQ(away.release(home.acquire()), nullptr);
  EXPECT_EQ(away.release(home.acquire()), nullptr);
  int sends = 0;
  away.flush([&](uint32_t to, SignalPacket* chain) {
    sends++;
    EXPECT_EQ(to, 1u);
    home.take_home(chain);
  });
  EXPECT_EQ(sends, 1);
  EXPECT_EQ(home.free_count(), 2u);
  away.flush([&](uint32_t, SignalPacket*) { sends++; });
  EXPECT_EQ(sends, 1);  // nothing left
}

TEST(SignalPacketPool, SaysWhileABatchIsOwedHome) {
  // The caller arms its return timer only while pending_batches() > 0.
  SignalPacketPool home1(1, 3), home2(2, 3), away(0, 3);
  EXPECT_EQ(away.pending_batches(), 0u);
  (void)away.release(away.acquire());  // its own: no batch
  EXPECT_EQ(away.pending_batches(), 0u);
  (void)away.release(home1.acquire());
  (void)away.release(home1.acquire());
  EXPECT_EQ(away.pending_batches(), 1u);
  (void)away.release(home2.acquire());
  EXPECT_EQ(away.pending_batches(), 2u);
  EXPECT_EQ(away.batched(), 3u);
  away.flush([&](uint32_t to, SignalPacket* chain) { (to == 1 ? home1 : home2).take_home(chain); });
  EXPECT_EQ(away.pending_batches(), 0u);
  EXPECT_EQ(home1.returned(), 2u);
  EXPECT_EQ(home2.returned(), 1u);
  // A batch that fills goes at once and owes nothing more.
  SignalPacket* full = nullptr;
  for (uint32_t i = 0; i < SignalPacketPool::batch_size; ++i) {
    full = away.release(home1.acquire());
    EXPECT_EQ(away.pending_batches(), full == nullptr ? 1u : 0u) << i;
  }
  ASSERT_NE(full, nullptr);
  home1.take_home(full);
  EXPECT_EQ(home1.returned(), 2u + SignalPacketPool::batch_size);
}

TEST(SignalPacketPool, DropsOversizedAndSurplusPacketsAtHome) {
  SignalPacketPool pool(0, 1);
  auto big = pool.acquire();
  big->text.reserve(SignalPacketPool::max_kept_text + 1);
  EXPECT_EQ(pool.release(std::move(big)), nullptr);
  EXPECT_EQ(pool.free_count(), 0u);
  std::vector<std::unique_ptr<SignalPacket>> many;
  for (size_t i = 0; i < SignalPacketPool::max_free + 3; ++i) many.push_back(pool.acquire());
  for (auto& p : many) EXPECT_EQ(pool.release(std::move(p)), nullptr);
  EXPECT_EQ(pool.free_count(), SignalPacketPool::max_free);
}

TEST(SignalPacketPool, TextGrowsToAPowerOfTwo) {
  SignalPacketPool pool(0, 1);
  auto packet = pool.acquire();
  EXPECT_GE(packet->text.capacity(), SignalPacketPool::initial_text_capacity);
  SignalPacketPool::reserve_text(*packet, 3000);
  EXPECT_GE(packet->text.capacity(), 4096u);
  const size_t capacity = packet->text.capacity();
  SignalPacketPool::reserve_text(*packet, 100);
  EXPECT_EQ(packet->text.capacity(), capacity);
}

}  // namespace
}  // namespace mf::edge
