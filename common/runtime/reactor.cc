#include "common/runtime/reactor.h"

#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unistd.h>

#include "common/base/log.h"
#include "common/runtime/test_clock.h"

namespace mf {
namespace {
constexpr uint16_t recv_buffer_group = 0;
}

Reactor::Reactor(uint32_t shard_id) : shard_id_(shard_id), pool_(0, 0), timers_(timer_tick_ms, timer_slots) {}

Reactor::~Reactor() {
  for (uint32_t slot = 0; slot < slots_created_; ++slot) {
    timers_.cancel(sockets_[slot].timer);
    sockets_[slot].out.clear(pool_);
  }
}

uint64_t Reactor::monotonic_ms() {
#if defined(MF_TEST_HOOKS)
  if (auto manual = test_clock_ms()) return *manual;
#endif
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

std::expected<RingSetupReport, std::string> Reactor::init(const ReactorOptions& options) {
  MF_ASSERT_ON_SHARD(shard_id_);
  options_ = options;
  RingOptions ring_options;
  ring_options.fixed_files = options.max_sockets;
  auto report = ring_.init(ring_options);
  if (!report) return std::unexpected(report.error());
  auto buffers = recv_buffers_.init(ring_.native(), recv_buffer_group, options.recv_buffer_count,
                                    options.recv_buffer_bytes);
  if (!buffers) return std::unexpected(buffers.error());
  size_t max_blocks = options.pool_max_bytes / Block::block_bytes;
  pool_.set_limits(max_blocks, std::min<size_t>(max_blocks, 4096));
  sockets_.set_capacity(options.max_sockets);
  send_headers_ = std::make_unique<msghdr[]>(send_headers_per_submission);
  send_vectors_ = std::make_unique<iovec[]>(send_vectors_per_submission);
  flush_list_.reserve(1024);
  recv_rearm_list_.reserve(64);
  now_ms_ = monotonic_ms();
  return report;
}

Reactor::Socket* Reactor::lookup(SocketHandle socket) {
  if (socket.slot >= slots_created_) return nullptr;
  Socket& s = at(socket.slot);
  if (s.generation != socket.generation || s.state == SocketState::free) return nullptr;
  return &s;
}

const Reactor::Socket* Reactor::lookup(SocketHandle socket) const {
  return const_cast<Reactor*>(this)->lookup(socket);
}

bool Reactor::alive(SocketHandle socket) const {
  const Socket* s = lookup(socket);
  return s != nullptr && s->state == SocketState::open;
}

uint32_t Reactor::allocate_slot() {
  if (free_head_ != UINT32_MAX) {
    uint32_t slot = free_head_;
    free_head_ = at(slot).next_free;
    return slot;
  }
  if (slots_created_ >= sockets_.capacity()) return UINT32_MAX;
  uint32_t slot = slots_created_++;
  sockets_.ensure(slot).generation = 1;
  return slot;
}

// Accept tags: index bits 15..0 = listener, bits 23..16 = accept slot
// (address mode).
Reactor::Socket& Reactor::start_socket(uint32_t slot, SocketService* service, SocketState state) {
  Socket& s = at(slot);
  s.service = service;
  s.state = state;
  s.pending = 0;
  s.recv_armed = false;
  s.send_in_flight = false;
  s.in_flush_list = false;
  s.shutdown_in_flight = false;
  s.finish_after_shutdown = false;
  s.recv_paused = false;
  s.write_shut_requested = false;
  s.write_shut_sent = false;
  s.timer.tag = make_tag(CompletionKind::ignored, slot, s.generation);
  ++live_sockets_;
  return s;
}

void Reactor::add_listener(int listen_fd, SocketService* service, bool want_peer_address, uint32_t accepts) {
  MF_ASSERT_ON_SHARD(shard_id_);
  accepts = std::clamp<uint32_t>(accepts, 1, accepts_per_listener);
  Listener listener{listen_fd, service, want_peer_address, true, accepts, 0, std::make_unique<AcceptSlot[]>(accepts)};
  for (uint32_t i = 0; i < accepts; ++i) listener.slots[i].armed = false;
  listeners_.push_back(std::move(listener));
  arm_accepts();
}

void Reactor::stop_accepting() {
  for (Listener& listener : listeners_) {
    if (!listener.active) continue;
    listener.active = false;
    io_uring_sqe* sqe = ring_.acquire_sqe();
    io_uring_prep_cancel_fd(sqe, listener.fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, make_tag(CompletionKind::ignored, 0));
  }
  // The cancel looks the descriptor up when it is issued, inline in this
  // submit: after it the fd may be closed.
  int rc = io_uring_submit(ring_.native());
  if (rc < 0) MF_LOG_WARN("shard {}: submitting the accept cancellation failed: {}", shard_id_, std::strerror(-rc));
}

void Reactor::arm_accepts() {
  if (accept_retry_at_ms_ != 0) return;  // after an unexpected error: the retry arms them
  bool starved = false;
  for (uint32_t pass = 0; pass < accepts_per_listener && !starved; ++pass) {
    bool armed_any = false;
    const uint32_t count = static_cast<uint32_t>(listeners_.size());
    const uint32_t first = next_accept_listener_;
    for (uint32_t k = 0; k < count; ++k) {
      uint32_t i = (first + k) % count;
      Listener& listener = listeners_[i];
      if (!listener.active || listener.armed >= listener.max_armed) continue;
      if (free_indices() == 0) {
        starved = true;
        break;
      }
      arm_accept(listener, i);
      // Round robin across calls too: when indices free one at a time, the
      // next goes to the next listener.
      next_accept_listener_ = (i + 1) % count;
      armed_any = true;
    }
    if (!armed_any) break;
  }
  // A listener left without any accept: its new connections wait in the
  // backlog until a socket is released.
  bool paused = false;
  for (const Listener& listener : listeners_) paused = paused || (starved && listener.active && listener.armed == 0);
  if (paused && !accept_paused_) {
    // At the limit every release resumes and pauses again: one line per
    // 10 s, the counter has every pause.
    ++counters_.accept_table_full;
    if (now_ms_ >= table_full_logged_until_ms_) {
      table_full_logged_until_ms_ = now_ms_ + 10000;
      MF_LOG_WARN("shard {}: descriptor table full ({} sockets), accept paused", shard_id_, live_sockets_);
    }
  }
  accept_paused_ = paused;
}

void Reactor::arm_accept(Listener& listener, uint32_t index) {
  uint32_t free_slot = 0;
  while (listener.slots[free_slot].armed) ++free_slot;  // armed < max_armed: one is free
  AcceptSlot& slot = listener.slots[free_slot];
  slot.length = sizeof slot.address;
  io_uring_sqe* sqe = ring_.acquire_sqe();
  // No SOCK_CLOEXEC: a direct descriptor is not in the fd table (EINVAL).
  // liburing 2.3 stores file_index + 1 and, unlike its multishot variant,
  // does not offset IORING_FILE_INDEX_ALLOC: pass ALLOC - 1 to allocate.
  io_uring_prep_accept_direct(sqe, listener.fd, reinterpret_cast<sockaddr*>(&slot.address), &slot.length, 0,
                              IORING_FILE_INDEX_ALLOC - 1);
  io_uring_sqe_set_data64(sqe, make_tag(CompletionKind::accept, index | (free_slot << 16)));
  slot.armed = true;
  ++listener.armed;
  ++accepts_armed_;
}

void Reactor::arm_recv(uint32_t slot) {
  Socket& s = at(slot);
  io_uring_sqe* sqe = ring_.acquire_sqe();
  // A one-shot completion carries no IORING_CQE_F_MORE: on_recv re-arms it
  // as it re-arms a multishot the kernel ended.
  if (s.service->receive_one_shot()) io_uring_prep_recv(sqe, static_cast<int>(s.fixed_fd), nullptr, 0, 0);
  else io_uring_prep_recv_multishot(sqe, static_cast<int>(s.fixed_fd), nullptr, 0, 0);
  sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
  sqe->buf_group = recv_buffers_.group_id();
  io_uring_sqe_set_data64(sqe, make_tag(CompletionKind::recv, slot, s.generation));
  s.recv_armed = true;
  ++s.pending;
}

std::expected<SocketHandle, int> Reactor::connect_adopted(int fd, const sockaddr* remote, socklen_t remote_length,
                                                          SocketService* service) {
  MF_ASSERT_ON_SHARD(shard_id_);
  // An index the armed accepts counted on is not taken (add_listener).
  uint32_t slot = free_indices() == 0 ? UINT32_MAX : allocate_slot();
  if (slot == UINT32_MAX || remote_length > sizeof(sockaddr_storage)) {
    ::close(fd);
    return std::unexpected(-ENFILE);
  }
  Socket& s = start_socket(slot, service, SocketState::connecting);
  PendingConnect& p = pending_connects_[slot];
  p.fd_or_index = fd;
  std::memcpy(&p.remote, remote, remote_length);
  p.remote_length = remote_length;
  p.abandoned = false;
  io_uring_sqe* sqe = ring_.acquire_sqe();
  io_uring_prep_files_update(sqe, &p.fd_or_index, 1, IORING_FILE_INDEX_ALLOC);
  io_uring_sqe_set_data64(sqe, make_tag(CompletionKind::socket_create, slot, s.generation));
  ++s.pending;
  // The kernel reads the fd at submission: close our copy only after the
  // completion (on_adopted), when the table holds its own reference.
  pending_fds_[slot] = fd;
  return SocketHandle{slot, s.generation};
}

void Reactor::on_adopted(const io_uring_cqe& cqe) {
  uint32_t slot = tag_index(cqe.user_data);
  Socket& s = at(slot);
  --s.pending;
  auto fd_it = pending_fds_.find(slot);
  if (fd_it != pending_fds_.end()) {
    ::close(fd_it->second);
    pending_fds_.erase(fd_it);
  }
  PendingConnect& p = pending_connects_[slot];
  SocketHandle handle{slot, s.generation};
  if (cqe.res != 1) {
    pending_connects_.erase(slot);
    s.state = SocketState::finishing;
    int error = cqe.res < 0 ? cqe.res : -EBADF;
    s.service->on_connected(handle, error);
    if (s.pending == 0) release(slot);
    return;
  }
  s.fixed_fd = static_cast<uint32_t>(p.fd_or_index);
  if (p.abandoned) {
    pending_connects_.erase(slot);
    s.state = SocketState::open;  // so finish() runs its close chain
    finish(slot);
    return;
  }
  io_uring_sqe* sqe = ring_.acquire_sqe();
  io_uring_prep_connect(sqe, static_cast<int>(s.fixed_fd), reinterpret_cast<const sockaddr*>(&p.remote),
                        p.remote_length);
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, make_tag(CompletionKind::connect, slot, s.generation));
  ++s.pending;
}

void Reactor::on_connect(const io_uring_cqe& cqe) {
  uint32_t slot = tag_index(cqe.user_data);
  Socket& s = at(slot);
  --s.pending;
  bool abandoned = pending_connects_[slot].abandoned;
  pending_connects_.erase(slot);
  SocketHandle handle{slot, s.generation};
  s.state = SocketState::open;
  if (abandoned) {
    finish(slot);
    return;
  }
  if (cqe.res < 0) {
    // The service closes it (abort) from its callback.
    ++open_sockets_;
    s.service->on_connected(handle, cqe.res);
    if (s.state == SocketState::open) close(handle, CloseMode::abort);
    return;
  }
  ++open_sockets_;
  arm_recv(slot);
  s.service->on_connected(handle, 0);
}

bool Reactor::send(SocketHandle socket, std::span<const uint8_t> bytes) {
  MF_ASSERT_ON_SHARD(shard_id_);
  Socket* s = lookup(socket);
  if (s == nullptr || s->state != SocketState::open || s->write_shut_requested) return false;
  if (s->out.size() + bytes.size() > options_.max_queued_bytes_per_socket ||
      !s->out.append(pool_, bytes)) {
    ++counters_.send_queue_overflows;
    return false;
  }
  if (!s->send_in_flight && !s->in_flush_list) {
    s->in_flush_list = true;
    flush_list_.push_back(socket.slot);
  }
  return true;
}

uint8_t* Reactor::reserve_send(SocketHandle socket, size_t n) {
  MF_ASSERT_ON_SHARD(shard_id_);
  Socket* s = lookup(socket);
  if (s == nullptr || s->state != SocketState::open || s->write_shut_requested) return nullptr;
  if (s->out.size() + n > options_.max_queued_bytes_per_socket) return nullptr;
  return s->out.reserve(pool_, n);
}

void Reactor::commit_send(SocketHandle socket, size_t n) {
  MF_ASSERT_ON_SHARD(shard_id_);
  Socket* s = lookup(socket);
  if (s == nullptr) return;
  s->out.commit(n);
  if (!s->send_in_flight && !s->in_flush_list) {
    s->in_flush_list = true;
    flush_list_.push_back(socket.slot);
  }
}

size_t Reactor::queued_bytes(SocketHandle socket) const {
  const Socket* s = lookup(socket);
  return s != nullptr ? s->out.size() : 0;
}

msghdr* Reactor::take_send_header(size_t vectors) {
  if (send_headers_used_ == send_headers_per_submission ||
      send_vectors_used_ + vectors > send_vectors_per_submission) {
    // The kernel has copied every header once the queue is drained
    // (IORING_FEAT_SUBMIT_STABLE); an SQE still queued (the enter failed
    // with EBUSY or EAGAIN) may yet read its header, so nothing is reused
    // then.
    io_uring* ring = ring_.native();
    if (io_uring_sq_ready(ring) > 0) io_uring_submit(ring);
    if (io_uring_sq_ready(ring) > 0) return nullptr;
    send_headers_used_ = 0;
    send_vectors_used_ = 0;
  }
  msghdr* header = &send_headers_[send_headers_used_++];
  *header = msghdr{};
  header->msg_iov = &send_vectors_[send_vectors_used_];
  send_vectors_used_ += static_cast<uint32_t>(vectors);
  return header;
}

void Reactor::submit_send(uint32_t slot) {
  Socket& s = at(slot);
  io_uring_sqe* sqe = nullptr;
  iovec gathered[max_send_vectors];
  const size_t count = s.out.contiguous() ? 1 : s.out.gather(gathered);
  msghdr* header = count > 1 ? take_send_header(count) : nullptr;
  if (header != nullptr) {
    // The SQE is acquired after the header: take_send_header() may submit,
    // acquire_sqe() too, and neither touches a header no SQE names yet.
    sqe = ring_.acquire_sqe();
    size_t bytes = 0;
    for (size_t i = 0; i < count; ++i) {
      header->msg_iov[i] = gathered[i];
      bytes += gathered[i].iov_len;
    }
    header->msg_iovlen = count;
    io_uring_prep_sendmsg(sqe, static_cast<int>(s.fixed_fd), header, MSG_NOSIGNAL);
    s.send_in_flight_bytes = static_cast<uint32_t>(bytes);
    counters_.send_buffers += count;
  } else {
    // One block, or no header to be had: the first block alone.
    std::span<uint8_t> front = s.out.front();
    sqe = ring_.acquire_sqe();
    io_uring_prep_send(sqe, static_cast<int>(s.fixed_fd), front.data(), front.size(), MSG_NOSIGNAL);
    s.send_in_flight_bytes = static_cast<uint32_t>(front.size());
    counters_.send_buffers += 1;
  }
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, make_tag(CompletionKind::send, slot, s.generation));
  s.send_in_flight = true;
  ++s.pending;
  ++counters_.sends;
}

void Reactor::flush_sends() {
  // Everything queued during the turn leaves in one send per socket.
  for (uint32_t slot : flush_list_) {
    Socket& s = at(slot);
    s.in_flush_list = false;
    if (s.send_in_flight || s.out.empty()) continue;
    if (s.state == SocketState::open || s.state == SocketState::flushing) submit_send(slot);
  }
  flush_list_.clear();
}

void Reactor::close(SocketHandle socket, CloseMode mode) {
  MF_ASSERT_ON_SHARD(shard_id_);
  Socket* s = lookup(socket);
  if (s != nullptr && s->state == SocketState::connecting) {
    // Finished once the pending adoption or connect completes.
    pending_connects_[socket.slot].abandoned = true;
    return;
  }
  if (s == nullptr || s->state != SocketState::open) return;
  --open_sockets_;
  if (mode == CloseMode::abort) {
    finish(socket.slot);
    return;
  }
  s->state = SocketState::flushing;
  if (s->recv_paused) {
    // Lingering reads until EOF, so the peer gets a FIN rather than a reset.
    s->recv_paused = false;
    if (!s->recv_armed) arm_recv(socket.slot);
  }
  // A peer that never reads must not hold the socket forever.
  timers_.arm(s->timer, now_ms_ + options_.linger_ms);
  if (!s->send_in_flight && s->out.empty()) begin_shutdown(socket.slot);
}

void Reactor::begin_shutdown(uint32_t slot) {
  Socket& s = at(slot);
  s.state = SocketState::lingering;
  if (!s.write_shut_sent) submit_shutdown_write(slot);
  if (!s.recv_armed) finish(slot);
}

void Reactor::submit_shutdown_write(uint32_t slot) {
  Socket& s = at(slot);
  io_uring_sqe* sqe = ring_.acquire_sqe();
  io_uring_prep_shutdown(sqe, static_cast<int>(s.fixed_fd), SHUT_WR);
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, make_tag(CompletionKind::shutdown, slot, s.generation));
  ++s.pending;
  s.shutdown_in_flight = true;
  s.write_shut_sent = true;
}

bool Reactor::wants_recv(const Socket& s) {
  if (s.state == SocketState::flushing || s.state == SocketState::lingering) return true;
  return s.state == SocketState::open && !s.recv_paused;
}

void Reactor::pause_receive(SocketHandle socket) {
  MF_ASSERT_ON_SHARD(shard_id_);
  Socket* s = lookup(socket);
  if (s == nullptr || s->state != SocketState::open || s->recv_paused) return;
  s->recv_paused = true;
  // A one-shot recv in flight lands at most one buffer: let it.
  if (!s->recv_armed || s->service->receive_one_shot()) return;
  // Ends the multishot recv; its terminal -ECANCELED completion is not a
  // peer close (on_recv). A duplicate cancel after a quick resume and pause
  // finds nothing or the re-armed recv: both are what the pause wants.
  io_uring_sqe* sqe = ring_.acquire_sqe();
  io_uring_prep_cancel64(sqe, make_tag(CompletionKind::recv, socket.slot, s->generation), 0);
  io_uring_sqe_set_data64(sqe, make_tag(CompletionKind::ignored, 0));
}

void Reactor::resume_receive(SocketHandle socket) {
  MF_ASSERT_ON_SHARD(shard_id_);
  Socket* s = lookup(socket);
  if (s == nullptr || s->state != SocketState::open || !s->recv_paused) return;
  s->recv_paused = false;
  // Still armed: the cancelled recv's last completion re-arms (on_recv).
  if (!s->recv_armed) arm_recv(socket.slot);
}

bool Reactor::receive_paused(SocketHandle socket) const {
  const Socket* s = lookup(socket);
  return s != nullptr && s->recv_paused;
}

void Reactor::shutdown_write(SocketHandle socket) {
  MF_ASSERT_ON_SHARD(shard_id_);
  Socket* s = lookup(socket);
  if (s == nullptr || s->state != SocketState::open || s->write_shut_requested) return;
  s->write_shut_requested = true;
  if (!s->send_in_flight && s->out.empty()) submit_shutdown_write(socket.slot);
}

void Reactor::finish(uint32_t slot) {
  Socket& s = at(slot);
  if (s.state == SocketState::finishing) return;
  s.state = SocketState::finishing;
  timers_.cancel(s.timer);
  if (s.shutdown_in_flight) {
    // SHUTDOWN always runs in an io-wq worker, which looks the fixed file up
    // only when it runs: closing the index first would let the kernel give
    // it to the next accepted socket, and the late shutdown would hit that
    // one. Close once the shutdown has completed.
    s.finish_after_shutdown = true;
    return;
  }
  submit_close_chain(slot);
}

void Reactor::submit_close_chain(uint32_t slot) {
  Socket& s = at(slot);
  const uint64_t tag = make_tag(CompletionKind::close_chain, slot, s.generation);
  // What can be in flight on an open socket: its recv and its one send
  // (both would hold the file, so the close alone would not end them).
  // Each is cancelled by its user_data, which the kernel finds by hash. A
  // cancel by descriptor walks every request pending in the ring instead:
  // O(sockets) per close, half of an ingress's CPU with 100,000 tunnels held.
  // Hard links: the close runs even when a cancel finds nothing.
  ring_.reserve_sqes(3);
  const auto cancel = [&](CompletionKind kind) {
    io_uring_sqe* sqe = ring_.acquire_sqe();
    io_uring_prep_cancel64(sqe, make_tag(kind, slot, s.generation), 0);
    sqe->flags |= IOSQE_IO_HARDLINK;
    io_uring_sqe_set_data64(sqe, tag);
    ++s.pending;
  };
  if (s.recv_armed) cancel(CompletionKind::recv);
  if (s.send_in_flight) cancel(CompletionKind::send);
  io_uring_sqe* close = ring_.acquire_sqe();
  io_uring_prep_close_direct(close, s.fixed_fd);
  io_uring_sqe_set_data64(close, tag);
  ++s.pending;
}

void Reactor::completion_done(uint32_t slot) {
  Socket& s = at(slot);
  --s.pending;
  if (s.pending == 0 && s.state == SocketState::finishing) release(slot);
}

void Reactor::release(uint32_t slot) {
  Socket& s = at(slot);
  s.out.clear(pool_);
  SocketHandle handle{slot, s.generation};
  SocketService* service = s.service;
  s.state = SocketState::free;
  s.service = nullptr;
  s.generation = (s.generation + 1) & generation_mask;
  if (s.generation == 0) s.generation = 1;
  s.next_free = free_head_;
  free_head_ = slot;
  ++counters_.released;
  --live_sockets_;
  service->on_released(handle);
  arm_accepts();
}

void Reactor::arm_timer(SocketHandle socket, uint64_t deadline_ms) {
  Socket* s = lookup(socket);
  if (s == nullptr || s->state != SocketState::open) return;
  timers_.arm(s->timer, deadline_ms);
}

void Reactor::cancel_timer(SocketHandle socket) {
  Socket* s = lookup(socket);
  if (s == nullptr || s->state != SocketState::open) return;
  timers_.cancel(s->timer);
}

void Reactor::on_timer_expired(uint64_t tag) {
  uint32_t slot = tag_index(tag);
  Socket& s = at(slot);
  if (s.generation != tag_generation(tag)) return;
  if (s.state == SocketState::open) {
    s.service->on_timer(SocketHandle{slot, s.generation});
  } else if (s.state == SocketState::flushing || s.state == SocketState::lingering) {
    finish(slot);
  }
}

void Reactor::on_accept(const io_uring_cqe& cqe) {
  uint32_t index = tag_index(cqe.user_data) & 0xFFFF;
  uint32_t accept_slot = tag_index(cqe.user_data) >> 16;
  Listener& listener = listeners_[index];
  AcceptSlot& armed = listener.slots[accept_slot];
  armed.armed = false;
  --listener.armed;
  --accepts_armed_;
  if (cqe.res >= 0) {
    ++counters_.accepted;
    uint32_t fixed_fd = static_cast<uint32_t>(cqe.res);
    uint32_t slot = allocate_slot();
    if (slot == UINT32_MAX) {
      // Cannot happen while accepts are armed only for free indices and
      // slots equal the table; refuse rather than trust that.
      io_uring_sqe* sqe = ring_.acquire_sqe();
      io_uring_prep_close_direct(sqe, fixed_fd);
      io_uring_sqe_set_data64(sqe, make_tag(CompletionKind::ignored, 0));
    } else {
      Socket& s = start_socket(slot, listener.service, SocketState::open);
      s.fixed_fd = fixed_fd;
      ++open_sockets_;
      arm_recv(slot);
      listener.service->on_accepted(SocketHandle{slot, s.generation},
                                    listener.want_peer_address ? &armed.address : nullptr);
    }
  } else if (cqe.res == -ENFILE || cqe.res == -EMFILE) {
    // The table was full after all (the budget is wrong, or something else
    // holds indices): the kernel has already closed the connection it took.
    ++counters_.accept_table_full;
    MF_LOG_WARN("shard {}: accept found the descriptor table full ({} sockets); a connection was lost", shard_id_,
                live_sockets_);
  } else if (cqe.res != -ECANCELED) {
    // Unexpected (ENOMEM, a listener in a bad state): retry after a pause
    // rather than spin on a failing accept.
    ++counters_.accept_errors;
    if (counters_.accept_errors % 1000 == 1)
      MF_LOG_WARN("shard {}: accept failed: {}", shard_id_, std::strerror(-cqe.res));
    accept_retry_at_ms_ = now_ms_ + 100;
    return;
  }
  arm_accepts();
}

void Reactor::on_recv(const io_uring_cqe& cqe) {
  uint32_t slot = tag_index(cqe.user_data);
  Socket& s = at(slot);
  bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
  if (cqe.res > 0) {
    uint16_t buffer_id = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    counters_.bytes_received += static_cast<uint64_t>(cqe.res);
    if (s.state == SocketState::open) {
      s.service->on_received(SocketHandle{slot, s.generation},
                             recv_buffers_.buffer(buffer_id, static_cast<uint32_t>(cqe.res)));
    }
    recv_buffers_.recycle(buffer_id);
    if (!more) {
      // The kernel ended the multishot (e.g. CQ overflow); arm again.
      s.recv_armed = false;
      --s.pending;
      if (wants_recv(s))
        arm_recv(slot);
      else if (s.pending == 0 && s.state == SocketState::finishing)
        release(slot);
    }
    return;
  }
  // Terminal completion of the multishot.
  s.recv_armed = false;
  if (cqe.res == -ECANCELED && s.state != SocketState::finishing) {
    // pause_receive() cancelled it (only the close chain cancels otherwise,
    // and it runs when finishing); a resume or a close since then wants it
    // back.
    --s.pending;
    if (wants_recv(s)) arm_recv(slot);
    return;
  }
  if (cqe.res == -ENOBUFS && s.state != SocketState::finishing) {
    // All buffers were in use at that instant; they come back within this
    // turn, so arm again after the batch.
    ++counters_.recv_no_buffers;
    recv_rearm_list_.push_back(slot);
    return;  // the pending count stays: the re-arm reuses it
  }
  if (s.state == SocketState::open) {
    SocketHandle handle{slot, s.generation};
    s.service->on_peer_closed(handle, cqe.res);
    // A service that did not close keeps a half-closed socket; nothing more
    // can be read from it.
  } else if (s.state == SocketState::lingering || s.state == SocketState::flushing) {
    finish(slot);
  }
  completion_done(slot);
}

void Reactor::on_send(const io_uring_cqe& cqe) {
  uint32_t slot = tag_index(cqe.user_data);
  Socket& s = at(slot);
  s.send_in_flight = false;
  if (cqe.res < 0) {
    // The peer is gone (EPIPE, ECONNRESET) or the send was cancelled.
    s.out.clear(pool_);
    if (s.state == SocketState::open) {
      s.service->on_peer_closed(SocketHandle{slot, s.generation}, cqe.res);
    } else if (s.state == SocketState::flushing || s.state == SocketState::lingering) {
      finish(slot);
    }
  } else {
    counters_.bytes_sent += static_cast<uint64_t>(cqe.res);
    // A short write leaves the rest at the front of the queue, possibly
    // part-way into any of the blocks the send carried.
    if (static_cast<uint32_t>(cqe.res) < s.send_in_flight_bytes) ++counters_.short_sends;
    s.out.consume(pool_, static_cast<size_t>(cqe.res));
    if (s.state == SocketState::open || s.state == SocketState::flushing) {
      if (!s.out.empty()) submit_send(slot);
      else if (s.state == SocketState::flushing) begin_shutdown(slot);
      else if (s.write_shut_requested && !s.write_shut_sent) submit_shutdown_write(slot);
    }
    if (s.state == SocketState::open) s.service->on_sent(SocketHandle{slot, s.generation}, s.out.size());
  }
  completion_done(slot);
}

void Reactor::dispatch(const io_uring_cqe& cqe) {
  CompletionKind kind = tag_kind(cqe.user_data);
  switch (kind) {
    case CompletionKind::accept:
      on_accept(cqe);
      return;
    case CompletionKind::recv:
      on_recv(cqe);
      return;
    case CompletionKind::send:
      on_send(cqe);
      return;
    case CompletionKind::shutdown: {
      uint32_t slot = tag_index(cqe.user_data);
      Socket& s = at(slot);
      s.shutdown_in_flight = false;
      if (s.finish_after_shutdown) {
        s.finish_after_shutdown = false;
        submit_close_chain(slot);
      }
      completion_done(slot);
      return;
    }
    case CompletionKind::close_chain:
      completion_done(tag_index(cqe.user_data));
      return;
    case CompletionKind::wake:
    case CompletionKind::wake_sent:
    case CompletionKind::signal_read:
      if (completion_hook_) completion_hook_(cqe);
      return;
    case CompletionKind::socket_create:
      on_adopted(cqe);
      return;
    case CompletionKind::connect:
      on_connect(cqe);
      return;
    case CompletionKind::ignored:
      return;
  }
}

void Reactor::add_periodic(uint32_t interval_ms, std::function<void()> callback) {
  periodics_.push_back(Periodic{interval_ms, monotonic_ms() + interval_ms, std::move(callback), false});
}

void Reactor::add_end_of_turn(std::function<void()> callback) { end_of_turn_.push_back(std::move(callback)); }

uint32_t Reactor::add_deferred(uint32_t delay_ms, std::function<void()> callback) {
  periodics_.push_back(Periodic{delay_ms, not_scheduled, std::move(callback), true});
  return static_cast<uint32_t>(periodics_.size() - 1);
}

void Reactor::schedule_deferred(uint32_t task) {
  Periodic& p = periodics_[task];
  if (p.next_ms == not_scheduled) p.next_ms = now_ms_ + p.interval_ms;
}

void Reactor::run_once(uint32_t max_wait_ms) {
  MF_ASSERT_ON_SHARD(shard_id_);
  ++counters_.loop_turns;
  if (turn_hook_) max_wait_ms = std::min(max_wait_ms, turn_hook_());
  for (Periodic& p : periodics_) {
    if (now_ms_ >= p.next_ms) {
      p.next_ms = p.deferred ? not_scheduled : now_ms_ + p.interval_ms;
      p.callback();
    }
  }
  for (uint32_t slot : recv_rearm_list_) {
    Socket& s = at(slot);
    --s.pending;
    if (wants_recv(s)) {
      if (!s.recv_armed) arm_recv(slot);  // resume_receive() may have armed it
    } else if (s.pending == 0 && s.state == SocketState::finishing) {
      release(slot);
    }
  }
  recv_rearm_list_.clear();
  if (accept_retry_at_ms_ != 0 && now_ms_ >= accept_retry_at_ms_) {
    accept_retry_at_ms_ = 0;
    arm_accepts();
  }
  // The turn's work is done: what services owe at its end goes out with it.
  for (const std::function<void()>& callback : end_of_turn_) callback();
  flush_sends();

  io_uring* ring = ring_.native();
  uint64_t wait_ms = max_wait_ms;
  if (auto next = timers_.next_deadline_hint_ms()) {
    uint64_t until = *next > now_ms_ ? *next - now_ms_ : 0;
    if (until < wait_ms) wait_ms = until;
  }
  for (const Periodic& p : periodics_) wait_ms = std::min<uint64_t>(wait_ms, p.next_ms > now_ms_ ? p.next_ms - now_ms_ : 0);
  if (accept_retry_at_ms_ != 0) wait_ms = std::min<uint64_t>(wait_ms, accept_retry_at_ms_ > now_ms_ ? accept_retry_at_ms_ - now_ms_ : 0);
  __kernel_timespec ts{};
  ts.tv_sec = static_cast<long long>(wait_ms / 1000);
  ts.tv_nsec = static_cast<long long>((wait_ms % 1000) * 1000000);
  io_uring_cqe* first = nullptr;
  unsigned wait_nr = io_uring_cq_ready(ring) > 0 || !recv_rearm_list_.empty() ? 0 : 1;
  int rc = io_uring_submit_and_wait_timeout(ring, &first, wait_nr, &ts, nullptr);
  if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
    MF_LOG_ERROR("shard {}: io_uring_enter failed: {}", shard_id_, std::strerror(-rc));
  }
  // Everything queued was submitted: the kernel holds its own copies of the
  // SENDMSG headers, which serve the sends prepared from here on.
  if (io_uring_sq_ready(ring) == 0) send_headers_used_ = send_vectors_used_ = 0;
  // The clock is read again as soon as the wait returns: completions that
  // arrived during the wait are handled "now", not at the time before it, or
  // a timer armed by them (a handshake deadline armed at accept) would fire
  // early by as long as the wait lasted.
  now_ms_ = monotonic_ms();
  unsigned head;
  unsigned seen = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(ring, head, cqe) {
    ++seen;
    dispatch(*cqe);
  }
  io_uring_cq_advance(ring, seen);
  now_ms_ = monotonic_ms();
  timers_.advance(now_ms_, [this](TimerNode& node) { on_timer_expired(node.tag); });
}

}  // namespace mf
