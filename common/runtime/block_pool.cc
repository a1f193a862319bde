#include "common/runtime/block_pool.h"

#include <sys/uio.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace mf {

BlockPool::BlockPool(size_t max_blocks, size_t keep_free)
    : max_blocks_(max_blocks), keep_free_(keep_free) {}

BlockPool::~BlockPool() {
  while (free_ != nullptr) {
    Block* next = free_->next;
    ::operator delete(free_, std::align_val_t{64});
    free_ = next;
  }
}

Block* BlockPool::take() {
  Block* block = free_;
  if (block != nullptr) {
    free_ = block->next;
    --free_count_;
  } else {
    if (in_use_ >= max_blocks_) {
      ++exhausted_;
      return nullptr;
    }
    block = static_cast<Block*>(::operator new(sizeof(Block), std::align_val_t{64}, std::nothrow));
    if (block == nullptr) {
      ++exhausted_;
      return nullptr;
    }
  }
  ++in_use_;
  block->next = nullptr;
  block->begin = 0;
  block->end = 0;
  return block;
}

void BlockPool::give(Block* block) {
  --in_use_;
  if (free_count_ >= keep_free_) {
    ::operator delete(block, std::align_val_t{64});
    return;
  }
  block->next = free_;
  free_ = block;
  ++free_count_;
}

bool ByteQueue::append(BlockPool& pool, std::span<const uint8_t> bytes) {
  size_t room = tail_ != nullptr ? tail_->writable() : 0;
  if (bytes.size() > room) {
    // Take every block needed before writing anything: all or none.
    size_t needed = (bytes.size() - room + Block::capacity - 1) / Block::capacity;
    Block* first = nullptr;
    Block* last = nullptr;
    for (size_t i = 0; i < needed; ++i) {
      Block* block = pool.take();
      if (block == nullptr) {
        while (first != nullptr) {
          Block* next = first->next;
          pool.give(first);
          first = next;
        }
        return false;
      }
      if (last != nullptr) last->next = block;
      else first = block;
      last = block;
    }
    if (tail_ != nullptr) tail_->next = first;
    else head_ = first;
    // Fill the old tail first, then the new blocks in order.
    Block* cursor = tail_ != nullptr ? tail_ : first;
    tail_ = last;
    size_t offset = 0;
    while (offset < bytes.size()) {
      size_t n = std::min(cursor->writable(), bytes.size() - offset);
      std::memcpy(cursor->data + cursor->end, bytes.data() + offset, n);
      cursor->end += static_cast<uint32_t>(n);
      offset += n;
      cursor = cursor->next;
    }
  } else if (!bytes.empty()) {
    std::memcpy(tail_->data + tail_->end, bytes.data(), bytes.size());
    tail_->end += static_cast<uint32_t>(bytes.size());
  }
  bytes_ += bytes.size();
  return true;
}

uint8_t* ByteQueue::reserve(BlockPool& pool, size_t n) {
  if (n > Block::capacity) return nullptr;
  if (tail_ == nullptr || tail_->writable() < n) {
    Block* block = pool.take();
    if (block == nullptr) return nullptr;
    if (tail_ != nullptr) tail_->next = block;
    else head_ = block;
    tail_ = block;
  }
  return tail_->data + tail_->end;
}

void ByteQueue::commit(size_t n) {
  tail_->end += static_cast<uint32_t>(n);
  bytes_ += n;
}

std::span<uint8_t> ByteQueue::front() const {
  if (head_ == nullptr) return {};
  return {head_->data + head_->begin, head_->readable()};
}

size_t ByteQueue::gather(std::span<iovec> vectors) const {
  size_t n = 0;
  for (Block* block = head_; block != nullptr && n < vectors.size(); block = block->next) {
    if (block->readable() == 0) continue;
    vectors[n].iov_base = block->data + block->begin;
    vectors[n].iov_len = block->readable();
    ++n;
  }
  return n;
}

void ByteQueue::consume(BlockPool& pool, size_t n) {
  bytes_ -= n;
  while (n > 0) {
    size_t here = head_->readable();
    if (n < here) {
      head_->begin += static_cast<uint32_t>(n);
      return;
    }
    n -= here;
    Block* next = head_->next;
    pool.give(head_);
    head_ = next;
    if (head_ == nullptr) tail_ = nullptr;
  }
  // A fully consumed block that is also the tail stays for appends only if
  // it still has bytes; an empty queue holds no blocks.
  if (head_ != nullptr && head_->readable() == 0 && head_ == tail_) {
    pool.give(head_);
    head_ = tail_ = nullptr;
  }
}

void ByteQueue::copy_to(std::span<uint8_t> dst) const {
  size_t offset = 0;
  for (Block* block = head_; block != nullptr; block = block->next) {
    std::memcpy(dst.data() + offset, block->data + block->begin, block->readable());
    offset += block->readable();
  }
}

void ByteQueue::clear(BlockPool& pool) {
  while (head_ != nullptr) {
    Block* next = head_->next;
    pool.give(head_);
    head_ = next;
  }
  tail_ = nullptr;
  bytes_ = 0;
}

}  // namespace mf
