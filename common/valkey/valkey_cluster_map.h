#pragma once
// What a Valkey (or Redis 7) Cluster client needs to route a command: which
// primary serves each of the 16384 hash slots (read from a CLUSTER SHARDS
// reply), and the redirections a node answers with when it does not serve
// a key's slot (MOVED: the slot lives elsewhere now, refresh the map; ASK:
// the slot is migrating, send this one command there after ASKING). Pure:
// no IO; the reply is checked, not trusted (a map that does not parse is
// refused whole and the caller keeps the previous one). docs/cluster.md,
// "Mapping onto Valkey Cluster".
#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/codec/resp_codec.h"
#include "common/valkey/valkey_keyslot.h"

namespace mf::valkey {

struct ClusterPrimary {
  std::string address;  // numeric "IP:PORT" or "[IPv6]:PORT", as the client's Config::address
  std::string id;       // the node id (40 hex digits in Redis 7)
  bool online = true;   // health "online" (false: "failed" or "loading")
};

class SlotMap {
 public:
  static constexpr uint16_t unassigned = UINT16_MAX;

  // From a CLUSTER SHARDS reply (RESP2: each shard and each node a flat
  // key/value array). Each shard's node with role "master" (or "primary")
  // serves the shard's slot ranges; replicas are not routed to. Refused:
  // anything not shaped like that, a slot range out of 0..16383 or
  // reversed, a slot claimed by two shards, a shard with slots and no
  // primary, a primary without ip or port, more than max_primaries.
  static std::expected<SlotMap, std::string> from_shards(const resp::ReplyView& reply, size_t max_primaries);

  // Index into primaries() of the node serving `slot`, or unassigned.
  uint16_t node_of_slot(uint16_t slot) const { return owner_[slot & (cluster_slots - 1)]; }
  uint16_t node_of_key(std::string_view key) const { return node_of_slot(key_slot(key)); }
  const std::vector<ClusterPrimary>& primaries() const { return primaries_; }
  // Slots no primary serves (0 for a healthy cluster).
  size_t unassigned_slots() const;

 private:
  std::array<uint16_t, cluster_slots> owner_{};
  std::vector<ClusterPrimary> primaries_;
};

// A redirection error reply: "MOVED <slot> <host>:<port>" or "ASK <slot>
// <host>:<port>". The host may be empty (Redis answers ":6380" when it does
// not know how it is reached): the caller then keeps the host of the node
// that answered. Views into `error_text`.
struct Redirect {
  enum class Kind : uint8_t { moved, ask };
  Kind kind = Kind::moved;
  uint16_t slot = 0;
  std::string_view host;  // without brackets for IPv6
  uint16_t port = 0;
};
std::optional<Redirect> parse_redirect(std::string_view error_text);

}  // namespace mf::valkey
