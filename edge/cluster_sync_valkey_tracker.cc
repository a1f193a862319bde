// ValkeyClusterSync, tracker swarms across edges (docs/cluster.md, "Tracker
// swarms across edges"): presence of the swarms' members in Valkey and a
// sample of a swarm's members on other edges; what offers and answers carry is
// the host's (edge/edge_shard_cluster.cc).
#include <algorithm>

#include "common/base/keyed_hash.h"
#include "edge/cluster_keys.h"
#include "edge/cluster_sync_valkey.h"
#include "edge/cluster_sync_valkey_support.h"

namespace mf::edge {

using namespace cluster_support;

// ---- tracker swarms across edges --------------------------------------------------
// (docs/cluster.md, "Tracker swarms across edges"). A swarm's members are
// registered by the shard that owns its info_hash on their edge, in
// P{t:<info_hash hex>}:idx/rec/seed with the tracker scripts, which refuse a
// peer_id another live edge holds in the swarm and return the swarm's counts
// on every edge (cached by the swarm's shard for its replies). Offers
// that found no member here go to the swarm's members on other edges with the
// fewest offers from other edges (counted in Valkey), published to the shard
// that owns the swarm there; each edge
// records the offer, so an answer is checked where it is given and again
// where it arrives.

namespace {

std::string_view id_bytes(const TrackerId& id) { return {reinterpret_cast<const char*>(id.data()), id.size()}; }

}  // namespace

std::vector<std::string_view>& ValkeyClusterSync::tracker_swarm_keys(const TrackerId& info_hash) {
  const std::string& prefix = settings_.key_prefix;
  std::string_view hex = cluster::hex_id(tracker_hex_scratch_, id_bytes(info_hash));
  argv_scratch_.assign({"4"sv, cluster::tracker_index_key(key_scratch_, prefix, hex),
                        cluster::tracker_record_key(key2_scratch_, prefix, hex),
                        cluster::tracker_seeders_key(key3_scratch_, prefix, hex),
                        cluster::tracker_load_key(key4_scratch_, prefix, hex)});
  return argv_scratch_;
}

void ValkeyClusterSync::encode_tracker_record(std::string& out, const PeerLocation& who) const {
  // The shard is the swarm's (where offers to the member are published);
  // the connection makes each registration's record its own, so a late
  // removal leaves a successor's record alone.
  cluster::encode_swarm(out, cluster::SwarmRecord{edge_id_, shard_, who.slot, who.generation, true,
                                                  -1, {}, {}, "{}"});
}

bool ValkeyClusterSync::tracker_write(Script which, const TrackerId& info_hash, std::span<const std::string_view> argv) {
  uint32_t slot;
  if (tracker_writes_free_.empty()) {
    slot = static_cast<uint32_t>(tracker_writes_.size());
    tracker_writes_.emplace_back();
  } else {
    slot = tracker_writes_free_.back();
    tracker_writes_free_.pop_back();
  }
  tracker_writes_[slot] = info_hash;
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus status, const resp::ReplyView* reply) {
                            static_cast<ValkeyClusterSync*>(self)->on_tracker_written(id, status, reply);
                          },
                          this, slot};
  if (script(which, argv, done)) return true;
  tracker_writes_free_.push_back(slot);
  return false;
}

void ValkeyClusterSync::tracker_register(const TrackerId& info_hash, const TrackerId& peer_id, const PeerLocation& who,
                                         bool seeder) {
  tracker_register_one(TrackerMemberRef{info_hash, peer_id, who, seeder}, {});
}

void ValkeyClusterSync::tracker_register_one(const TrackerMemberRef& member, std::string_view stale) {
  const ClusterSettings& c = settings_;
  uint64_t now = unix_ms();
  Decimal ttl(c.presence_ttl_ms);
  Decimal expiry(now + c.presence_ttl_ms);
  Decimal now_text(now);
  encode_tracker_record(value_scratch_, member.who);
  std::vector<std::string_view>& argv = tracker_swarm_keys(member.info_hash);
  argv.insert(argv.end(), {expiry.view(), ttl.view(), now_text.view(), edge_field_,
                           cluster::hex_id(tracker_hex2_scratch_, id_bytes(member.peer_id)), value_scratch_,
                           member.seeder ? "1"sv : "0"sv, stale});
  tracker_write(Script::tracker_register, member.info_hash, argv);
}

void ValkeyClusterSync::tracker_unregister(const TrackerId& info_hash, const TrackerId& peer_id,
                                           const PeerLocation& who) {
  encode_tracker_record(value_scratch_, who);
  Decimal now(unix_ms());
  std::vector<std::string_view>& argv = tracker_swarm_keys(info_hash);
  argv.insert(argv.end(), {cluster::hex_id(tracker_hex2_scratch_, id_bytes(peer_id)), value_scratch_, now.view()});
  tracker_write(Script::tracker_unregister, info_hash, argv);
}

void ValkeyClusterSync::on_tracker_written(uint64_t cookie, valkey::CommandStatus status,
                                           const resp::ReplyView* reply) {
  if (cookie >= tracker_writes_.size()) return;
  const TrackerId info_hash = tracker_writes_[cookie];
  tracker_writes_free_.push_back(static_cast<uint32_t>(cookie));
  if (status != valkey::CommandStatus::reply || reply->type() != resp::ReplyType::array || reply->size() < 2) return;
  auto count = [](const resp::ReplyView& r) {
    return static_cast<uint32_t>(std::clamp<int64_t>(r.integer(), 0, UINT32_MAX));
  };
  host_.tracker_counts(info_hash, count((*reply)[0]), count((*reply)[1]));
  // Members another edge holds (docs/cluster.md, "Tracker swarms across
  // edges"): refused, unless that edge is dead (its liveness expired before
  // its records): then this member replaces its record. Until this shard
  // has read the live edges once, every holder counts as alive.
  const bool liveness_known = live_edges_.contains(edge_id_);
  for (size_t i = 2; i + 1 < reply->size(); i += 2) {
    TrackerId peer_id;
    if (!cluster::unhex_id((*reply)[i].text(), peer_id)) continue;
    std::optional<TrackerMemberRef> member = host_.tracker_member(info_hash, peer_id);
    if (!member) continue;
    std::string_view holder_text = (*reply)[i + 1].text();
    auto holder = cluster::decode_swarm(holder_text);
    if (holder && liveness_known && !live_edges_.contains(holder->edge_id)) {
      stale_scratch_.assign(holder_text);
      tracker_register_one(*member, stale_scratch_);
      continue;
    }
    host_.tracker_refused(*member);
  }
}

void ValkeyClusterSync::tracker_refresh(bool all, uint32_t part, std::string_view expiry, std::string_view ttl) {
  tracker_refresh_scratch_.clear();
  // Members come swarm by swarm; a swarm is refreshed on the tick of its
  // info_hash.
  host_.tracker_members(tracker_members_all_);
  for (const TrackerMemberRef& member : tracker_members_all_)
    if (all || keyed_hash(id_bytes(member.info_hash)) % refresh_parts == part) tracker_refresh_scratch_.push_back(member);
  Decimal now(unix_ms());
  size_t i = 0;
  while (i < tracker_refresh_scratch_.size()) {
    const TrackerId info_hash = tracker_refresh_scratch_[i].info_hash;
    batch_scratch_.resize(2 * register_batch);
    std::vector<std::string_view>& argv = tracker_swarm_keys(info_hash);
    argv.insert(argv.end(), {expiry, ttl, now.view(), edge_field_});
    size_t n = 0;
    for (; i < tracker_refresh_scratch_.size() && n < register_batch; ++i, ++n) {
      const TrackerMemberRef& member = tracker_refresh_scratch_[i];
      if (member.info_hash != info_hash) break;
      argv.push_back(cluster::hex_id(batch_scratch_[2 * n], id_bytes(member.peer_id)));
      encode_tracker_record(batch_scratch_[2 * n + 1], member.who);
      argv.push_back(batch_scratch_[2 * n + 1]);
      argv.push_back(member.seeder ? "1"sv : "0"sv);
      argv.push_back(std::string_view{});
    }
    // The reply's counts are the swarm's at this refresh: the staleness of
    // the counts in replies is one refresh period.
    tracker_write(Script::tracker_register, info_hash, argv);
  }
}

void ValkeyClusterSync::tracker_offers(std::unique_ptr<TrackerPacket> m, size_t first) {
  if (!ready()) return;  // alone: the offers found nobody, as on one edge
  uint64_t cookie = ++cookie_;
  // As many recipients as offers are left: each one the script returns is
  // counted as offered to (the order of the fewest offers first).
  Decimal wanted(m->offer_ids.size() - first);
  Decimal now(unix_ms());
  std::vector<std::string_view>& argv = tracker_swarm_keys(m->info_hash);
  argv.insert(argv.end(), {now.view(), wanted.view(), edge_field_,
                           cluster::hex_id(tracker_hex2_scratch_, id_bytes(m->peer_id))});
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus status, const resp::ReplyView* reply) {
                            static_cast<ValkeyClusterSync*>(self)->on_tracker_candidates(id, status, reply);
                          },
                          this, cookie};
  if (script(Script::tracker_query, argv, done)) tracker_queries_.emplace(cookie, TrackerQuery{std::move(m), first});
}

void ValkeyClusterSync::on_tracker_candidates(uint64_t cookie, valkey::CommandStatus status,
                                              const resp::ReplyView* reply) {
  auto it = tracker_queries_.find(cookie);
  if (it == tracker_queries_.end()) return;
  TrackerQuery query = std::move(it->second);
  tracker_queries_.erase(it);
  if (status != valkey::CommandStatus::reply || reply->type() != resp::ReplyType::array) return;
  tracker_members_scratch_.clear();
  for (size_t i = 0; i + 1 < reply->size(); i += 2) {
    auto record = cluster::decode_swarm((*reply)[i + 1].text());
    // Members of this edge were offered by the local matching already (the
    // script leaves them out too); an edge whose liveness expired is dead.
    if (!record || record->edge_id == edge_id_ || !live_edges_.contains(record->edge_id)) continue;
    tracker_members_scratch_.push_back(
        RemoteTrackerMember{(*reply)[i].text(), record->edge_id, record->shard, record->slot, record->generation});
  }
  host_.tracker_candidates(std::move(query.packet), query.first, tracker_members_scratch_);
}

}  // namespace mf::edge
