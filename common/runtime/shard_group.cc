#include "common/runtime/shard_group.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/base/log.h"

namespace mf {

[[noreturn]] void shard_ownership_violation(uint32_t owner, const char* where) {
  MF_LOG_ERROR("shard ownership violated: state of shard {} touched from shard {} in {}", owner,
               current_shard_id == no_shard ? -1 : static_cast<int>(current_shard_id), where);
  std::abort();
}

uint32_t Shard::count() const { return group_.shard_count(); }

bool Shard::post(uint32_t to_shard, const ShardMessage& message) {
  MF_ASSERT_ON_SHARD(id_);
  bool waiting = to_shard < overflow_.size() && !overflow_[to_shard].empty();
  if (!waiting && group_.post(id_, to_shard, message)) return true;
  ++mailbox_drops_;
  return false;
}

void Shard::post_obligation(uint32_t to_shard, const ShardMessage& message) {
  MF_ASSERT_ON_SHARD(id_);
  if (to_shard >= overflow_.size()) {
    // Not a shard of this group: a programming error, never a drop.
    MF_LOG_ERROR("shard {}: obligation to shard {} of {}", id_, to_shard, overflow_.size());
    std::abort();
  }
  std::deque<ShardMessage>& waiting = overflow_[to_shard];
  if (waiting.empty() && group_.post(id_, to_shard, message)) return;
  ShardMessage copy = message;
  copy.from_shard = static_cast<uint16_t>(id_);
  waiting.push_back(copy);
  ++obligations_deferred_;
  ++obligations_waiting_;
}

bool Shard::flush_obligations() {
  if (obligations_waiting_ == 0) return true;
  for (uint32_t to = 0; to < overflow_.size(); ++to) {
    std::deque<ShardMessage>& waiting = overflow_[to];
    while (!waiting.empty() && group_.post(id_, to, waiting.front())) {
      waiting.pop_front();
      --obligations_waiting_;
    }
  }
  return obligations_waiting_ == 0;
}

ShardGroup::~ShardGroup() {
  if (signal_fd_ >= 0) ::close(signal_fd_);
}

void ShardGroup::block_process_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

bool ShardGroup::post(uint32_t from, uint32_t to, const ShardMessage& message) {
  uint32_t n = shard_count();
  if (to >= n) return false;
  ShardMessage copy = message;
  copy.from_shard = static_cast<uint16_t>(from);
  if (!mailboxes_[from * n + to]->try_push(copy)) return false;
  if (to != from && wake_flags_[to].request_wake()) {
    // At most one wake in flight per target: its loop clears the flag before
    // draining, so a message pushed after that sets it again.
    io_uring_sqe* sqe = shards_[from]->reactor().ring().acquire_sqe();
    io_uring_prep_msg_ring(sqe, ring_fds_[to], 0, make_tag(CompletionKind::wake, from), 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, make_tag(CompletionKind::wake_sent, to));
  }
  return true;
}

void ShardGroup::deliver(uint32_t id, const ShardMessage& message) {
  auto& services = services_[id];
  if (message.kind == shard_message::stop) {
    if (stop_requested_[id].exchange(true)) return;
    MF_LOG_INFO("shard {}: stopping", id);
    // Services decide when to stop accepting: a draining edge keeps its
    // listener so health checks see 503 instead of a refused connection.
    for (auto& service : services) service->on_stop_requested();
    return;
  }
  if (message.kind == shard_message::reload) {
    for (auto& service : services) service->on_reload();
    return;
  }
  if (message.kind == shard_message::watchdog_probe) {
    ShardMessage ack;
    ack.kind = shard_message::watchdog_ack;
    ack.arg64_a = message.arg64_a;
    for (auto& service : services) ack.arg64_b += service->live_count();
    shards_[id]->post_obligation(0, ack);
    return;
  }
  if (message.kind == shard_message::watchdog_ack) {
    if (message.arg64_a != watchdog_round_) return;  // a late answer to an older round
    watchdog_live_total_ += message.arg64_b;
    if (++watchdog_acks_ == shard_count() && options_.on_all_shards_turning)
      options_.on_all_shards_turning(watchdog_live_total_);
    return;
  }
  for (auto& service : services) service->on_message(message);
}

bool ShardGroup::drain_mailboxes(uint32_t id) {
  uint32_t n = shard_count();
  wake_flags_[id].clear();
  bool more = false;
  for (uint32_t from = 0; from < n; ++from) {
    SpscQueue<ShardMessage>& mailbox = *mailboxes_[from * n + id];
    constexpr size_t batch = 4096;
    if (mailbox.drain([&](const ShardMessage& m) { deliver(id, m); }, batch) == batch && !mailbox.empty_approx())
      more = true;
  }
  return more;
}

uint32_t ShardGroupOptions::pair_capacity(uint32_t shards) const {
  if (mailbox_capacity != 0) return mailbox_capacity;
  uint32_t share = mailbox_messages_per_shard / std::max<uint32_t>(shards, 1);
  return std::max(min_mailbox_capacity, std::bit_floor(std::max<uint32_t>(share, 1)));
}

void ShardGroup::arm_signal_read() {
  Reactor& reactor = shards_[0]->reactor();
  io_uring_sqe* sqe = reactor.ring().acquire_sqe();
  io_uring_prep_read(sqe, signal_fd_, signal_buffer_, sizeof(signalfd_siginfo), 0);
  io_uring_sqe_set_data64(sqe, make_tag(CompletionKind::signal_read, 0));
}

void ShardGroup::on_signal(const io_uring_cqe& cqe) {
  if (cqe.res == static_cast<int>(sizeof(signalfd_siginfo))) {
    signalfd_siginfo info;
    std::memcpy(&info, signal_buffer_, sizeof info);
    uint32_t n = shard_count();
    if (info.ssi_signo == SIGHUP) {
      MF_LOG_INFO("SIGHUP: reloading");
      if (options_.on_reload_signal) options_.on_reload_signal();
      for (uint32_t to = 0; to < n; ++to) {
        ShardMessage m;
        m.kind = shard_message::reload;
        shards_[0]->post_obligation(to, m);
      }
    } else if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) {
      ++stop_signals_seen_;
      if (stop_signals_seen_ > 1) {
        MF_LOG_WARN("second stop signal: exiting now");
        _exit(1);
      }
      MF_LOG_INFO("{}: stopping all shards", info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
      if (options_.on_stop_signal) options_.on_stop_signal();
      for (uint32_t to = 0; to < n; ++to) {
        ShardMessage m;
        m.kind = shard_message::stop;
        shards_[0]->post_obligation(to, m);
      }
    }
  } else if (cqe.res < 0 && cqe.res != -EINTR && cqe.res != -EAGAIN) {
    MF_LOG_ERROR("signalfd read failed: {}", std::strerror(-cqe.res));
    return;
  }
  arm_signal_read();
}

void ShardGroup::request_stop() {
  // Picked up by every shard's loop within one turn (it wakes at least every
  // 100 ms): a non-shard thread has no ring to send a wake from.
  external_stop_.store(true);
}

void ShardGroup::shard_main(uint32_t id, const ShardServiceFactory& factory) {
  current_shard_id = id;
  Shard& shard = *shards_[id];
  if (options_.pin_threads) {
    // Shard i runs on the i-th CPU the process may use (taskset, cgroup
    // cpusets and systemd's CPUAffinity= narrow that set), not on CPU i.
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) > 0) {
      int wanted = static_cast<int>(id % static_cast<uint32_t>(CPU_COUNT(&allowed)));
      for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (!CPU_ISSET(cpu, &allowed)) continue;
        if (wanted-- == 0) {
          cpu_set_t set;
          CPU_ZERO(&set);
          CPU_SET(cpu, &set);
          pthread_setaffinity_np(pthread_self(), sizeof set, &set);
          break;
        }
      }
    }
  }
  auto fail = [&](const std::string& error) {
    if (!error_claimed_.exchange(true)) first_error_ = error;
    failed_.fetch_add(1);
    started_.fetch_add(1);
    started_.notify_all();
  };
  Reactor& reactor = shard.reactor();
  auto report = reactor.init(options_.reactor);
  if (!report) return fail(report.error());
  ring_fds_[id] = reactor.ring().ring_fd();
  if (id == 0 && !report->defer_taskrun)
    MF_LOG_NOTICE("io_uring: DEFER_TASKRUN not available, using setup flags {:#x}", report->flags);
  auto service = factory(shard);
  if (!service) return fail(service.error());
  services_[id].push_back(std::move(*service));
  if (id == 0) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    signal_fd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd_ < 0) return fail(std::string("signalfd: ") + std::strerror(errno));
  }
  started_.fetch_add(1);
  started_.notify_all();
  // Every ring fd must be known before anyone sends a wake.
  go_.wait(false);
  if (abort_start_.load()) return;
  // A drain that stopped at its batch limit turns the loop again at once,
  // obligations still waiting for room within 1 ms: not at the next timer
  // or wake.
  reactor.set_turn_hook([this, id, &shard]() -> uint32_t {
    if (external_stop_.load(std::memory_order_relaxed) && !stop_requested_[id].load()) {
      ShardMessage m;
      m.kind = shard_message::stop;
      deliver(id, m);
    }
    bool flushed = shard.flush_obligations();
    if (drain_mailboxes(id)) return 0;
    return flushed ? UINT32_MAX : 1;
  });
  reactor.set_completion_hook([this, id](const io_uring_cqe& cqe) {
    switch (tag_kind(cqe.user_data)) {
      case CompletionKind::wake:
        // What this batch leaves is drained at the top of the next turn.
        drain_mailboxes(id);
        break;
      case CompletionKind::wake_sent:
        // The wake could not be posted (target ring gone or CQ full): the
        // target still drains on its next turn, at most 100 ms later.
        wake_flags_[tag_index(cqe.user_data)].clear();
        break;
      case CompletionKind::signal_read:
        on_signal(cqe);
        break;
      default:
        break;
    }
  });
  if (id == 0) arm_signal_read();
  if (id == 0 && options_.watchdog_interval_ms != 0) {
    reactor.add_periodic(options_.watchdog_interval_ms, [this] {
      // A new round: every shard (this one included) must answer it.
      ++watchdog_round_;
      watchdog_acks_ = 0;
      watchdog_live_total_ = 0;
      for (uint32_t to = 0; to < shard_count(); ++to) {
        ShardMessage probe;
        probe.kind = shard_message::watchdog_probe;
        probe.arg64_a = watchdog_round_;
        shards_[0]->post_obligation(to, probe);
      }
    });
  }
  auto all_stopped = [&] {
    if (!stop_requested_[id].load()) return false;
    for (auto& s : services_[id])
      if (!s->stopped()) return false;
    return true;
  };
#if defined(MF_TEST_HOOKS)
  // MF_TEST_STALL_SHARD=ID:AFTER_MS:FOR_MS blocks shard ID's loop for FOR_MS,
  // AFTER_MS after start: what a stuck shard looks like to the watchdog
  // (tests/system/test_systemd.py). Compiled only with -Dtest_hooks=true.
  uint64_t stall_at_ms = 0, stall_for_ms = 0;
  if (const char* hook = std::getenv("MF_TEST_STALL_SHARD")) {
    unsigned shard = 0, after = 0, duration = 0;
    if (std::sscanf(hook, "%u:%u:%u", &shard, &after, &duration) == 3 && shard == id) {
      stall_at_ms = Reactor::monotonic_ms() + after;
      stall_for_ms = duration;
    }
  }
#endif
  while (!all_stopped()) {
    reactor.run_once(100);
#if defined(MF_TEST_HOOKS)
    if (stall_at_ms != 0 && reactor.now_ms() >= stall_at_ms) {
      MF_LOG_WARN("test hook: shard {} stalls for {} ms", id, stall_for_ms);
      ::usleep(static_cast<useconds_t>(stall_for_ms * 1000));
      MF_LOG_WARN("test hook: shard {} resumes", id);
      stall_at_ms = 0;
    }
#endif
  }
  // Services die on their own shard: their destructors touch shard state.
  services_[id].clear();
  MF_LOG_DEBUG("shard {}: stopped", id);
}

std::expected<void, std::string> ShardGroup::run(const ShardGroupOptions& options,
                                                 const ShardServiceFactory& factory,
                                                 const std::function<void()>& on_ready) {
  options_ = options;
  uint32_t n = options.shard_count;
  if (n == 0 || n > 256) return std::unexpected(std::string("shards: count must be 1..256"));
  for (uint32_t i = 0; i < n; ++i) shards_.push_back(std::unique_ptr<Shard>(new Shard(*this, i)));
  services_.resize(n);
  for (uint32_t i = 0; i < n; ++i) shards_[i]->overflow_.resize(n);
  for (uint32_t i = 0; i < n * n; ++i)
    mailboxes_.push_back(std::make_unique<SpscQueue<ShardMessage>>(options.pair_capacity(n)));
  wake_flags_ = std::make_unique<WakeFlag[]>(n);
  stop_requested_ = std::make_unique<std::atomic<bool>[]>(n);
  ring_fds_.assign(n, -1);

  std::vector<std::thread> threads;
  threads.reserve(n);
  for (uint32_t i = 0; i < n; ++i) threads.emplace_back([this, i, &factory] { shard_main(i, factory); });
  for (uint32_t seen = started_.load(); seen < n; seen = started_.load()) started_.wait(seen);
  if (failed_.load() > 0) abort_start_.store(true);
  go_.store(true);
  go_.notify_all();
  if (!abort_start_.load() && on_ready) on_ready();
  for (auto& t : threads) t.join();
  // Messages posted to a shard after it stopped were never delivered, nor
  // were obligations still waiting for room.
  for (auto& shard : shards_) {
    for (auto& waiting : shard->overflow_) {
      for (const ShardMessage& m : waiting)
        if (options_.dispose_undelivered) options_.dispose_undelivered(m);
      waiting.clear();
    }
  }
  for (auto& mailbox : mailboxes_) {
    mailbox->drain(
        [&](const ShardMessage& m) {
          if (options_.dispose_undelivered) options_.dispose_undelivered(m);
        },
        SIZE_MAX);
  }
  services_.clear();  // only those of shards that failed to start remain
  shards_.clear();
  if (abort_start_.load()) return std::unexpected(first_error_);
  return {};
}

}  // namespace mf
