#pragma once
// Shard 0's gathering of one snapshot per shard for the admin endpoints
// (/metrics, JSON APIs): requests arriving while a round is under way share
// it; each round has a number that the snapshots carry back, so a late part
// of an abandoned round (a shard's mailbox was full) is never merged into a
// later one. What a part holds and how it is rendered is the service's.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/runtime/reactor.h"

namespace mf {

template <class Part, class Kind>
class ShardCollection {
 public:
  struct Waiter {
    SocketHandle connection;
    Kind kind;
    bool head_only;  // a HEAD request: the answer without its body
  };

  // Queues a request. True when it starts a new round: the caller then asks
  // every shard for its part, tagged with round().
  bool add_waiter(const Waiter& waiter) {
    waiters_.push_back(waiter);
    if (waiters_.size() > 1) return false;
    parts_.clear();
    ++round_;
    return true;
  }
  uint64_t round() const { return round_; }

  // A shard's part. True when the current round is complete (`shards`
  // parts): take_parts() to render, take_waiters() to answer.
  bool add_part(std::unique_ptr<Part> part, uint64_t round, size_t shards) {
    if (waiters_.empty() || round != round_) return false;  // late: its round was abandoned
    parts_.push_back(std::move(part));
    return parts_.size() == shards;
  }
  std::vector<std::unique_ptr<Part>> take_parts() {
    std::vector<std::unique_ptr<Part>> taken;
    taken.swap(parts_);
    return taken;
  }

  // The requests of the round (complete or abandoned): the round is over.
  std::vector<Waiter> take_waiters() {
    std::vector<Waiter> taken;
    taken.swap(waiters_);
    parts_.clear();
    return taken;
  }

 private:
  std::vector<Waiter> waiters_;
  std::vector<std::unique_ptr<Part>> parts_;
  uint64_t round_ = 0;
};

}  // namespace mf
