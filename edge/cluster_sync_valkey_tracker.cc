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
// P{t:<info_hash hex>}:idx/rec with the SDK swarms' scripts (the index key
// stands in for the viewers key: tracker swarms have no viewer cap). Offers
// that found no member here go to a Valkey sample of the swarm's members on
// other edges, published to the shard that owns the swarm there; each edge
// records the offer, so an answer is checked where it is given and again
// where it arrives.

namespace {

std::string_view id_bytes(const TrackerId& id) { return {reinterpret_cast<const char*>(id.data()), id.size()}; }

}  // namespace

std::vector<std::string_view>& ValkeyClusterSync::tracker_swarm_keys(const TrackerId& info_hash) {
  const std::string& prefix = settings_.key_prefix;
  std::string_view hex = cluster::hex_id(tracker_hex_scratch_, id_bytes(info_hash));
  std::string_view index = cluster::tracker_index_key(key_scratch_, prefix, hex);
  argv_scratch_.assign({"3"sv, index, cluster::tracker_record_key(key2_scratch_, prefix, hex), index});
  return argv_scratch_;
}

void ValkeyClusterSync::encode_tracker_record(std::string& out, const PeerLocation& who) const {
  // The shard is the swarm's (where offers to the member are published);
  // the connection makes each registration's record its own, so a late
  // removal leaves a successor's record alone.
  cluster::encode_swarm(out, cluster::SwarmRecord{edge_id_, shard_, who.slot, who.generation, true,
                                                  -1, {}, {}, "{}"});
}

void ValkeyClusterSync::tracker_register(const TrackerId& info_hash, const TrackerId& peer_id, const PeerLocation& who) {
  const ClusterSettings& c = settings_;
  Decimal ttl(c.presence_ttl_ms);
  Decimal expiry(unix_ms() + c.presence_ttl_ms);
  encode_tracker_record(value_scratch_, who);
  std::vector<std::string_view>& argv = tracker_swarm_keys(info_hash);
  argv.insert(argv.end(), {expiry.view(), ttl.view(), cluster::hex_id(tracker_hex2_scratch_, id_bytes(peer_id)),
                           value_scratch_});
  script(Script::register_members, argv);
}

void ValkeyClusterSync::tracker_unregister(const TrackerId& info_hash, const TrackerId& peer_id,
                                           const PeerLocation& who) {
  encode_tracker_record(value_scratch_, who);
  std::vector<std::string_view>& argv = tracker_swarm_keys(info_hash);
  argv.insert(argv.end(), {cluster::hex_id(tracker_hex2_scratch_, id_bytes(peer_id)), value_scratch_});
  script(Script::unregister_member, argv);
}

void ValkeyClusterSync::tracker_refresh(bool all, uint32_t part, std::string_view expiry, std::string_view ttl) {
  tracker_refresh_scratch_.clear();
  // Members come swarm by swarm; a swarm is refreshed on the tick of its
  // info_hash.
  host_.tracker_members(tracker_members_all_);
  for (const TrackerMemberRef& member : tracker_members_all_)
    if (all || keyed_hash(id_bytes(member.info_hash)) % refresh_parts == part) tracker_refresh_scratch_.push_back(member);
  size_t i = 0;
  while (i < tracker_refresh_scratch_.size()) {
    const TrackerId info_hash = tracker_refresh_scratch_[i].info_hash;
    batch_scratch_.resize(2 * register_batch);
    std::vector<std::string_view>& argv = tracker_swarm_keys(info_hash);
    argv.insert(argv.end(), {expiry, ttl});
    size_t n = 0;
    for (; i < tracker_refresh_scratch_.size() && n < register_batch; ++i, ++n) {
      const TrackerMemberRef& member = tracker_refresh_scratch_[i];
      if (member.info_hash != info_hash) break;
      argv.push_back(cluster::hex_id(batch_scratch_[2 * n], id_bytes(member.peer_id)));
      encode_tracker_record(batch_scratch_[2 * n + 1], member.who);
      argv.push_back(batch_scratch_[2 * n + 1]);
    }
    script(Script::register_members, argv);
  }
}

void ValkeyClusterSync::tracker_offers(std::unique_ptr<TrackerPacket> m, size_t first) {
  if (!ready()) return;  // alone: the offers found nobody, as on one edge
  uint64_t cookie = ++cookie_;
  size_t remaining = m->offer_ids.size() - first;
  Decimal now(unix_ms());
  Decimal sample(std::min<uint64_t>(max_sample, 2 * remaining + 8));
  std::vector<std::string_view>& argv = tracker_swarm_keys(m->info_hash);
  argv.insert(argv.end(), {now.view(), sample.view()});
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus status, const resp::ReplyView* reply) {
                            static_cast<ValkeyClusterSync*>(self)->on_tracker_candidates(id, status, reply);
                          },
                          this, cookie};
  if (script(Script::query, argv, done)) tracker_queries_.emplace(cookie, TrackerQuery{std::move(m), first});
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
    // Members of this edge were offered by the local matching already; an
    // edge whose liveness expired is dead.
    if (!record || record->edge_id == edge_id_ || !live_edges_.contains(record->edge_id)) continue;
    tracker_members_scratch_.push_back(
        RemoteTrackerMember{(*reply)[i].text(), record->edge_id, record->shard, record->slot, record->generation});
  }
  host_.tracker_candidates(std::move(query.packet), query.first, tracker_members_scratch_);
}

}  // namespace mf::edge
