#include "common/runtime/provided_buffer_ring.h"

#include <fmt/core.h>
#include <sys/mman.h>

#include <cstring>

namespace mf {

ProvidedBufferRing::~ProvidedBufferRing() {
  if (registered_) io_uring_unregister_buf_ring(ring_, group_id_);
  if (entries_ != nullptr) munmap(entries_, entries_bytes_);
  if (memory_ != nullptr) munmap(memory_, memory_bytes_);
}

std::expected<void, std::string> ProvidedBufferRing::init(io_uring* ring, uint16_t group_id,
                                                          uint32_t count, uint32_t buffer_bytes) {
  if (count == 0 || (count & (count - 1)) != 0 || count > 32768)
    return std::unexpected(fmt::format("recv buffers: count {} must be a power of two <= 32768", count));
  ring_ = ring;
  group_id_ = group_id;
  count_ = count;
  buffer_bytes_ = buffer_bytes;
  stride_ = buffer_bytes + tail_padding;
  entries_bytes_ = sizeof(io_uring_buf) * count;
  void* entries = mmap(nullptr, entries_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (entries == MAP_FAILED) return std::unexpected(std::string("recv buffers: mmap failed: ") + std::strerror(errno));
  entries_ = static_cast<io_uring_buf_ring*>(entries);
  memory_bytes_ = static_cast<size_t>(stride_) * count;
  void* memory = mmap(nullptr, memory_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (memory == MAP_FAILED) return std::unexpected(std::string("recv buffers: mmap failed: ") + std::strerror(errno));
  memory_ = static_cast<uint8_t*>(memory);

  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(entries_);
  reg.ring_entries = count;
  reg.bgid = group_id;
  int rc = io_uring_register_buf_ring(ring, &reg, 0);
  if (rc < 0)
    return std::unexpected(fmt::format(
        "io_uring: cannot register a provided-buffer ring: {} (Linux 5.19 or newer is required)",
        std::strerror(-rc)));
  registered_ = true;
  io_uring_buf_ring_init(entries_);
  int mask = io_uring_buf_ring_mask(count);
  for (uint32_t i = 0; i < count; ++i)
    io_uring_buf_ring_add(entries_, memory_ + static_cast<size_t>(i) * stride_, buffer_bytes, static_cast<uint16_t>(i), mask,
                          static_cast<int>(i));
  io_uring_buf_ring_advance(entries_, static_cast<int>(count));
  return {};
}

void ProvidedBufferRing::recycle(uint16_t id) {
  io_uring_buf_ring_add(entries_, memory_ + static_cast<size_t>(id) * stride_, buffer_bytes_, id,
                        io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(entries_, 1);
}

}  // namespace mf
