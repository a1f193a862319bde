#pragma once
// A first-in-first-out list of slots (indices into a table the caller owns),
// oldest first (common/base/intrusive_list.h: O(1), no allocation). Servers
// keep their connections that are not yet admitted in one, so that when the
// descriptor table nears full the oldest of them can be closed to keep a
// reserve for admitted clients (docs/security.md, "Connection admission").
// Each member carries its own SlotFifo::Links; `links_of(slot)` returns them.
#include <cstdint>

#include "common/base/intrusive_list.h"

namespace mf {

using SlotFifo = IntrusiveList<uint32_t, UINT32_MAX>;

}  // namespace mf
