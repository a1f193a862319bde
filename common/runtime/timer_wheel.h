#pragma once
// Per-shard hashed timer wheel for connection timeouts (TLS handshake, HTTP
// head, WebSocket heartbeat and idle, close linger). Every connection of a
// shard may have a timer armed and idle deadlines move on every message, so
// arm, re-arm and cancel are O(1) and the wheel never allocates after
// construction: the node is embedded in its owner. Not thread-safe: a wheel and
// its nodes belong to one shard. Time is passed in by the caller (monotonic
// milliseconds); the wheel reads no clock.
//
// Resolution: a deadline is rounded up to the next tick boundary. A timer never
// fires early, and fires on the first advance() whose `now` reaches that
// boundary, i.e. at most one tick (tick_ms - 1 ms) after its deadline when the
// reactor advances at least once per tick.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>

namespace mf {

class TimerWheel;

namespace detail {
// Link of a circular doubly-linked list. Slot heads are bare links (16 bytes
// per slot); nodes extend them.
struct TimerLink {
  TimerLink* prev = nullptr;
  TimerLink* next = nullptr;
};
}  // namespace detail

// Intrusive timer, embedded in its owner. The owner must not be moved while the
// node is armed (the wheel points at it) and must cancel it, or let it fire,
// before destroying it: destroying an armed node aborts, since the wheel would
// keep a dangling pointer. A node belongs to at most one wheel at a time.
//
// Layout (40 bytes): [ prev: 8 | next: 8 | deadline_ms: 8 | slot_tick: 8 | tag: 8 ]
// next == nullptr means not armed. slot_tick is the tick whose slot holds the
// node, which may be earlier than the deadline's tick after a lazy re-arm.
class TimerNode : private detail::TimerLink {
 public:
  explicit TimerNode(uint64_t tag = 0) noexcept : tag(tag) {}
  TimerNode(const TimerNode&) = delete;
  TimerNode& operator=(const TimerNode&) = delete;
  ~TimerNode() {
    if (armed()) std::abort();
  }

  bool armed() const noexcept { return next != nullptr; }
  // The deadline last given to arm(), clamped as arm() describes.
  uint64_t deadline_ms() const noexcept { return deadline_ms_; }

  // Owner's value, untouched by the wheel (e.g. connection id and timer kind);
  // the expiry callback gets the node back and reads it.
  uint64_t tag;

 private:
  friend class TimerWheel;
  uint64_t deadline_ms_ = 0;
  uint64_t slot_tick_ = 0;
};

class TimerWheel {
 public:
  // Deadlines are clamped to this (2^62 ms, ~146 million years) so that tick
  // arithmetic cannot overflow.
  static constexpr uint64_t max_deadline_ms = uint64_t{1} << 62;

  // tick_ms > 0; slots a power of two. One revolution covers tick_ms * slots
  // (41 s by default); longer deadlines wait in their slot, skipped on each
  // pass until their tick comes. A bad configuration is a programming error
  // and aborts. Allocates slots * 16 + slots / 8 bytes here, nothing later.
  explicit TimerWheel(uint32_t tick_ms = 10, uint32_t slots = 4096)
      : tick_ms_(tick_ms),
        mask_(slots - 1),
        bitmap_words_(slots < 64 ? 1 : slots / 64) {
    if (tick_ms == 0 || !std::has_single_bit(slots)) std::abort();
    heads_ = std::make_unique<detail::TimerLink[]>(slots);
    for (uint32_t i = 0; i < slots; ++i) heads_[i].prev = heads_[i].next = &heads_[i];
    occupied_ = std::make_unique<uint64_t[]>(bitmap_words_);  // zeroed
  }
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Disarms every node still armed, so owners outliving the wheel may be
  // destroyed normally.
  ~TimerWheel() {
    for (uint32_t i = 0; i <= mask_; ++i) {
      detail::TimerLink* head = &heads_[i];
      for (detail::TimerLink* link = head->next; link != head;) {
        detail::TimerLink* next = link->next;
        link->prev = link->next = nullptr;
        link = next;
      }
    }
  }

  // Arms `node` to fire at deadline_ms, or moves it there if already armed.
  // A deadline at or before the last tick advance() has processed fires on the
  // next advance() that reaches a new tick; this also holds for nodes armed
  // from an expiry callback, so a callback re-arming its node for "now" cannot
  // loop inside one advance().
  //
  // Re-arming an armed node to a later deadline only stores the deadline (the
  // idle-timeout pattern: every message pushes it out); when its slot comes
  // round the node moves to the slot of its current deadline. A connection
  // re-armed on every message is relinked about once per timeout, not per message.
  void arm(TimerNode& node, uint64_t deadline_ms) noexcept {
    deadline_ms = std::min(deadline_ms, max_deadline_ms);
    if (node.armed()) {
      // Staying put is safe while the new deadline's tick is not before the
      // slot's tick: the slot's visit fires the node or moves it on.
      // slot_tick_ >= next_tick_ excludes slots a running advance() has yet to
      // visit, keeping the rule above.
      if (node.slot_tick_ >= next_tick_ &&
          deadline_ms + tick_ms_ > node.slot_tick_ * tick_ms_) {
        node.deadline_ms_ = deadline_ms;
        return;
      }
      unlink(node);
    } else {
      ++armed_count_;
    }
    node.deadline_ms_ = deadline_ms;
    file(node, std::max(tick_of(deadline_ms), next_tick_));
  }

  // Disarms `node`; false if it was not armed.
  bool cancel(TimerNode& node) noexcept {
    if (!node.armed()) return false;
    unlink(node);
    --armed_count_;
    return true;
  }

  // Fires every node whose deadline, rounded up to its tick, is <= now_ms:
  // on_expired(TimerNode&) is called with the node already disarmed. The
  // callback may arm, cancel or destroy any node, this one included, but must
  // not call advance() (aborts). Nodes fire in tick order; within one tick, and
  // after a stall longer than a revolution, the order is unspecified.
  // Returns how many fired. Cost: the ticks elapsed since the previous call,
  // capped at one revolution (a 10-minute stall visits each slot once), plus
  // the nodes in the visited slots; empty slots are skipped via a bitmap.
  template <class F>
  size_t advance(uint64_t now_ms, F&& on_expired) noexcept {
    if (in_advance_) std::abort();
    const uint64_t target = now_ms / tick_ms_;
    if (target < next_tick_ || armed_count_ == 0) {
      next_tick_ = std::max(next_tick_, target + 1);
      return 0;
    }
    // Over more than a revolution, visit each slot once, labelled with its
    // tick in (target - slots, target]. A node filed at tick s <= target is
    // met at its slot's label, which is >= s: it fires there if due, or moves
    // to its deadline's tick, met later in this pass if that is <= target.
    uint64_t tick = target - next_tick_ > mask_ ? target - mask_ : next_tick_;
    next_tick_ = target + 1;  // from here on, arm() files at target + 1 or later
    in_advance_ = true;
    size_t fired = 0;
    for (;;) {
      const uint32_t skip = distance_to_occupied(static_cast<uint32_t>(tick & mask_));
      if (skip > mask_) break;  // nothing armed
      tick += skip;
      if (tick > target) break;
      fired += expire_slot(tick, on_expired);
      ++tick;
    }
    in_advance_ = false;
    return fired;
  }

  // When the reactor should next call advance(): the start of the earliest
  // tick whose slot holds an armed node, or nullopt if none is armed. Never
  // later than the earliest real expiry; may be earlier (the slot may hold
  // only nodes of a later revolution or lazily pushed-out deadlines), in
  // which case advance() fires nothing and the caller asks again. O(slots/64).
  std::optional<uint64_t> next_deadline_hint_ms() const noexcept {
    if (armed_count_ == 0) return std::nullopt;
    const uint32_t skip = distance_to_occupied(static_cast<uint32_t>(next_tick_ & mask_));
    return (next_tick_ + skip) * tick_ms_;
  }

  size_t armed_count() const noexcept { return armed_count_; }
  uint32_t tick_ms() const noexcept { return tick_ms_; }
  uint32_t slot_count() const noexcept { return mask_ + 1; }

 private:
  uint64_t tick_of(uint64_t ms) const noexcept {
    return ms / tick_ms_ + (ms % tick_ms_ != 0);
  }

  void file(TimerNode& node, uint64_t tick) noexcept {
    const uint32_t slot = static_cast<uint32_t>(tick & mask_);
    detail::TimerLink& head = heads_[slot];
    node.slot_tick_ = tick;
    node.prev = head.prev;
    node.next = &head;
    head.prev->next = &node;
    head.prev = &node;
    occupied_[slot >> 6] |= uint64_t{1} << (slot & 63);
  }

  // Works whether the node is in its slot or on the list expire_slot() has
  // detached: either way its slot's head tells whether the slot is now empty.
  void unlink(TimerNode& node) noexcept {
    node.prev->next = node.next;
    node.next->prev = node.prev;
    node.prev = node.next = nullptr;
    const uint32_t slot = static_cast<uint32_t>(node.slot_tick_ & mask_);
    if (heads_[slot].next == &heads_[slot]) {
      occupied_[slot >> 6] &= ~(uint64_t{1} << (slot & 63));
    }
  }

  // Slots from `from` (circularly) to the first occupied one; > mask_ if none.
  uint32_t distance_to_occupied(uint32_t from) const noexcept {
    const uint32_t word = from >> 6;
    if (uint64_t bits = occupied_[word] & (~uint64_t{0} << (from & 63))) {
      return word * 64 + static_cast<uint32_t>(std::countr_zero(bits)) - from;
    }
    // The last round re-reads `word` whole, finding bits below `from`.
    for (uint32_t i = 1; i <= bitmap_words_; ++i) {
      const uint32_t w = (word + i) & (bitmap_words_ - 1);
      if (const uint64_t bits = occupied_[w]) {
        return (w * 64 + static_cast<uint32_t>(std::countr_zero(bits)) - from) & mask_;
      }
    }
    return mask_ + 1;
  }

  // Fires the due nodes of `tick`'s slot and refiles the rest. The slot is
  // first moved onto a local list so that callbacks may arm or cancel any node:
  // a node still on that list simply unlinks itself from it, and nodes armed
  // meanwhile land in the slot's (now empty) list, not on the one being walked.
  template <class F>
  size_t expire_slot(uint64_t tick, F& on_expired) noexcept {
    const uint32_t slot = static_cast<uint32_t>(tick & mask_);
    detail::TimerLink& head = heads_[slot];
    detail::TimerLink pending{head.prev, head.next};
    pending.next->prev = &pending;
    pending.prev->next = &pending;
    head.prev = head.next = &head;
    occupied_[slot >> 6] &= ~(uint64_t{1} << (slot & 63));

    const uint64_t tick_start_ms = tick * tick_ms_;
    size_t fired = 0;
    while (pending.next != &pending) {
      TimerNode& node = static_cast<TimerNode&>(*pending.next);
      unlink(node);
      if (node.deadline_ms_ <= tick_start_ms) {
        --armed_count_;
        ++fired;
        on_expired(node);
      } else {
        // A later revolution, or a lazily pushed-out deadline. Its tick is >
        // `tick`; if still <= target, advance() visits that slot later in
        // this same call.
        file(node, tick_of(node.deadline_ms_));
      }
    }
    return fired;
  }

  std::unique_ptr<detail::TimerLink[]> heads_;
  std::unique_ptr<uint64_t[]> occupied_;  // bit i set <=> slot i non-empty
  uint64_t next_tick_ = 0;                // first tick advance() has not processed
  size_t armed_count_ = 0;
  uint32_t tick_ms_;
  uint32_t mask_;
  uint32_t bitmap_words_;  // a power of two
  bool in_advance_ = false;
};

}  // namespace mf
