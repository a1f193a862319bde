#pragma once
// Bounded single-producer single-consumer ring: the message channel from one
// shard thread to another. Exactly one thread pushes and one thread drains for
// the queue's lifetime. Never blocks: a full queue refuses the push and the
// producer counts a drop or retries later. Memory is allocated at construction
// only. Pair it with WakeFlag (common/runtime/wake_flag.h) to wake a sleeping consumer.
//
// Layout, one cache line per owner so the two sides do not false-share:
//   line 0 (producer writes): tail_ | head_cache_
//   line 1 (consumer writes): head_ | tail_cache_
//   line 2 (read-only):       mask_ | items_
// head_ and tail_ are free-running counters (64-bit, they do not wrap in
// practice); an item's slot is counter & mask_. The ring holds tail_ - head_
// items, up to capacity.
//
// Memory ordering:
//   - producer: constructs the item, then tail_.store(release) publishes it;
//   - consumer: tail_.load(acquire) makes items below it visible; after
//     reading and destroying them, head_.store(release) hands the slots back;
//   - producer: head_.load(acquire) before reusing a slot, so the consumer's
//     reads and destruction of the old item happen before the overwrite.
// Each side keeps a plain copy of the other's counter and reloads it only when
// that copy says full (producer) or says fewer items than wanted (consumer), so
// the other side's cache line moves once per batch, not once per item.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace mf {

template <class T>
class SpscQueue {
  static_assert(std::is_nothrow_destructible_v<T>);

 public:
  static constexpr size_t cache_line = 64;

  // capacity_power_of_two >= 1; anything else is a programming error and aborts.
  explicit SpscQueue(size_t capacity_power_of_two) : mask_(capacity_power_of_two - 1) {
    if (!std::has_single_bit(capacity_power_of_two)) std::abort();
    items_ = static_cast<T*>(::operator new(capacity_power_of_two * sizeof(T), alignment));
  }
  SpscQueue(const SpscQueue&) = delete;
  SpscQueue& operator=(const SpscQueue&) = delete;

  // Destroys the items still queued. Neither side may be running.
  ~SpscQueue() {
    const size_t tail = tail_.load(std::memory_order_acquire);
    for (size_t i = head_.load(std::memory_order_relaxed); i != tail; ++i) {
      std::destroy_at(&items_[i & mask_]);
    }
    ::operator delete(items_, alignment);
  }

  // Producer side. False when full; the value is then left untouched.
  bool try_push(const T& item) { return try_emplace(item); }
  bool try_push(T&& item) { return try_emplace(std::move(item)); }

  template <class... Args>
  bool try_emplace(Args&&... args) {
    const size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_cache_ > mask_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (tail - head_cache_ > mask_) return false;
    }
    ::new (static_cast<void*>(&items_[tail & mask_])) T(std::forward<Args>(args)...);
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Producer side: pushes up to `count` items, make(i) returning the i-th
  // (constructed in place), and publishes them with one release store.
  // Returns how many fit; make is called only for those.
  template <class F>
  size_t push_batch(size_t count, F&& make) {
    const size_t tail = tail_.load(std::memory_order_relaxed);
    if (mask_ + 1 - (tail - head_cache_) < count) {
      head_cache_ = head_.load(std::memory_order_acquire);
    }
    const size_t n = std::min(count, mask_ + 1 - (tail - head_cache_));
    for (size_t i = 0; i < n; ++i) {
      ::new (static_cast<void*>(&items_[(tail + i) & mask_])) T(make(i));
    }
    if (n != 0) tail_.store(tail + n, std::memory_order_release);
    return n;
  }

  // Consumer side: pops up to max_items in FIFO order, calling on_item(T&)
  // for each (it may move from the item; the queue destroys it afterwards).
  // One acquire load of the tail at most, one release store of the head per
  // call. The callback must not drain this queue. Returns how many it popped.
  template <class F>
  size_t drain(F&& on_item, size_t max_items) {
    const size_t head = head_.load(std::memory_order_relaxed);
    if (tail_cache_ - head < max_items) tail_cache_ = tail_.load(std::memory_order_acquire);
    const size_t n = std::min(max_items, tail_cache_ - head);
    for (size_t i = 0; i < n; ++i) {
      T& item = items_[(head + i) & mask_];
      on_item(item);
      std::destroy_at(&item);
    }
    if (n != 0) head_.store(head + n, std::memory_order_release);
    return n;
  }

  // Either side; a snapshot that may be stale by the time it is used.
  bool empty_approx() const {
    return head_.load(std::memory_order_relaxed) == tail_.load(std::memory_order_relaxed);
  }
  size_t size_approx() const {
    // Head first: tail only grows, so tail - head cannot go negative; it can
    // exceed the capacity if both moved in between, hence the clamp.
    const size_t head = head_.load(std::memory_order_acquire);
    const size_t tail = tail_.load(std::memory_order_acquire);
    return std::min(tail - head, mask_ + 1);
  }
  size_t capacity() const { return mask_ + 1; }

 private:
  static constexpr std::align_val_t alignment{std::max(cache_line, alignof(T))};

  alignas(cache_line) std::atomic<size_t> tail_{0};
  size_t head_cache_ = 0;  // producer's copy of head_
  alignas(cache_line) std::atomic<size_t> head_{0};
  size_t tail_cache_ = 0;  // consumer's copy of tail_
  alignas(cache_line) const size_t mask_;
  T* items_ = nullptr;
};

}  // namespace mf
