// Arbitrary bytes as a CMAF segment: the splitter returns chunks that tile
// the input exactly (contiguous from byte 0, none empty, sizes adding up to
// the input's size), none when there is no fragment, or one line. Aborts
// when an invariant breaks.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "origin/cmaf_chunks.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto chunks = mf::origin::split_cmaf_chunks(std::span<const uint8_t>(data, size));
  if (!chunks) {
    check(!chunks.error().empty() && chunks.error().find('\n') == std::string::npos);
    return 0;
  }
  check(chunks->size() <= mf::origin::max_chunks_per_segment);
  if (chunks->empty()) return 0;  // well-formed boxes without a fragment
  uint64_t next = 0;
  for (const auto& chunk : *chunks) {
    check(chunk.offset == next && chunk.size >= 16);  // at least a moof and an mdat header
    next += chunk.size;
  }
  check(next == size);
  return 0;
}
