#pragma once
// Shards as a type: ShardGroup starts one thread per shard, each pinned to a
// core and owning one Reactor and the ShardServices the factory builds on it
// (like Seastar's sharded<T>: one instance per core, nothing shared). Shards
// reach each other only through bounded single-producer/single-consumer
// mailboxes (one per ordered pair of shards), woken through the target's ring
// with IORING_OP_MSG_RING and drained in batches: no locks on the data path.
// A message that must arrive (it undoes or answers something) is never
// dropped: when its mailbox is full it waits in the sender's overflow list
// for that target, retried at the top of every loop turn, in order
// (docs/architecture.md, "Mailboxes").
// Shard 0 also owns the signalfd: SIGTERM/SIGINT ask every shard to stop,
// SIGHUP to reload.
#include <atomic>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/runtime/reactor.h"
#include "common/runtime/spsc_queue.h"
#include "common/runtime/wake_flag.h"

namespace mf {

// A cross-shard message: small, copied by value through the mailbox. What
// `pointer` owns, if anything, is defined by `kind` (the receiver frees it).
// Services do not build these by hand: their message types, listed once in a
// ShardMessageList (common/runtime/shard_messages.h), decide kind, payload, dispatch
// and disposal.
struct ShardMessage {
  uint16_t kind = 0;
  uint16_t from_shard = 0;
  uint32_t arg32 = 0;
  uint64_t arg64_a = 0;
  uint64_t arg64_b = 0;
  void* pointer = nullptr;
};

// docs/architecture.md ("Mailboxes") states the mailboxes' memory from this.
static_assert(sizeof(ShardMessage) == 32);

// Message kinds below 16 belong to the runtime; services use the rest.
namespace shard_message {
inline constexpr uint16_t stop = 1;
inline constexpr uint16_t reload = 2;
inline constexpr uint16_t watchdog_probe = 3;  // arg64_a: round
inline constexpr uint16_t watchdog_ack = 4;    // arg64_a: round
inline constexpr uint16_t first_service_kind = 16;
}  // namespace shard_message

class ShardGroup;

// Per-shard context handed to services.
class Shard {
 public:
  uint32_t id() const { return id_; }
  uint32_t count() const;
  Reactor& reactor() { return reactor_; }
  // Sends a message to another shard (or to this one). False when the
  // target's mailbox is full, or when obligations to it are still waiting
  // (nothing overtakes them): the caller counts a drop or answers with an
  // error; nothing blocks. For requests the sender can refuse or retry.
  bool post(uint32_t to_shard, const ShardMessage& message);
  // Sends a message that must arrive: into the mailbox if it has room and
  // nothing waits before it, else into this shard's overflow list for that
  // target (allocates only then), retried every loop turn in FIFO order.
  // Per target, obligations and accepted posts keep their order.
  void post_obligation(uint32_t to_shard, const ShardMessage& message);
  uint64_t mailbox_drops() const { return mailbox_drops_; }
  // Obligations that found their mailbox full and waited (counter), and how
  // many wait right now.
  uint64_t obligations_deferred() const { return obligations_deferred_; }
  uint64_t obligations_waiting() const { return obligations_waiting_; }

 private:
  friend class ShardGroup;
  Shard(ShardGroup& group, uint32_t id) : group_(group), id_(id), reactor_(id) {}
  // Posts what waits, in order, until a mailbox refuses. True when nothing
  // is left waiting.
  bool flush_obligations();
  ShardGroup& group_;
  uint32_t id_;
  Reactor reactor_;
  uint64_t mailbox_drops_ = 0;
  uint64_t obligations_deferred_ = 0;
  uint64_t obligations_waiting_ = 0;
  std::vector<std::deque<ShardMessage>> overflow_;  // by target shard
};

// One per shard per service kind, created on its shard's thread.
class ShardService {
 public:
  virtual ~ShardService() = default;
  virtual void on_message(const ShardMessage& message) { (void)message; }
  // SIGTERM/SIGINT: drain and close (the service stops accepting when it
  // sees fit: Reactor::stop_accepting). Called once.
  virtual void on_stop_requested() = 0;
  // The shard's loop ends when every service says it has stopped (one with
  // work batched for the end of the turn, Reactor::add_end_of_turn, says so
  // only once that work has gone).
  virtual bool stopped() const = 0;
  // SIGHUP.
  virtual void on_reload() {}
  // What this shard holds right now (connections, tunnels): summed over the
  // shards in each watchdog round for systemd's STATUS= line.
  virtual uint64_t live_count() const { return 0; }
};

struct ShardGroupOptions {
  uint32_t shard_count = 1;
  bool pin_threads = true;
  // Messages one shard's mailboxes hold in all, split evenly among its n
  // senders (each pair gets the power of two at or below budget / n, at
  // least min_mailbox_capacity): memory per shard stays the same whatever
  // the shard count (docs/architecture.md, "Mailboxes").
  uint32_t mailbox_messages_per_shard = 131072;
  static constexpr uint32_t min_mailbox_capacity = 1024;
  // Tests: a fixed capacity per ordered pair instead (0: from the budget).
  uint32_t mailbox_capacity = 0;
  // The capacity of each ordered pair's mailbox with `shards` shards.
  uint32_t pair_capacity(uint32_t shards) const;
  ReactorOptions reactor;
  // Frees the payload of a message still queued when every shard has
  // stopped (what `pointer` owns depends on the kind: the services know).
  std::function<void(const ShardMessage&)> dispose_undelivered;
  // Liveness: every watchdog_interval_ms shard 0 probes every shard by
  // message; when all have answered a round, on_all_shards_turning runs (on
  // shard 0) with the sum of every service's live_count(). A stuck shard
  // stops these calls (systemd's WATCHDOG=1).
  uint32_t watchdog_interval_ms = 0;
  std::function<void(uint64_t live_total)> on_all_shards_turning;
  // On shard 0 when SIGTERM/SIGINT or SIGHUP arrives (STOPPING=1, RELOADING=1).
  std::function<void()> on_stop_signal;
  std::function<void()> on_reload_signal;
};

using ShardServiceFactory =
    std::function<std::expected<std::unique_ptr<ShardService>, std::string>(Shard&)>;

class ShardGroup {
 public:
  ShardGroup() = default;
  ShardGroup(const ShardGroup&) = delete;
  ShardGroup& operator=(const ShardGroup&) = delete;
  ~ShardGroup();

  // Blocks SIGTERM/SIGINT/SIGHUP/SIGPIPE in the calling thread; call before
  // any other thread exists so every thread inherits the mask.
  static void block_process_signals();

  // Starts every shard, waits until all are serving (or one failed: then all
  // stop and its error line is returned), then runs until all have stopped.
  // `on_ready` runs on the calling thread once every shard serves.
  std::expected<void, std::string> run(const ShardGroupOptions& options,
                                       const ShardServiceFactory& factory,
                                       const std::function<void()>& on_ready = {});

  // Asks every shard to stop, from any thread (used by tests and embedders;
  // signals reach shard 0 through its signalfd instead).
  void request_stop();

  uint32_t shard_count() const { return static_cast<uint32_t>(shards_.size()); }

 private:
  friend class Shard;
  struct Mailboxes;
  void shard_main(uint32_t id, const ShardServiceFactory& factory);
  bool post(uint32_t from, uint32_t to, const ShardMessage& message);
  // Drains up to a batch from each mailbox. True when a mailbox still holds
  // messages: the loop then turns again without waiting.
  bool drain_mailboxes(uint32_t id);
  void deliver(uint32_t id, const ShardMessage& message);
  void arm_signal_read();
  void on_signal(const io_uring_cqe& cqe);

  ShardGroupOptions options_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::vector<std::unique_ptr<ShardService>>> services_;
  // mailbox_[from * n + to]
  std::vector<std::unique_ptr<SpscQueue<ShardMessage>>> mailboxes_;
  std::unique_ptr<WakeFlag[]> wake_flags_;
  std::unique_ptr<std::atomic<bool>[]> stop_requested_;
  std::vector<int> ring_fds_;
  std::atomic<uint32_t> started_{0};
  std::atomic<uint32_t> failed_{0};
  std::atomic<bool> go_{false};
  std::atomic<bool> abort_start_{false};
  std::atomic<bool> external_stop_{false};
  std::string first_error_;
  std::atomic<bool> error_claimed_{false};
  int signal_fd_ = -1;
  alignas(8) uint8_t signal_buffer_[128];
  uint32_t stop_signals_seen_ = 0;
  uint64_t watchdog_round_ = 0;   // shard 0 only
  uint32_t watchdog_acks_ = 0;    // shard 0 only
  uint64_t watchdog_live_total_ = 0;  // shard 0 only: live counts of this round
};

}  // namespace mf
