#include "edge/signal_packet_pool.h"

#include <bit>

#include "edge/sdk_message.h"

namespace mf::edge {

SignalPacketPool::SignalPacketPool(uint32_t shard_id, uint32_t shard_count)
    : shard_id_(shard_id), batches_(shard_count) {}

SignalPacketPool::~SignalPacketPool() {
  delete_chain(free_);
  for (Batch& batch : batches_) delete_chain(batch.head);
}

std::unique_ptr<SignalPacket> SignalPacketPool::acquire() {
  if (free_ == nullptr) {
    auto packet = std::make_unique<SignalPacket>();
    packet->home_shard = shard_id_;
    // Room for the longest identifiers and a typical signal from the start:
    // a recycled packet then serves any pair without growing.
    packet->to.reserve(max_identifier_bytes);
    packet->sender_stream.reserve(max_identifier_bytes);
    packet->from.reserve(max_identifier_bytes);
    packet->text.reserve(initial_text_capacity);
    allocated_++;
    return packet;
  }
  SignalPacket* packet = free_;
  free_ = packet->next;
  packet->next = nullptr;
  free_count_--;
  // What its previous signal left that the strings' assign() does not
  // overwrite.
  packet->to_hash = 0;
  packet->to_handle = DirectoryHandle{};
  packet->sender_handle = DirectoryHandle{};
  packet->sender_stream_key = 0;
  packet->sender = PeerLocation{};
  packet->target = PeerLocation{};
  packet->relookup = false;
  return std::unique_ptr<SignalPacket>(packet);
}

SignalPacket* SignalPacketPool::release(std::unique_ptr<SignalPacket> owned) {
  SignalPacket* packet = owned.release();
  if (packet->home_shard == shard_id_ || packet->home_shard >= batches_.size()) {
    keep(packet);
    return nullptr;
  }
  Batch& batch = batches_[packet->home_shard];
  if (batch.head == nullptr) pending_batches_++;
  packet->next = batch.head;
  batch.head = packet;
  batched_++;
  if (++batch.count < batch_size) return nullptr;
  batch = Batch{};
  pending_batches_--;
  return packet;
}

void SignalPacketPool::reserve_text(SignalPacket& packet, size_t size) {
  if (packet.text.capacity() < size) packet.text.reserve(std::bit_ceil(size));
}

void SignalPacketPool::take_home(SignalPacket* chain) {
  while (chain != nullptr) {
    SignalPacket* next = chain->next;
    keep(chain);
    returned_++;
    chain = next;
  }
}

void SignalPacketPool::keep(SignalPacket* packet) {
  if (free_count_ >= max_free || packet->text.capacity() > max_kept_text) {
    delete packet;
    return;
  }
  packet->next = free_;
  free_ = packet;
  free_count_++;
}

void SignalPacketPool::delete_chain(SignalPacket* chain) {
  while (chain != nullptr) {
    SignalPacket* next = chain->next;
    delete chain;
    chain = next;
  }
}

}  // namespace mf::edge
