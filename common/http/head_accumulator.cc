#include "common/http/head_accumulator.h"

#include <algorithm>

#include "common/codec/http_request_head.h"

namespace mf::http {

namespace {

std::string_view as_text(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace

HeadProgress find_held_head(const ByteQueue& held, std::span<uint8_t> scratch, size_t max_head_bytes) {
  const size_t size = held.size();
  held.copy_to(scratch);
  std::string_view buffered = as_text(scratch.first(size));
  const size_t end = find_head_end(buffered);
  if (end != 0 && end <= max_head_bytes) return {HeadStatus::complete, buffered.substr(0, end), {}};
  return {size > max_head_bytes ? HeadStatus::too_large : HeadStatus::need_more, {}, {}};
}

HeadProgress accumulate_head(ByteQueue& held, BlockPool& pool, std::span<uint8_t> read, std::span<uint8_t> scratch,
                             size_t max_head_bytes) {
  if (held.empty()) {
    const size_t end = find_head_end(as_text(read));
    if (end != 0 && end <= max_head_bytes) return {HeadStatus::complete, as_text(read.first(end)), read.subspan(end)};
  }
  const size_t cap = max_head_bytes + 4;
  const size_t before = held.size();
  const size_t take = std::min(cap - std::min(before, cap), read.size());
  if (!held.append(pool, read.first(take))) {
    held.clear(pool);
    return {HeadStatus::out_of_memory, {}, {}};
  }
  HeadProgress found = find_held_head(held, scratch, max_head_bytes);
  if (found.status == HeadStatus::need_more) return found;
  held.clear(pool);
  // The head ends in this read (what was held before had no end): what
  // follows it in the read is the rest.
  if (found.status == HeadStatus::complete) {
    const size_t consumed = found.head.size() > before ? found.head.size() - before : 0;
    found.rest = read.subspan(std::min(read.size(), consumed));
  }
  return found;
}

}  // namespace mf::http
