#pragma once
// Per-shard recycling of SignalPackets, so that relaying a signal allocates
// nothing in steady state and no shard frees memory another shard allocated
// (docs/architecture.md, "The relay path").
//
// A packet is allocated by its home shard (the sender's connection shard C)
// and finished with on the target's shard T (or back on C when it failed).
// A shard done with a packet of its own puts it on its free list; one of
// another shard's goes into a batch for that home, and a full batch (or, at
// the latest, what the return timer's flush finds) travels home in one message
// (the SignalPacketsReturned message, edge/edge_messages.h): the idea of Seastar's
// foreign_ptr, with the return batched. Strings keep their capacity on the
// free list, so the next signal of the same size assigns without allocating.
//
// Pure bookkeeping: the caller sends the batches (EdgeShard).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "edge/edge_messages.h"

namespace mf::edge {

class SignalPacketPool {
 public:
  // A batch travels home when it holds this many packets.
  static constexpr uint32_t batch_size = 32;
  // Beyond this many free packets, or a text capacity above max_kept_text
  // bytes, the home shard deletes a packet instead of keeping it.
  static constexpr size_t max_free = 1024;
  static constexpr size_t max_kept_text = 16384;
  // A new packet's text capacity; text() grows it to a power of two.
  static constexpr size_t initial_text_capacity = 1024;

  SignalPacketPool(uint32_t shard_id, uint32_t shard_count);
  ~SignalPacketPool();
  SignalPacketPool(const SignalPacketPool&) = delete;
  SignalPacketPool& operator=(const SignalPacketPool&) = delete;

  // A packet whose home is this shard: from the free list, or new.
  std::unique_ptr<SignalPacket> acquire();

  // This shard is done with `packet`. Returns a full batch (a chain through
  // SignalPacket::next, all of one home shard, its head's home_shard) that
  // the caller sends home, or nullptr.
  SignalPacket* release(std::unique_ptr<SignalPacket> packet);

  // Every batch not yet full: send(home_shard, chain) for each. Each is
  // an obligation: the caller must not drop it.
  template <class Send>
  void flush(Send&& send) {
    for (uint32_t home = 0; home < batches_.size(); ++home) {
      Batch& batch = batches_[home];
      if (batch.head == nullptr) continue;
      SignalPacket* chain = batch.head;
      batch = Batch{};
      send(home, chain);
    }
    pending_batches_ = 0;
  }
  // Batches begun and not yet sent: while there is one, the caller owes
  // a flush (EdgeShard arms its return timer only then).
  uint32_t pending_batches() const { return pending_batches_; }

  // Makes `text` hold at least `size` bytes, growing to a power of two so
  // that packets recycled between signals of different sizes settle.
  static void reserve_text(SignalPacket& packet, size_t size);

  // A batch of this shard's packets, back from another shard.
  void take_home(SignalPacket* chain);

  // Deletes every packet of a chain (messages undelivered at shutdown).
  static void delete_chain(SignalPacket* chain);

  size_t free_count() const { return free_count_; }
  uint64_t allocated() const { return allocated_; }  // packets made by new, ever
  uint64_t batched() const { return batched_; }      // other shards' packets put in a batch, ever
  uint64_t returned() const { return returned_; }    // this shard's packets taken home, ever

 private:
  struct Batch {
    SignalPacket* head = nullptr;
    uint32_t count = 0;
  };
  void keep(SignalPacket* packet);  // home only

  uint32_t shard_id_;
  SignalPacket* free_ = nullptr;
  size_t free_count_ = 0;
  uint64_t allocated_ = 0;
  uint64_t batched_ = 0;
  uint64_t returned_ = 0;
  uint32_t pending_batches_ = 0;  // batches with at least one packet
  std::vector<Batch> batches_;  // [home shard]
};

}  // namespace mf::edge
