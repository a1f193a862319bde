// An HTTP head (a request's or a response's) that may arrive over several
// reads: the server's request head, the ingress tunnel's peek at it, and
// mf-load's 101 response (docs/architecture.md, "The WebSocket framing
// path"). The bytes wait in a shard's pool blocks (capped, counted against the
// pool like any other held bytes); the head is handed out whole and
// contiguous, in place when one read holds it. No I/O, no allocation beyond
// the pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/runtime/block_pool.h"

namespace mf::http {

enum class HeadStatus : uint8_t {
  complete,       // `head` (and `rest`) are set; nothing is held any more
  need_more,      // the bytes so far are held: feed the next read
  too_large,      // no blank line within max_head_bytes (431 for a request); nothing is held
  out_of_memory,  // the pool refused a block; nothing is held
};

struct HeadProgress {
  HeadStatus status = HeadStatus::need_more;
  // complete: the head through its blank line, in the read or in the scratch.
  std::string_view head;
  // complete: the bytes of this read after the head (a client that
  // pipelined its first frame).
  std::span<uint8_t> rest;
};

// Looks for the head in what `held` holds, copied to `scratch`
// (scratch.size() >= held.size()); consumes nothing. complete (head in
// scratch, rest empty), need_more, or too_large when held has more than
// max_head_bytes without a head end or the end lies past it.
HeadProgress find_held_head(const ByteQueue& held, std::span<uint8_t> scratch, size_t max_head_bytes);

// Feeds one read. With nothing held before, a head entirely in the read is
// returned in place (no copy). Otherwise the read is appended to `held` (up
// to max_head_bytes + 4 bytes in all: the limit and what may complete a
// terminator) and the head is looked for there, copied to `scratch`
// (scratch.size() >= max_head_bytes + 4); the bytes of the read past the
// head are `rest`. Once complete, too_large or out_of_memory, `held` is
// empty.
HeadProgress accumulate_head(ByteQueue& held, BlockPool& pool, std::span<uint8_t> read, std::span<uint8_t> scratch,
                             size_t max_head_bytes);

}  // namespace mf::http
