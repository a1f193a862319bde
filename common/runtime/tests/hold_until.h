#pragma once
// Blocks the calling shard until `done()` or 30 s (then records a timeout):
// holding a consumer is how the shard tests fill a mailbox without timing.
// The 30 s only bound a defect; no result depends on them.
#include <atomic>
#include <chrono>
#include <thread>

namespace mf::test {

template <class Done>
void hold_until(Done done, std::atomic<bool>& timed_out) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      timed_out.store(true);
      return;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

}  // namespace mf::test
