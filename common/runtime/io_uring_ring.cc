#include "common/runtime/io_uring_ring.h"

#include <fmt/core.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG (1U << 9)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

namespace mf {
namespace {

std::string refusal_hint(int err) {
  if (err == EPERM)
    return "io_uring is not permitted (check sysctl kernel.io_uring_disabled=0 and that the "
           "seccomp profile of the container or systemd unit allows io_uring_setup)";
  if (err == ENOSYS) return "this kernel has no io_uring (Linux 6.1 or newer is required)";
  return std::strerror(err);
}

}  // namespace

IoUringRing::~IoUringRing() {
  if (initialised_) io_uring_queue_exit(&ring_);
}

std::expected<RingSetupReport, std::string> IoUringRing::init(const RingOptions& options) {
  // Best first: DEFER_TASKRUN runs completions only when this thread enters
  // the kernel to wait, so no IPI interrupts the shard mid-batch.
  static constexpr uint32_t attempts[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
          IORING_SETUP_SUBMIT_ALL,
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
      IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL,
      IORING_SETUP_SUBMIT_ALL,
      0,
  };
  int last_error = 0;
  for (uint32_t flags : attempts) {
    io_uring_params params{};
    params.flags = flags | IORING_SETUP_CQSIZE;
    params.cq_entries = options.cq_entries;
    int rc = io_uring_queue_init_params(options.sq_entries, &ring_, &params);
    if (rc == 0) {
      initialised_ = true;
      RingSetupReport report;
      report.flags = flags;
      report.defer_taskrun = (flags & IORING_SETUP_DEFER_TASKRUN) != 0;
      report.single_issuer = (flags & IORING_SETUP_SINGLE_ISSUER) != 0;
      rc = io_uring_register_files_sparse(&ring_, options.fixed_files);
      if (rc < 0) {
        return std::unexpected(fmt::format(
            "io_uring: cannot register a direct-descriptor table of {} entries: {} (the table "
            "is bounded by RLIMIT_NOFILE per ring)",
            options.fixed_files, std::strerror(-rc)));
      }
      fixed_files_ = options.fixed_files;
      return report;
    }
    last_error = -rc;
    if (last_error == EPERM || last_error == ENOSYS) break;
  }
  return std::unexpected("io_uring: cannot create a ring: " + refusal_hint(last_error));
}

io_uring_sqe* IoUringRing::acquire_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe != nullptr) return sqe;
  int rc = io_uring_submit(&ring_);
  sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    fmt::print(stderr, "io_uring: submission queue stuck (submit returned {})\n", rc);
    std::abort();
  }
  return sqe;
}

void IoUringRing::reserve_sqes(unsigned count) {
  if (io_uring_sq_space_left(&ring_) < count) io_uring_submit(&ring_);
}

std::expected<void, std::string> probe_io_uring_support() {
  io_uring ring{};
  int rc = io_uring_queue_init(8, &ring, 0);
  if (rc < 0) return std::unexpected("io_uring: cannot create a ring: " + refusal_hint(-rc));
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  if (probe == nullptr) {
    io_uring_queue_exit(&ring);
    return std::unexpected(std::string("io_uring: the kernel cannot report its opcodes (too old)"));
  }
  struct Needed {
    int op;
    const char* name;
  };
  static constexpr Needed needed[] = {
      {IORING_OP_ACCEPT, "ACCEPT"},         {IORING_OP_RECV, "RECV"},
      {IORING_OP_SEND, "SEND"},             {IORING_OP_SENDMSG, "SENDMSG"},
      {IORING_OP_CLOSE, "CLOSE"},
      {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}, {IORING_OP_SHUTDOWN, "SHUTDOWN"},
      {IORING_OP_MSG_RING, "MSG_RING"},     {IORING_OP_READ, "READ"},
      {IORING_OP_SOCKET, "SOCKET"},         {IORING_OP_CONNECT, "CONNECT"},
      {IORING_OP_TIMEOUT, "TIMEOUT"},
  };
  std::string missing;
  for (const Needed& n : needed) {
    if (!io_uring_opcode_supported(probe, n.op)) {
      if (!missing.empty()) missing += ", ";
      missing += n.name;
    }
  }
  io_uring_free_probe(probe);
  // Multishot recv with provided-buffer rings and direct accept need 6.0+;
  // a kernel that has MSG_RING and SOCKET (5.18+) but lacks them fails at
  // the first arm, which the reactor reports; the features word catches the
  // rest here.
  unsigned features = ring.features;
  io_uring_queue_exit(&ring);
  if (!(features & IORING_FEAT_NODROP)) {
    if (!missing.empty()) missing += ", ";
    missing += "FEAT_NODROP";
  }
  // The reactor reuses a SENDMSG's msghdr and iovecs once the SQE has been
  // submitted (reactor.h).
  if (!(features & IORING_FEAT_SUBMIT_STABLE)) {
    if (!missing.empty()) missing += ", ";
    missing += "FEAT_SUBMIT_STABLE";
  }
  if (!(features & IORING_FEAT_EXT_ARG)) {
    if (!missing.empty()) missing += ", ";
    missing += "FEAT_EXT_ARG";
  }
  if (!missing.empty())
    return std::unexpected("io_uring: this kernel lacks " + missing + " (Linux 6.1 or newer is required)");
  return {};
}

}  // namespace mf
