#pragma once
// The per-shard event loop: one io_uring, its receive buffers, its block pool,
// its timers and its sockets. Everything here is owned by one shard thread and
// touched only from it (checked in debug builds); other shards talk to it by
// message (shard_group.h).
//
// Life of a socket: accepted directly into the ring's sparse file table
// (one-shot accepts, no regular descriptor ever exists) -> multishot recv
// with provided buffers -> the service reacts and queues bytes -> at most one
// send in flight per socket, gathering what is queued -> close: flush,
// shutdown(SHUT_WR), linger reading until EOF or a deadline (so the peer gets
// our last bytes and no RST), then cancel-all + close_direct, and the slot is
// released only after its last completion.
//
// A socket's send carries everything queued, up to max_send_vectors blocks,
// in one submission: a SEND when it all sits in one block, else a SENDMSG
// whose iovecs point into the queue's blocks (docs/architecture.md, "The
// relay path"). The kernel copies the msghdr and its iovecs when it takes the
// SQE (IORING_FEAT_SUBMIT_STABLE, checked at start-up), so they live in a
// per-shard area that is reused once the submission queue has been drained;
// the blocks themselves stay queued until the completion consumes them. A
// short write leaves the rest queued and the next send starts there.
#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/runtime/block_pool.h"
#include "common/runtime/completion_tag.h"
#include "common/runtime/io_uring_ring.h"
#include "common/runtime/provided_buffer_ring.h"
#include "common/runtime/shard_check.h"
#include "common/base/slot_array.h"
#include "common/runtime/timer_wheel.h"

namespace mf {

// Names one socket of one shard. The generation makes a stale handle (kept by
// a message that raced with a close) miss instead of reaching a reused slot.
struct SocketHandle {
  uint32_t slot = UINT32_MAX;
  uint32_t generation = 0;
  bool valid() const { return slot != UINT32_MAX; }
  friend bool operator==(SocketHandle, SocketHandle) = default;
};

// What a protocol layer (WebSocket server, tunnel, client) implements to own
// sockets. Callbacks run on the shard thread, inside the completion loop.
class SocketService {
 public:
  // `peer` is the client's address when the listener asked for it
  // (add_listener(..., want_peer_address)), else null.
  virtual void on_accepted(SocketHandle socket, const sockaddr_storage* peer) = 0;
  // Received bytes. The span is writable (decoders unmask in place) and is
  // followed by ProvidedBufferRing::tail_padding readable bytes. It is valid
  // only during the call.
  virtual void on_received(SocketHandle socket, std::span<uint8_t> bytes) = 0;
  // The peer closed its side (error 0) or the socket failed (-errno). The
  // service decides how to close.
  virtual void on_peer_closed(SocketHandle socket, int error) = 0;
  // The socket's timer fired while it was open.
  virtual void on_timer(SocketHandle socket) = 0;
  // An outbound connection (Reactor::connect_adopted) finished connecting:
  // error 0, or -errno (the service then closes the socket).
  virtual void on_connected(SocketHandle socket, int error) {
    (void)socket;
    (void)error;
  }
  // A send completed and `queued_bytes` are still waiting (0: the queue is
  // empty). A proxy resumes reading from the other side of a tunnel here
  // once the backlog fell below its low-water mark.
  virtual void on_sent(SocketHandle socket, size_t queued_bytes) {
    (void)socket;
    (void)queued_bytes;
  }
  // The last completion of a closed socket arrived; per-socket state of the
  // service must be reset now (the slot will be reused).
  virtual void on_released(SocketHandle socket) = 0;
  // Receive with one-shot recvs, re-armed after each completion, instead of
  // one multishot recv. A multishot recv keeps filling buffers until its
  // cancellation is processed, so after pause_receive() a fast sender can
  // still land megabytes; one-shot bounds that to one buffer. Services that
  // pause (proxies) pay one SQE per read for it.
  virtual bool receive_one_shot() const { return false; }

 protected:
  ~SocketService() = default;
};

struct ReactorOptions {
  uint32_t max_sockets = 1024;          // = direct-descriptor table size
  uint32_t recv_buffer_count = 1024;    // power of two
  uint32_t recv_buffer_bytes = 16384;   // one TLS record fits
  size_t max_queued_bytes_per_socket = 256 * 1024;
  size_t pool_max_bytes = size_t{512} << 20;  // blocks for send queues and partial messages
  uint32_t linger_ms = 2000;            // how long a closing socket waits for the peer
};

enum class CloseMode : uint8_t {
  graceful,  // send what is queued, shutdown(SHUT_WR), linger until EOF
  abort,     // drop what is queued and close now
};

struct ReactorCounters {
  uint64_t accepted = 0;
  uint64_t accept_errors = 0;
  uint64_t accept_table_full = 0;  // times a listener was left without an armed accept (table full)
  uint64_t released = 0;
  uint64_t recv_no_buffers = 0;
  uint64_t send_queue_overflows = 0;
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  uint64_t sends = 0;         // send submissions (SEND or SENDMSG)
  uint64_t send_buffers = 0;  // queue blocks those submissions carried
  uint64_t short_sends = 0;   // sends that completed with fewer bytes than they carried
  uint64_t loop_turns = 0;
};

class Reactor {
 public:
  explicit Reactor(uint32_t shard_id);
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;
  ~Reactor();

  // Timer resolution: deadlines fire at most one tick late. 4096 slots of
  // 10 ms cover 41 s per revolution; longer deadlines wait their turn.
  static constexpr uint32_t timer_tick_ms = 10;
  static constexpr uint32_t timer_slots = 4096;
  // The most queue blocks one send carries (64 x 4 KiB: about a full queue
  // at the default cap, 256 KiB); what is left goes with the next send.
  static constexpr uint32_t max_send_vectors = 64;
  // msghdrs and iovecs the shard keeps for the SENDMSGs of one submission;
  // sends that need more in one turn submit early.
  static constexpr uint32_t send_headers_per_submission = 256;
  static constexpr uint32_t send_vectors_per_submission = 4096;

  // Creates the ring, the file table, the buffer ring. Must run on the shard
  // thread (the ring is SINGLE_ISSUER).
  std::expected<RingSetupReport, std::string> init(const ReactorOptions& options);

  uint32_t shard_id() const { return shard_id_; }
  IoUringRing& ring() { return ring_; }
  BlockPool& pool() { return pool_; }
  TimerWheel& timers() { return timers_; }
  const ReactorCounters& counters() const { return counters_; }
  const ReactorOptions& options() const { return options_; }
  // Monotonic milliseconds, read once per loop turn.
  uint64_t now_ms() const { return now_ms_; }
  static uint64_t monotonic_ms();

  // Accepts on a listening socket (a regular fd shared with nobody: each
  // shard has its own SO_REUSEPORT listener), directly into the file table,
  // with up to accepts_per_listener one-shot accepts armed, each with its
  // own address buffer; on_accepted() gets the peer's address only with
  // want_peer_address (per-source admission when no PROXY header carries
  // it).
  //
  // An accept into the file table takes the connection off the backlog
  // before it looks for a free index: one that finds the table full closes
  // the connection it took (a reset for a client that already sent bytes).
  // So an accept is armed only for an index nobody else can take: sockets
  // not yet released plus accepts armed never exceed the table
  // (docs/architecture.md, "Life of a connection"). At the limit new connections
  // wait in the kernel's backlog, and each release arms an accept again.
  // A multishot accept is not used: it takes every queued connection in one
  // go, however few indices are free. `accepts`: how many this listener
  // keeps armed (each holds an index while it waits), at most
  // accepts_per_listener; an operator's listener needs few.
  void add_listener(int listen_fd, SocketService* service, bool want_peer_address = false,
                    uint32_t accepts = accepts_per_listener);
  static constexpr uint32_t accepts_per_listener = 16;
  static constexpr uint32_t accepts_per_admin_listener = 2;
  // Stops accepting on every listener (drain). The cancellation is
  // submitted before this returns, so the caller may close the listening
  // sockets right after (an accept still armed would keep a closed
  // listener alive); connections still in the backlog of a closed listener
  // are reset by the kernel (or, with net.ipv4.tcp_migrate_req=1, moved to
  // another listener of the same SO_REUSEPORT group).
  void stop_accepting();

  // Outbound connection. The caller creates, configures and binds `fd` (a
  // regular socket: setsockopt and bind have no opcode in liburing 2.3, and a
  // load generator binds source addresses to pass the ephemeral-port limit);
  // the reactor moves it into the direct-descriptor table (the kernel picks
  // the index), closes the regular fd and connects through the ring.
  // on_connected() follows. Takes ownership of `fd` in every case. -ENFILE
  // when no index is free for it (the same budget as accepts, above).
  std::expected<SocketHandle, int> connect_adopted(int fd, const sockaddr* remote, socklen_t remote_length,
                                                   SocketService* service);

  bool alive(SocketHandle socket) const;
  size_t open_sockets() const { return open_sockets_; }
  // Sockets not yet released: open ones plus those still flushing, lingering
  // or waiting for their last completion. A stopping shard waits for zero so
  // goodbyes (close frames) actually leave.
  size_t live_sockets() const { return live_sockets_; }
  // Direct-descriptor indices neither a socket nor an armed accept holds.
  size_t free_indices() const {
    size_t used = live_sockets_ + accepts_armed_;
    return used >= sockets_.capacity() ? 0 : sockets_.capacity() - used;
  }

  // Queues bytes for sending. False when the socket's queue would exceed
  // max_queued_bytes_per_socket or the pool is exhausted: the consumer is
  // not reading and the caller must close the socket (memory stays bounded).
  bool send(SocketHandle socket, std::span<const uint8_t> bytes);
  // For writers that produce their bytes in place (TLS sealing a record):
  // `n` contiguous writable bytes at the tail of the socket's send queue,
  // or nullptr when the socket cannot send, `n` would pass the queue's cap
  // or exceed one pool block, or the pool is exhausted (then use send(),
  // which says which). commit_send() publishes the first `n` bytes written
  // there and schedules the send; nothing is queued without it.
  uint8_t* reserve_send(SocketHandle socket, size_t n);
  void commit_send(SocketHandle socket, size_t n);
  size_t queued_bytes(SocketHandle socket) const;

  // Starts closing. Safe to call more than once and on stale handles.
  void close(SocketHandle socket, CloseMode mode);

  // Flow control: stops reading from the socket (the kernel's receive
  // window then pushes back on the peer) until resume_receive(). Bytes that
  // were already on their way may still arrive through on_received() shortly
  // after the pause. A paused socket does not notice its peer closing until
  // it resumes. close() resumes by itself (lingering reads until EOF).
  void pause_receive(SocketHandle socket);
  void resume_receive(SocketHandle socket);
  bool receive_paused(SocketHandle socket) const;

  // Half-close: once everything queued has been sent, shutdown(SHUT_WR) so
  // the peer reads EOF, while this side keeps receiving. send() refuses
  // bytes afterwards. close() is still needed to release the socket.
  void shutdown_write(SocketHandle socket);

  // One timer per socket (handshake, idle, heartbeat: the service decides).
  void arm_timer(SocketHandle socket, uint64_t deadline_ms);
  void cancel_timer(SocketHandle socket);

  // Runs one loop turn: submit, wait up to max_wait_ms for completions,
  // dispatch them, fire due timers.
  void run_once(uint32_t max_wait_ms);

  // Runs `callback` on this shard every `interval_ms` (control-plane chores:
  // file watching, batched flushes). Not for per-connection timeouts: those
  // use arm_timer().
  void add_periodic(uint32_t interval_ms, std::function<void()> callback);
  // A task that runs once, `delay_ms` after the first schedule_deferred()
  // since it last ran, for work owed soon but only now and then (a batch
  // owed to another shard): unlike a periodic, an idle shard does not wake
  // for it. Returns the id schedule_deferred() takes.
  uint32_t add_deferred(uint32_t delay_ms, std::function<void()> callback);
  // Makes the task due delay_ms from now, unless it is due already (O(1);
  // a callback may schedule its own task again).
  void schedule_deferred(uint32_t task);

  // Runs `callback` at the end of every loop turn: right before the turn
  // sends what is queued on sockets and submits the ring, after all the work
  // done since the last submission (the previous run_once()'s completions and
  // timers, this one's mailbox drain and periodic tasks). For work a service
  // batches over a turn and owes at its end (the edge's tracker deliveries,
  // docs/tracker.md, "Where the work happens"): what the callback queues or
  // posts (with its wake) leaves in this submission. Work done after the last
  // run_once() of a loop is not covered: a service with a batch waiting keeps
  // its loop turning (ShardService::stopped). It runs on every turn: cheap
  // when there is nothing to do. Callbacks run in the order they were added.
  void add_end_of_turn(std::function<void()> callback);

  // Called at the top of every loop turn (cross-shard mailbox drain). It
  // returns the longest the turn may then wait for completions: 0 when work
  // is left over (a drain stopped at its batch limit), UINT32_MAX for no
  // limit of its own.
  void set_turn_hook(std::function<uint32_t()> hook) { turn_hook_ = std::move(hook); }
  // Called for a CompletionKind::wake or signal_read completion.
  void set_completion_hook(std::function<void(const io_uring_cqe&)> hook) {
    completion_hook_ = std::move(hook);
  }

 private:
  enum class SocketState : uint8_t { free, connecting, open, flushing, lingering, finishing };
  struct Socket {
    ByteQueue out;
    TimerNode timer;
    SocketService* service = nullptr;
    uint32_t fixed_fd = 0;
    uint32_t generation = 0;
    uint32_t next_free = UINT32_MAX;
    uint32_t send_in_flight_bytes = 0;  // what the send in flight carries (a short write sends less)
    uint16_t pending = 0;  // completions still to come
    SocketState state = SocketState::free;
    bool recv_armed = false;
    bool send_in_flight = false;
    bool in_flush_list = false;
    bool shutdown_in_flight = false;
    bool finish_after_shutdown = false;
    bool recv_paused = false;           // pause_receive(): no recv is re-armed
    bool write_shut_requested = false;  // shutdown_write(): SHUT_WR once the queue is empty
    bool write_shut_sent = false;       // the SHUT_WR has been submitted
  };
  struct AcceptSlot {
    sockaddr_storage address;
    socklen_t length;
    bool armed;
  };
  struct Listener {
    int fd;
    SocketService* service;
    bool want_peer_address;
    bool active;
    uint32_t max_armed;                   // accepts kept armed, at most accepts_per_listener
    uint32_t armed;                       // accepts in flight
    std::unique_ptr<AcceptSlot[]> slots;  // max_armed of them
  };
  Socket& at(uint32_t slot) { return sockets_[slot]; }
  const Socket& at(uint32_t slot) const { return sockets_[slot]; }
  Socket* lookup(SocketHandle socket);
  const Socket* lookup(SocketHandle socket) const;
  uint32_t allocate_slot();
  // Resets a freshly allocated slot for a new socket (accepted or outbound).
  Socket& start_socket(uint32_t slot, SocketService* service, SocketState state);
  // Arms accepts while indices are free, one per listener per pass so the
  // last free ones are shared (an admin listener is not starved by the
  // public one).
  void arm_accepts();
  void arm_accept(Listener& listener, uint32_t listener_index);
  void arm_recv(uint32_t slot);
  void submit_send(uint32_t slot);
  // Room for one SENDMSG's header and `vectors` iovecs (header->msg_iov)
  // until the next submission, or nullptr when none can be had (the
  // submission queue could not be drained).
  msghdr* take_send_header(size_t vectors);
  void flush_sends();
  void begin_shutdown(uint32_t slot);
  void submit_shutdown_write(uint32_t slot);
  // Whether a recv should be (re)armed for a socket in this state.
  static bool wants_recv(const Socket& s);
  void finish(uint32_t slot);
  void submit_close_chain(uint32_t slot);
  void completion_done(uint32_t slot);
  void release(uint32_t slot);
  void dispatch(const io_uring_cqe& cqe);
  void on_accept(const io_uring_cqe& cqe);
  void on_recv(const io_uring_cqe& cqe);
  void on_send(const io_uring_cqe& cqe);
  void on_adopted(const io_uring_cqe& cqe);
  void on_connect(const io_uring_cqe& cqe);
  void on_timer_expired(uint64_t tag);

  uint32_t shard_id_;
  ReactorOptions options_{};
  IoUringRing ring_;
  ProvidedBufferRing recv_buffers_;
  BlockPool pool_;
  TimerWheel timers_;
  SlotArray<Socket> sockets_;
  uint32_t slots_created_ = 0;
  uint32_t free_head_ = UINT32_MAX;
  size_t open_sockets_ = 0;
  size_t live_sockets_ = 0;
  std::vector<Listener> listeners_;
  // Outbound connections between adoption and connect completion.
  struct PendingConnect {
    int fd_or_index;  // the regular fd, replaced by the allocated index
    sockaddr_storage remote;
    socklen_t remote_length;
    bool abandoned;   // closed before it connected
  };
  std::unordered_map<uint32_t, PendingConnect> pending_connects_;
  std::unordered_map<uint32_t, int> pending_fds_;  // regular fds until the table holds them
  uint32_t accepts_armed_ = 0;
  uint32_t next_accept_listener_ = 0;  // where arm_accepts() starts its round
  bool accept_paused_ = false;  // a listener wanted an accept and no index was free
  uint64_t table_full_logged_until_ms_ = 0;
  uint64_t accept_retry_at_ms_ = 0;  // 0: no retry pending
  // SENDMSG headers and their iovecs since the last drained submission.
  std::unique_ptr<msghdr[]> send_headers_;
  std::unique_ptr<iovec[]> send_vectors_;
  uint32_t send_headers_used_ = 0;
  uint32_t send_vectors_used_ = 0;
  std::vector<uint32_t> flush_list_;
  std::vector<uint32_t> recv_rearm_list_;
  uint64_t now_ms_ = 0;
  ReactorCounters counters_;
  static constexpr uint64_t not_scheduled = UINT64_MAX;
  struct Periodic {
    uint32_t interval_ms;
    uint64_t next_ms;  // not_scheduled: a deferred task nobody scheduled
    std::function<void()> callback;
    bool deferred;     // runs once per schedule_deferred()
  };
  std::vector<Periodic> periodics_;
  std::vector<std::function<void()>> end_of_turn_;
  std::function<uint32_t()> turn_hook_;
  std::function<void(const io_uring_cqe&)> completion_hook_;
};

}  // namespace mf
