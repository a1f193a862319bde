// EdgeShard's cluster role, tracker swarms across edges (docs/cluster.md,
// "Tracker swarms across edges"): presence of the swarms' members in Valkey,
// offers to members of other edges, answers routed back.
#include <time.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "common/codec/http_response.h"
#include "common/base/keyed_hash.h"
#include "common/base/log.h"
#include "edge/cluster_keys.h"
#include "edge/edge_shard.h"
#include "edge/edge_shard_cluster_support.h"

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

bool unhex_id(std::string_view hex, TrackerId& out) {
  if (hex.size() != 2 * tracker_id_bytes) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < tracker_id_bytes; ++i) {
    int high = nibble(hex[2 * i]), low = nibble(hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    out[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return true;
}

std::string_view id_bytes(const TrackerId& id) { return {reinterpret_cast<const char*>(id.data()), id.size()}; }

bool id_from(std::string_view bytes, TrackerId& out) {
  if (bytes.size() != tracker_id_bytes) return false;
  std::memcpy(out.data(), bytes.data(), tracker_id_bytes);
  return true;
}

// Offers and answers name the sender's peer_id, then the offer_id.
std::string_view pair_bytes(std::string& out, const TrackerId& peer_id, const TrackerId& offer_id) {
  out.assign(id_bytes(peer_id));
  out.append(id_bytes(offer_id));
  return out;
}

}  // namespace

std::vector<std::string_view>& EdgeShard::tracker_swarm_keys(const TrackerId& info_hash) {
  const std::string& prefix = shared_.cluster.key_prefix;
  std::string_view hex = cluster::hex_id(tracker_hex_scratch_, id_bytes(info_hash));
  std::string_view index = cluster::tracker_index_key(key_scratch_, prefix, hex);
  argv_scratch_.assign({"3"sv, index, cluster::tracker_record_key(key2_scratch_, prefix, hex), index});
  return argv_scratch_;
}

void EdgeShard::encode_tracker_record(std::string& out, const PeerLocation& who) const {
  // The shard is the swarm's (where offers to the member are published);
  // the connection makes each registration's record its own, so a late
  // removal leaves a successor's record alone.
  cluster::encode_swarm(out, cluster::SwarmRecord{shared_.settings.edge_id, shard_.id(), who.slot, who.generation, true,
                                                  -1, {}, {}, "{}"});
}

void EdgeShard::tracker_cluster_register(const TrackerId& info_hash, const TrackerId& peer_id, const PeerLocation& who) {
  if (!cluster_) return;
  const ClusterSettings& c = shared_.cluster;
  Decimal ttl(c.presence_ttl_ms);
  Decimal expiry(unix_ms() + c.presence_ttl_ms);
  encode_tracker_record(value_scratch_, who);
  std::vector<std::string_view>& argv = tracker_swarm_keys(info_hash);
  argv.insert(argv.end(), {expiry.view(), ttl.view(), cluster::hex_id(tracker_hex2_scratch_, id_bytes(peer_id)),
                           value_scratch_});
  cluster_script(ClusterScript::register_members, argv);
}

void EdgeShard::tracker_cluster_unregister(const TrackerId& info_hash, const TrackerId& peer_id,
                                           const PeerLocation& who) {
  if (!cluster_) return;
  encode_tracker_record(value_scratch_, who);
  std::vector<std::string_view>& argv = tracker_swarm_keys(info_hash);
  argv.insert(argv.end(), {cluster::hex_id(tracker_hex2_scratch_, id_bytes(peer_id)), value_scratch_});
  cluster_script(ClusterScript::unregister_member, argv);
}

void EdgeShard::tracker_cluster_refresh(bool all, uint32_t part, std::string_view expiry, std::string_view ttl) {
  tracker_refresh_scratch_.clear();
  // Members come swarm by swarm; a swarm is refreshed on the tick of its
  // info_hash.
  tracker_swarms_.for_each_member([&](const TrackerId& info_hash, const TrackerId& peer_id, const PeerLocation& who) {
    if (all || keyed_hash(id_bytes(info_hash)) % refresh_parts == part)
      tracker_refresh_scratch_.push_back(TrackerMemberRef{info_hash, peer_id, who});
  });
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
    cluster_script(ClusterScript::register_members, argv);
  }
}

void EdgeShard::tracker_cluster_offers(std::unique_ptr<TrackerPacket> m, size_t first) {
  if (!cluster_ready()) return;  // alone: the offers found nobody, as on one edge
  uint64_t cookie = ++cluster_cookie_;
  size_t remaining = m->offer_ids.size() - first;
  Decimal now(unix_ms());
  Decimal sample(std::min<uint64_t>(max_sample, 2 * remaining + 8));
  std::vector<std::string_view>& argv = tracker_swarm_keys(m->info_hash);
  argv.insert(argv.end(), {now.view(), sample.view()});
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus status, const resp::ReplyView* reply) {
                            static_cast<EdgeShard*>(self)->on_tracker_candidates(id, status, reply);
                          },
                          this, cookie};
  if (cluster_script(ClusterScript::query, argv, done)) tracker_queries_.emplace(cookie, TrackerQuery{std::move(m), first});
}

void EdgeShard::on_tracker_candidates(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  auto it = tracker_queries_.find(cookie);
  if (it == tracker_queries_.end()) return;
  TrackerQuery query = std::move(it->second);
  tracker_queries_.erase(it);
  if (status != valkey::CommandStatus::reply || reply->type() != resp::ReplyType::array) return;
  const TrackerPacket& m = *query.packet;
  const uint64_t now = reactor_now();
  size_t next = query.first;
  for (size_t i = 0; i + 1 < reply->size() && next < m.offer_ids.size(); i += 2) {
    TrackerId recipient;
    auto record = cluster::decode_swarm((*reply)[i + 1].text());
    // Members of this edge were offered by the local matching already; an
    // edge whose liveness expired is dead.
    if (!record || !unhex_id((*reply)[i].text(), recipient) || record->edge_id == shared_.settings.edge_id ||
        !live_edges_.contains(record->edge_id) || recipient == m.peer_id ||
        tracker_swarms_.is_member(m.info_hash, recipient))
      continue;
    uint32_t edge = tracker_swarms_.edge_index(record->edge_id);
    if (edge == 0) continue;
    // The offerer left meanwhile: nothing more goes out for it.
    if (!tracker_swarms_.offer_sent_to_edge(m.info_hash, m.peer_id, m.who, recipient, m.offer_ids[next], edge, now))
      return;
    uint32_t begin = next == 0 ? 0 : m.offer_ends[next - 1];
    std::string_view offer = std::string_view(m.raw).substr(begin, m.offer_ends[next] - begin);
    std::string_view text = write_tracker_offer(reply_, m.info_hash, m.peer_id, offer, m.offer_ids[next]);
    ++next;
    if (text.empty()) continue;
    cluster::encode_envelope(
        tracker_envelope_scratch_,
        cluster::Envelope{cluster::EnvelopeKind::tracker_offer, shared_.settings.edge_id, shard_.id(), m.who.slot,
                          m.who.generation, record->slot, record->generation, id_bytes(recipient),
                          id_bytes(m.info_hash), pair_bytes(value2_scratch_, m.peer_id, m.offer_ids[next - 1]), text});
    std::string_view publish[] = {
        publish_command_, cluster::signal_channel(key_scratch_, shared_.cluster.key_prefix, record->edge_id, record->shard),
        tracker_envelope_scratch_};
    if (cluster_command(publish)) counters_.tracker.offers_to_edges++;
  }
}

void EdgeShard::tracker_publish_answer(const TrackerAnswerRoute& route, const TrackerPacket& m) {
  std::string_view text = write_tracker_answer(reply_, m.info_hash, m.peer_id, m.raw, m.answer_offer_id);
  bool sent = false;
  if (!text.empty()) {
    cluster::encode_envelope(tracker_envelope_scratch_,
                             cluster::Envelope{cluster::EnvelopeKind::tracker_answer, shared_.settings.edge_id,
                                               shard_.id(), m.who.slot, m.who.generation, 0, 0, id_bytes(m.to_peer_id),
                                               id_bytes(m.info_hash),
                                               pair_bytes(value2_scratch_, m.peer_id, m.answer_offer_id), text});
    std::string_view publish[] = {publish_command_,
                                  cluster::signal_channel(key_scratch_, shared_.cluster.key_prefix,
                                                          tracker_swarms_.edge_name(route.edge), route.shard),
                                  tracker_envelope_scratch_};
    sent = cluster_command(publish);
  }
  if (sent) {
    counters_.tracker.answers_to_edges++;
    return;
  }
  // Valkey cannot take it: the answerer learns its answer went nowhere.
  counters_.tracker.failures++;
  TrackerRejection failure{tracker_refusal_text(TrackerRefusal::offerer_gone), true, TrackerAction::announce, true,
                           m.info_hash};
  tracker_deliver(m.who, write_tracker_failure(reply_, failure), TrackerDelivery::Kind::reply);
}

void EdgeShard::on_cluster_tracker(const cluster::Envelope& e) {
  TrackerId info_hash, to, from, offer_id;
  // Valkey is shared: what does not decode, or names a swarm this shard
  // does not own, is ignored.
  if (!tracker_enabled() || !id_from(e.stream_id, info_hash) || !id_from(e.to, to) ||
      e.ref_raw.size() != 2 * tracker_id_bytes || !id_from(e.ref_raw.substr(0, tracker_id_bytes), from) ||
      !id_from(e.ref_raw.substr(tracker_id_bytes), offer_id) || tracker_shard(info_hash) != shard_.id() ||
      e.origin_edge == shared_.settings.edge_id)
    return;
  uint32_t edge = tracker_swarms_.edge_index(e.origin_edge);
  if (edge == 0) return;
  const uint64_t now = reactor_now();
  if (e.kind == cluster::EnvelopeKind::tracker_offer) {
    auto recipient = tracker_swarms_.offer_from_edge(info_hash, to, from, offer_id, edge, e.sender_shard, now);
    if (recipient) tracker_deliver(*recipient, e.text, TrackerDelivery::Kind::offer);
    return;  // not a member (any more): the offer just expires on its edge
  }
  auto offerer = tracker_swarms_.answer_from_edge(info_hash, from, to, offer_id, edge, now);
  if (!offerer) {
    counters_.tracker.answers_refused++;
    return;
  }
  tracker_deliver(*offerer, e.text, TrackerDelivery::Kind::answer);
}

}  // namespace mf::edge
