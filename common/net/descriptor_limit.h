#pragma once
// The per-process descriptor limit bounds each ring's direct-descriptor
// table (the kernel checks a registration against RLIMIT_NOFILE), so every
// binary raises its soft limit to the hard one at start (always allowed) and
// sizes its rings from the result.
#include <cstdint>

namespace mf {

// Raises the soft RLIMIT_NOFILE to the hard limit and returns the soft limit
// now in force, capped at io_uring's table maximum (2^20).
uint32_t raise_descriptor_limit();

}  // namespace mf
