#include "common/valkey/valkey_cluster_map.h"

#include <algorithm>
#include <charconv>

namespace mf::valkey {
namespace {

// The value of `name` in a flat key/value array, or nullopt.
std::optional<resp::ReplyView> field(const resp::ReplyView& map, std::string_view name) {
  if (map.type() != resp::ReplyType::array || map.size() % 2 != 0) return std::nullopt;
  for (size_t i = 0; i + 1 < map.size(); i += 2) {
    resp::ReplyView key = map[i];
    if ((key.type() == resp::ReplyType::string || key.type() == resp::ReplyType::status) && key.text() == name)
      return map[i + 1];
  }
  return std::nullopt;
}

std::string_view text_field(const resp::ReplyView& map, std::string_view name) {
  auto value = field(map, name);
  return value && value->type() == resp::ReplyType::string ? value->text() : std::string_view();
}

template <class T>
bool parse_number(std::string_view text, T& out) {
  if (text.empty()) return false;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::expected<SlotMap, std::string> SlotMap::from_shards(const resp::ReplyView& reply, size_t max_primaries) {
  if (reply.type() != resp::ReplyType::array) return std::unexpected(std::string("CLUSTER SHARDS: not an array"));
  SlotMap map;
  map.owner_.fill(unassigned);
  for (size_t s = 0; s < reply.size(); ++s) {
    resp::ReplyView shard = reply[s];
    auto slots = field(shard, "slots");
    auto nodes = field(shard, "nodes");
    if (!slots || !nodes || slots->type() != resp::ReplyType::array || nodes->type() != resp::ReplyType::array ||
        slots->size() % 2 != 0)
      return std::unexpected(std::string("CLUSTER SHARDS: a shard without slots or nodes"));
    if (slots->size() == 0) continue;  // a shard serving nothing (an empty primary, a node being added)
    std::optional<resp::ReplyView> primary;
    for (size_t n = 0; n < nodes->size(); ++n) {
      std::string_view role = text_field((*nodes)[n], "role");
      if (role == "master" || role == "primary") {
        if (primary) return std::unexpected(std::string("CLUSTER SHARDS: a shard with two primaries"));
        primary = (*nodes)[n];
      }
    }
    if (!primary) return std::unexpected(std::string("CLUSTER SHARDS: a shard with slots and no primary"));
    std::string_view ip = text_field(*primary, "ip");
    auto port = field(*primary, "port");
    if (ip.empty() || !port || port->type() != resp::ReplyType::integer || port->integer() <= 0 ||
        port->integer() > 65535)
      return std::unexpected(std::string("CLUSTER SHARDS: a primary without ip or port"));
    if (map.primaries_.size() >= max_primaries || map.primaries_.size() >= unassigned)
      return std::unexpected("CLUSTER SHARDS: more than " + std::to_string(max_primaries) + " primaries");
    ClusterPrimary p;
    bool v6 = ip.find(':') != std::string_view::npos;
    p.address.append(v6 ? "[" : "").append(ip).append(v6 ? "]:" : ":").append(std::to_string(port->integer()));
    p.id.assign(text_field(*primary, "id"));
    p.online = text_field(*primary, "health") == "online";
    const uint16_t index = static_cast<uint16_t>(map.primaries_.size());
    map.primaries_.push_back(std::move(p));
    for (size_t r = 0; r < slots->size(); r += 2) {
      resp::ReplyView first = (*slots)[r];
      resp::ReplyView last = (*slots)[r + 1];
      if (first.type() != resp::ReplyType::integer || last.type() != resp::ReplyType::integer ||
          first.integer() < 0 || last.integer() >= cluster_slots || first.integer() > last.integer())
        return std::unexpected(std::string("CLUSTER SHARDS: a slot range out of 0..16383"));
      for (int64_t slot = first.integer(); slot <= last.integer(); ++slot) {
        if (map.owner_[static_cast<size_t>(slot)] != unassigned)
          return std::unexpected("CLUSTER SHARDS: slot " + std::to_string(slot) + " claimed twice");
        map.owner_[static_cast<size_t>(slot)] = index;
      }
    }
  }
  return map;
}

size_t SlotMap::unassigned_slots() const {
  return static_cast<size_t>(std::count(owner_.begin(), owner_.end(), unassigned));
}

std::optional<Redirect> parse_redirect(std::string_view error_text) {
  Redirect r;
  if (error_text.starts_with("MOVED ")) {
    r.kind = Redirect::Kind::moved;
    error_text.remove_prefix(6);
  } else if (error_text.starts_with("ASK ")) {
    r.kind = Redirect::Kind::ask;
    error_text.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  size_t space = error_text.find(' ');
  if (space == std::string_view::npos || !parse_number(error_text.substr(0, space), r.slot) ||
      r.slot >= cluster_slots)
    return std::nullopt;
  std::string_view address = error_text.substr(space + 1);
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || !parse_number(address.substr(colon + 1), r.port) || r.port == 0)
    return std::nullopt;
  r.host = address.substr(0, colon);
  if (r.host.starts_with('[')) {
    if (!r.host.ends_with(']') || r.host.size() < 3) return std::nullopt;
    r.host = r.host.substr(1, r.host.size() - 2);
  }
  if (r.host.find(' ') != std::string_view::npos) return std::nullopt;
  return r;
}

}  // namespace mf::valkey
