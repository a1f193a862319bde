#pragma once
// Per-shard pool of fixed-size byte blocks and the byte queue built from them.
// Send queues, partial HTTP heads and partial WebSocket messages hold blocks
// only while they have bytes in them, so an idle connection costs no buffer
// memory and a burst costs what it carries. The pool has a hard cap (bytes per
// shard): when it is reached appends fail and the owner closes the connection
// that asked, instead of the process growing without bound.
#include <cstddef>
#include <cstdint>
#include <span>

struct iovec;

namespace mf {

// Memory layout of one block (block_bytes in all, 4 KiB = one page):
//   [ next: 8 | begin: 4 | end: 4 | data: block_bytes - 16 ]
// Readable bytes are data[begin, end); appends go to data[end, capacity).
struct Block {
  static constexpr size_t block_bytes = 4096;
  static constexpr size_t capacity = block_bytes - 16;
  Block* next;
  uint32_t begin;
  uint32_t end;
  uint8_t data[capacity];

  size_t readable() const { return end - begin; }
  size_t writable() const { return capacity - end; }
};
static_assert(sizeof(Block) == Block::block_bytes);

class BlockPool {
 public:
  // max_blocks: hard cap of blocks alive at once; keep_free: free blocks kept
  // for reuse beyond which returned blocks go back to the allocator, so RSS
  // falls again after a burst.
  BlockPool(size_t max_blocks, size_t keep_free);
  void set_limits(size_t max_blocks, size_t keep_free) {
    max_blocks_ = max_blocks;
    keep_free_ = keep_free;
  }
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;
  ~BlockPool();

  Block* take();  // nullptr when the cap is reached
  void give(Block* block);

  size_t blocks_in_use() const { return in_use_; }
  size_t blocks_free() const { return free_count_; }
  size_t max_blocks() const { return max_blocks_; }
  uint64_t exhausted_count() const { return exhausted_; }

 private:
  Block* free_ = nullptr;
  size_t free_count_ = 0;
  size_t in_use_ = 0;
  size_t max_blocks_;
  size_t keep_free_;
  uint64_t exhausted_ = 0;
};

// FIFO of bytes in a chain of pool blocks. 24 bytes; holds no memory when
// empty. Not thread-safe: it belongs to one shard like its pool.
class ByteQueue {
 public:
  ByteQueue() = default;
  ByteQueue(const ByteQueue&) = delete;
  ByteQueue& operator=(const ByteQueue&) = delete;

  // Appends all bytes or none: false when the pool is exhausted.
  bool append(BlockPool& pool, std::span<const uint8_t> bytes);
  // Reserves `n` contiguous writable bytes (n <= Block::capacity) at the tail,
  // for writers that format in place; commit() then publishes what was used.
  uint8_t* reserve(BlockPool& pool, size_t n);
  void commit(size_t n);

  // The first contiguous run of readable bytes (empty when the queue is).
  std::span<uint8_t> front() const;
  // The readable runs of the first blocks, in order, one iovec per block,
  // at most vectors.size() of them: what one vectored send can take.
  // Returns how many it filled (0 when the queue is empty).
  size_t gather(std::span<iovec> vectors) const;
  // Drops n bytes from the front (n <= size()); emptied blocks return to the pool.
  void consume(BlockPool& pool, size_t n);
  // Copies everything into dst (dst.size() >= size()); the queue is unchanged.
  void copy_to(std::span<uint8_t> dst) const;
  void clear(BlockPool& pool);

  size_t size() const { return bytes_; }
  bool empty() const { return bytes_ == 0; }
  // True when all bytes sit in one block (front() is the whole queue).
  bool contiguous() const { return head_ == tail_; }

 private:
  Block* head_ = nullptr;
  Block* tail_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace mf
