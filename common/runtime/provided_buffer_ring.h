#pragma once
// The shard's receive buffers: one io_uring provided-buffer ring shared by all
// of the shard's multishot recvs. The kernel picks a buffer per completion;
// the reactor hands the bytes to their connection and returns the buffer at
// once (every consumer copies what it must keep), so a few hundred buffers
// serve any number of connections.
// liburing 2.3 has no io_uring_setup_buf_ring: the ring memory is mapped and
// registered here.
#include <liburing.h>

#include <cstdint>
#include <expected>
#include <span>
#include <string>

namespace mf {

class ProvidedBufferRing {
 public:
  // Every buffer is followed by `tail_padding` readable bytes that the kernel
  // never writes (simdjson may read up to 64 bytes past a document's end).
  static constexpr uint32_t tail_padding = 64;

  ProvidedBufferRing() = default;
  ProvidedBufferRing(const ProvidedBufferRing&) = delete;
  ProvidedBufferRing& operator=(const ProvidedBufferRing&) = delete;
  ~ProvidedBufferRing();

  // count: power of two. group_id: the buffer group SQEs select.
  std::expected<void, std::string> init(io_uring* ring, uint16_t group_id, uint32_t count,
                                        uint32_t buffer_bytes);

  uint16_t group_id() const { return group_id_; }
  uint32_t buffer_bytes() const { return buffer_bytes_; }
  // The bytes a completion delivered into buffer `id`.
  std::span<uint8_t> buffer(uint16_t id, uint32_t length) const {
    return {memory_ + static_cast<size_t>(id) * stride_, length};
  }
  // Hands buffer `id` back to the kernel.
  void recycle(uint16_t id);

 private:
  io_uring* ring_ = nullptr;
  io_uring_buf_ring* entries_ = nullptr;
  size_t entries_bytes_ = 0;
  uint8_t* memory_ = nullptr;
  size_t memory_bytes_ = 0;
  uint32_t stride_ = 0;
  uint32_t buffer_bytes_ = 0;
  uint32_t count_ = 0;
  uint16_t group_id_ = 0;
  bool registered_ = false;
};

}  // namespace mf
