#include "common/base/heap_allocation_counter.h"

#include <atomic>

namespace mf {
namespace {

// One slot per thread (the first 63 threads to allocate), written only by
// its thread; later threads share the last slot with an atomic add.
constexpr int slot_count = 64;
struct alignas(64) Slot {
  std::atomic<uint64_t> n{0};
};
Slot slots[slot_count];
std::atomic<int> next_slot{0};
std::atomic<bool> counted{false};
// initial-exec: reading it must not allocate (it is read inside malloc).
__attribute__((tls_model("initial-exec"))) thread_local int my_slot = -1;

}  // namespace

bool heap_allocations_counted() { return counted.load(std::memory_order_relaxed); }

uint64_t heap_allocations() {
  uint64_t sum = 0;
  for (const Slot& slot : slots) sum += slot.n.load(std::memory_order_relaxed);
  return sum;
}

namespace heap_allocation_counter_detail {

void mark_counted() { counted.store(true, std::memory_order_relaxed); }

void count_one() {
  int slot = my_slot;
  if (slot < 0) {
    slot = next_slot.fetch_add(1, std::memory_order_relaxed);
    if (slot >= slot_count - 1) slot = slot_count - 1;
    my_slot = slot;
  }
  std::atomic<uint64_t>& n = slots[slot].n;
  if (slot == slot_count - 1) {
    n.fetch_add(1, std::memory_order_relaxed);
  } else {
    n.store(n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
}

}  // namespace heap_allocation_counter_detail
}  // namespace mf
