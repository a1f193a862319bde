#pragma once
// Wake-up coalescing for a consumer shard fed by SpscQueues: producers ask for
// a wake after pushing, and only the first request since the consumer last
// cleared the flag is told to send the wake message (e.g. an io_uring
// msg_ring), so a burst of pushes costs one wake, not one per push.
//
// Protocol:
//   producer: push into the queue, then `if (flag.request_wake()) send_wake();`
//   consumer: `flag.clear();` then drain every queue the flag covers; sleep
//             only after that drain, and clear again each time it wakes.
// Guarantee: no lost wake-up. If a request returns false, the flag was set by a
// request that returned true and whose consumer clear() has not yet happened,
// so the drain after that clear() sees the item pushed before this request.
// request_wake() returns true at most once per clear(), so each loop of the
// consumer gets at most one wake message; it can still find a wake from its
// previous loop pending (harmless: it drains, finds nothing, sleeps again).
//
// Any number of producers may share one flag (one flag per consumer shard).
//
// Ordering: both operations are read-modify-writes of the flag with acq_rel.
// If a request finds the flag already set, the consumer's next clear() reads
// the value that request wrote (an RMW reads the latest value), so the
// request's release synchronizes with the clear's acquire: the push that came
// before the request happens before the drain that comes after the clear. A
// plain load fast path or acquire/release stores would lose that edge (each
// side's store could be reordered after its load of the other's variable).
#include <atomic>

namespace mf {

class WakeFlag {
 public:
  // Producer, after pushing. True: the consumer may be asleep and the caller
  // must wake it. With one producer the flag's line stays in its core's cache
  // while a wake is pending, so repeated requests are a local locked op.
  bool request_wake() noexcept { return !requested_.exchange(true, std::memory_order_acq_rel); }

  // Consumer, before draining.
  void clear() noexcept { requested_.exchange(false, std::memory_order_acq_rel); }

  bool requested_approx() const noexcept { return requested_.load(std::memory_order_relaxed); }

 private:
  alignas(64) std::atomic<bool> requested_{false};
};

}  // namespace mf
