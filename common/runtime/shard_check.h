#pragma once
// Rule 2: one shard owns its ring, buffers, connections and state; other
// shards reach it only by message. Debug builds (and -Dshard_checks=true)
// assert it wherever shard-owned state is touched; release builds pay nothing.
#include <cstdint>
#include <cstdlib>

namespace mf {

inline constexpr uint32_t no_shard = UINT32_MAX;

// The shard whose loop runs on this thread (no_shard on other threads).
inline thread_local uint32_t current_shard_id = no_shard;

[[noreturn]] void shard_ownership_violation(uint32_t owner, const char* where);

}  // namespace mf

#if defined(MF_SHARD_CHECKS)
#define MF_ASSERT_ON_SHARD(owner)                                      \
  do {                                                                 \
    if (::mf::current_shard_id != (owner))                             \
      ::mf::shard_ownership_violation((owner), __PRETTY_FUNCTION__);   \
  } while (0)
#else
#define MF_ASSERT_ON_SHARD(owner) ((void)0)
#endif
