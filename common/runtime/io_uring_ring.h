#pragma once
// One io_uring per shard, created on the shard's own thread (SINGLE_ISSUER
// binds the ring to its creator). Creation falls back to fewer setup flags on
// older kernels; the opcodes the runtime depends on are probed once at start so
// a missing feature fails start-up with one clear line instead of failing
// connections later.
#include <liburing.h>

#include <cstdint>
#include <expected>
#include <string>

namespace mf {

struct RingOptions {
  uint32_t sq_entries = 4096;
  uint32_t cq_entries = 32768;  // multishot recv/accept post many CQEs per SQE
  // Size of the sparse direct-descriptor table: the most sockets this ring
  // can hold at once. Bounded by RLIMIT_NOFILE (the kernel's rule), per ring.
  uint32_t fixed_files = 1024;
};

// What setup flags the kernel accepted (reported at start-up).
struct RingSetupReport {
  uint32_t flags = 0;
  bool defer_taskrun = false;
  bool single_issuer = false;
};

class IoUringRing {
 public:
  IoUringRing() = default;
  IoUringRing(const IoUringRing&) = delete;
  IoUringRing& operator=(const IoUringRing&) = delete;
  ~IoUringRing();

  // Creates the ring (trying SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG|
  // SUBMIT_ALL|COOP_TASKRUN first) and registers the sparse file table.
  // The error is one line naming the cause and, for EPERM/ENOSYS, the fix.
  std::expected<RingSetupReport, std::string> init(const RingOptions& options);

  io_uring* native() { return &ring_; }
  int ring_fd() const { return ring_.ring_fd; }
  uint32_t fixed_file_count() const { return fixed_files_; }
  bool initialised() const { return initialised_; }

  // Returns a free SQE, submitting queued ones first when the SQ is full.
  // Never returns nullptr: a ring whose SQ cannot be drained is an impossible
  // state (submission only fails on programming errors) and aborts.
  io_uring_sqe* acquire_sqe();
  // Submits what is queued if fewer than `count` SQEs are free, so a linked
  // chain of `count` SQEs acquired next is never split by acquire_sqe().
  void reserve_sqes(unsigned count);

 private:
  io_uring ring_{};
  uint32_t fixed_files_ = 0;
  bool initialised_ = false;
};

// Checks, once per process, that the kernel supports every opcode and feature
// the runtime uses. Error: one line listing what is missing.
std::expected<void, std::string> probe_io_uring_support();

}  // namespace mf
