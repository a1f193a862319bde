#pragma once
// A clock that system tests move by hand (test builds only, -Dtest_hooks=true).
//
// With MF_TEST_CLOCK_FILE=PATH in the environment, Reactor::monotonic_ms()
// (and so every shard's now_ms(), its timers and its token buckets) returns
// the number of milliseconds written in PATH instead of CLOCK_MONOTONIC.
// Time then passes only when the test writes a larger number: a rate limit
// cannot refill while a slow test client is still sending its burst, and a
// 30 s timeout takes no real time. tests/system/edge_process.py's
// ManualClock writes the file. The value never goes backwards (a smaller or
// unreadable value keeps the last one). Production builds do not compile it.
#include <cstdint>
#include <optional>

namespace mf {

#if defined(MF_TEST_HOOKS)
// The manual clock's value, or nullopt when MF_TEST_CLOCK_FILE is not set.
std::optional<uint64_t> test_clock_ms();
#endif

}  // namespace mf
