#pragma once
// Per-slot state indexed by socket slot, allocated in chunks on first use so
// a shard sized for 100,000 sockets touches memory only for the slots it has
// used (RSS follows the high-water mark of connections, not the capacity).
#include <cstdint>
#include <memory>
#include <vector>

namespace mf {

template <class T, uint32_t ChunkSize = 1024>
class SlotArray {
 public:
  explicit SlotArray(uint32_t capacity = 0) : capacity_(capacity) {}
  void set_capacity(uint32_t capacity) { capacity_ = capacity; }
  uint32_t capacity() const { return capacity_; }
  // Slots [0, created()) exist.
  uint32_t created() const { return static_cast<uint32_t>(chunks_.size()) * ChunkSize; }

  // The slot, creating its chunk if needed (slot < capacity).
  T& ensure(uint32_t slot) {
    while (slot >= created()) chunks_.push_back(std::make_unique<T[]>(ChunkSize));
    return (*this)[slot];
  }
  T& operator[](uint32_t slot) { return chunks_[slot / ChunkSize][slot % ChunkSize]; }
  const T& operator[](uint32_t slot) const { return chunks_[slot / ChunkSize][slot % ChunkSize]; }

 private:
  std::vector<std::unique_ptr<T[]>> chunks_;
  uint32_t capacity_;
};

}  // namespace mf
