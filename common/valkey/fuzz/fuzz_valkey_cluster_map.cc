// Arbitrary bytes as what a cluster node answers: read as RESP replies, each
// either builds a slot map (every slot then unassigned or served by a listed
// primary, each primary's address non-empty) or is refused; an error reply's
// text parsed as a redirection has its slot in range and a non-zero port, and
// the host is a substring of the text. Aborts when an invariant breaks.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "common/codec/resp_codec.h"
#include "common/valkey/valkey_cluster_map.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_redirect(std::string_view text) {
  auto r = mf::valkey::parse_redirect(text);
  if (!r) return;
  check(r->slot < mf::valkey::cluster_slots && r->port != 0);
  check(r->host.empty() || (r->host.data() >= text.data() && r->host.data() + r->host.size() <= text.data() + text.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mf;
  check_redirect(std::string_view(reinterpret_cast<const char*>(data), size));
  resp::ReplyReader reader(resp::ReaderLimits{.max_reply_bytes = 1 << 16, .max_elements = 4096});
  if (!reader.feed(std::span(data, size))) return 0;
  for (int i = 0; i < 8; ++i) {
    auto reply = reader.next();
    if (!reply || !reply->has_value()) return 0;
    const resp::ReplyView& r = **reply;
    if (r.is_error()) check_redirect(r.text());
    auto map = valkey::SlotMap::from_shards(r, 8);
    if (!map) continue;
    check(map->primaries().size() <= 8);
    for (const auto& p : map->primaries()) check(!p.address.empty());
    size_t unassigned = 0;
    for (uint32_t slot = 0; slot < valkey::cluster_slots; ++slot) {
      uint16_t node = map->node_of_slot(static_cast<uint16_t>(slot));
      if (node == valkey::SlotMap::unassigned) {
        ++unassigned;
        continue;
      }
      check(node < map->primaries().size());
    }
    check(unassigned == map->unassigned_slots());
  }
  return 0;
}
