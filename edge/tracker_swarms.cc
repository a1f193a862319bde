#include "edge/tracker_swarms.h"

#include <algorithm>
#include <tuple>

namespace mf::edge {

std::string_view tracker_refusal_text(TrackerRefusal refusal) {
  switch (refusal) {
    case TrackerRefusal::peer_id_taken: return "peer_id in use by another connection";
    case TrackerRefusal::unknown_peer: return "answer from a peer that has not announced on this connection";
    case TrackerRefusal::no_such_offer: return "answer to no outstanding offer";
    case TrackerRefusal::offerer_gone: return "the offer's sender is gone";
  }
  return "refused";
}

namespace {

// A member's name in the matching swarm is the id's 20 raw bytes.
std::string_view member_name(const TrackerId& id) {
  return {reinterpret_cast<const char*>(id.data()), id.size()};
}

}  // namespace

size_t TrackerSwarms::OfferKeyHash::operator()(const OfferKey& key) const {
  return static_cast<size_t>(keyed_hash(std::string_view(reinterpret_cast<const char*>(key.data()), key.size())));
}

TrackerSwarms::OfferKey TrackerSwarms::offer_key(const TrackerId& recipient, const TrackerId& sender,
                                                 const TrackerId& offer_id) {
  OfferKey key;
  std::memcpy(key.data(), recipient.data(), tracker_id_bytes);
  std::memcpy(key.data() + tracker_id_bytes, sender.data(), tracker_id_bytes);
  std::memcpy(key.data() + 2 * tracker_id_bytes, offer_id.data(), tracker_id_bytes);
  return key;
}

TrackerSwarms::TrackerSwarms(uint64_t seed, TrackerLimits limits) : limits_(limits), rng_(seed), seed_(seed) {}

void TrackerSwarms::record_offer(Swarm_& swarm, const OfferKey& key, OfferWay way, uint32_t edge, uint32_t shard,
                                 uint64_t now_ms) {
  auto [it, inserted] = swarm.offers.try_emplace(key);
  Offer& offer = it->second;
  offer.expires_ms = now_ms + limits_.offer_ttl_ms;
  offer.way = way;
  offer.edge = edge;
  offer.shard = shard;
  offer.swarm = &swarm;
  offer.key = &it->first;
  offer_ages_.touch(offer);
}

void TrackerSwarms::erase_offer(Swarm_& swarm, OfferTable::iterator offer) {
  offer_ages_.remove(offer->second);
  swarm.offers.erase(offer);
}

void TrackerSwarms::remove_peer(Swarm_& swarm, PeerTable::iterator peer) {
  swarm.matching.remove(peer->second.handle);
  if (peer->second.seeder) swarm.seeders--;
  peer_ages_.remove(peer->second);
  swarm.peers.erase(peer);
}

std::pair<uint32_t, uint32_t> TrackerSwarms::reported_counts(const Swarm_& swarm, uint64_t now_ms) const {
  uint32_t complete = swarm.seeders;
  uint32_t incomplete = static_cast<uint32_t>(swarm.peers.size()) - swarm.seeders;
  if (now_ms < swarm.cluster_counts_until_ms) {
    complete = std::max(complete, swarm.cluster_complete);
    incomplete = std::max(incomplete, swarm.cluster_incomplete);
  }
  return {complete, incomplete};
}

void TrackerSwarms::drop_if_empty(SwarmTable::iterator swarm) {
  if (!swarm->second.peers.empty()) return;
  for (auto& [key, offer] : swarm->second.offers) offer_ages_.remove(offer);
  swarms_.erase(swarm);
}

std::expected<TrackerAnnounceResult, TrackerRefusal> TrackerSwarms::announce(
    const TrackerId& info_hash, const TrackerId& peer_id, PeerLocation who, AnnounceEvent event, bool seeder,
    std::span<const TrackerId> offer_ids, std::span<TrackerTarget> targets, uint64_t now_ms) {
  auto swarm_it = swarms_.find(info_hash);
  if (swarm_it == swarms_.end()) {
    if (event == AnnounceEvent::stopped) return TrackerAnnounceResult{};
    swarm_it = swarms_.try_emplace(info_hash, seed_ ^ rng_.next(), &pool_).first;
    swarm_it->second.info_hash = &swarm_it->first;
  }
  Swarm_& swarm = swarm_it->second;
  auto peer_it = swarm.peers.find(peer_id);
  if (peer_it != swarm.peers.end() && peer_it->second.who != who) return std::unexpected(TrackerRefusal::peer_id_taken);
  if (event == AnnounceEvent::stopped) {
    bool left = peer_it != swarm.peers.end();
    if (left) remove_peer(swarm, peer_it);
    auto [complete, incomplete] = reported_counts(swarm, now_ms);
    TrackerAnnounceResult result{complete, incomplete, 0, false, left};
    drop_if_empty(swarm_it);
    return result;
  }
  bool joined = false;
  if (event == AnnounceEvent::completed) {
    seeder = true;
    swarm.downloaded++;
  }
  if (peer_it == swarm.peers.end()) {
    Member member;
    member.peer_id.assign(member_name(peer_id));
    member.location = MemberLocation{0, who.shard, who.slot, who.generation, 0};
    peer_it = swarm.peers.try_emplace(peer_id).first;
    peer_it->second.who = who;
    peer_it->second.handle = swarm.matching.add(member);
    peer_it->second.swarm = &swarm;
    peer_it->second.id = &peer_it->first;
    joined = true;
  }
  Peer& peer = peer_it->second;
  peer_ages_.touch(peer);
  TrackerAnnounceResult result;
  if (peer.seeder != seeder) {
    if (seeder) swarm.seeders++;
    else swarm.seeders--;
    peer.seeder = seeder;
    result.seeder_changed = !joined;
  }
  peer.last_announce_ms = now_ms;

  result.joined = joined;
  std::tie(result.complete, result.incomplete) = reported_counts(swarm, now_ms);
  size_t wanted = std::min({offer_ids.size(), static_cast<size_t>(limits_.max_offers), targets.size(),
                            static_cast<size_t>(Swarm::max_pick)});
  if (wanted == 0) return result;
  PickRequest request;
  request.requester = member_name(peer_id);
  request.count = static_cast<uint32_t>(wanted);
  request.now_ms = now_ms;
  size_t picked = swarm.matching.pick(request, std::span(picked_.data(), wanted), rng_);
  for (size_t i = 0; i < picked; ++i) {
    const Member& member = swarm.matching.at(picked_[i]);
    TrackerTarget& target = targets[i];
    std::memcpy(target.peer_id.data(), member.peer_id.view().data(), tracker_id_bytes);
    target.who = PeerLocation{member.location.shard, member.location.connection_slot,
                              member.location.connection_generation};
    record_offer(swarm, offer_key(target.peer_id, peer_id, offer_ids[i]), OfferWay::local, 0, 0, now_ms);
  }
  result.targets = picked;
  return result;
}

std::expected<TrackerAnswerRoute, TrackerRefusal> TrackerSwarms::answer(const TrackerId& info_hash,
                                                                        const TrackerId& answerer, PeerLocation who,
                                                                        const TrackerId& offerer,
                                                                        const TrackerId& offer_id, uint64_t now_ms) {
  auto swarm_it = swarms_.find(info_hash);
  if (swarm_it == swarms_.end()) return std::unexpected(TrackerRefusal::unknown_peer);
  Swarm_& swarm = swarm_it->second;
  auto self = swarm.peers.find(answerer);
  if (self == swarm.peers.end() || self->second.who != who) return std::unexpected(TrackerRefusal::unknown_peer);
  auto offer = swarm.offers.find(offer_key(answerer, offerer, offer_id));
  // An offer this edge sent to another edge is answered there, not here.
  if (offer == swarm.offers.end() || offer->second.way == OfferWay::to_edge)
    return std::unexpected(TrackerRefusal::no_such_offer);
  const uint64_t expires_ms = offer->second.expires_ms;
  const OfferWay way = offer->second.way;
  const uint32_t edge = offer->second.edge, shard = offer->second.shard;
  erase_offer(swarm, offer);  // one answer per offer
  if (expires_ms <= now_ms) return std::unexpected(TrackerRefusal::no_such_offer);
  if (way == OfferWay::from_edge) return TrackerAnswerRoute{{}, edge, shard};
  auto sender = swarm.peers.find(offerer);
  if (sender == swarm.peers.end()) return std::unexpected(TrackerRefusal::offerer_gone);
  return TrackerAnswerRoute{sender->second.who, 0, 0};
}

uint32_t TrackerSwarms::edge_index(std::string_view edge_id) {
  for (size_t i = 0; i < edges_.size(); ++i)
    if (edges_[i] == edge_id) return static_cast<uint32_t>(i + 1);
  if (edges_.size() >= max_edges) return 0;
  edges_.emplace_back(edge_id);
  return static_cast<uint32_t>(edges_.size());
}

bool TrackerSwarms::offer_sent_to_edge(const TrackerId& info_hash, const TrackerId& offerer, PeerLocation offerer_who,
                                       const TrackerId& recipient, const TrackerId& offer_id, uint32_t edge,
                                       uint64_t now_ms) {
  auto swarm_it = swarms_.find(info_hash);
  if (swarm_it == swarms_.end()) return false;
  auto sender = swarm_it->second.peers.find(offerer);
  if (sender == swarm_it->second.peers.end() || sender->second.who != offerer_who) return false;
  record_offer(swarm_it->second, offer_key(recipient, offerer, offer_id), OfferWay::to_edge, edge, 0, now_ms);
  return true;
}

std::optional<PeerLocation> TrackerSwarms::offer_from_edge(const TrackerId& info_hash, const TrackerId& recipient,
                                                           const TrackerId& offerer, const TrackerId& offer_id,
                                                           uint32_t edge, uint32_t shard, uint64_t now_ms) {
  auto swarm_it = swarms_.find(info_hash);
  if (swarm_it == swarms_.end()) return std::nullopt;
  auto peer = swarm_it->second.peers.find(recipient);
  if (peer == swarm_it->second.peers.end()) return std::nullopt;
  record_offer(swarm_it->second, offer_key(recipient, offerer, offer_id), OfferWay::from_edge, edge, shard, now_ms);
  return peer->second.who;
}

std::expected<PeerLocation, TrackerRefusal> TrackerSwarms::answer_from_edge(const TrackerId& info_hash,
                                                                            const TrackerId& answerer,
                                                                            const TrackerId& offerer,
                                                                            const TrackerId& offer_id, uint32_t edge,
                                                                            uint64_t now_ms) {
  auto swarm_it = swarms_.find(info_hash);
  if (swarm_it == swarms_.end()) return std::unexpected(TrackerRefusal::offerer_gone);
  Swarm_& swarm = swarm_it->second;
  auto offer = swarm.offers.find(offer_key(answerer, offerer, offer_id));
  if (offer == swarm.offers.end() || offer->second.way != OfferWay::to_edge || offer->second.edge != edge)
    return std::unexpected(TrackerRefusal::no_such_offer);
  bool expired = offer->second.expires_ms <= now_ms;
  erase_offer(swarm, offer);  // one answer per offer
  if (expired) return std::unexpected(TrackerRefusal::no_such_offer);
  auto sender = swarm.peers.find(offerer);
  if (sender == swarm.peers.end()) return std::unexpected(TrackerRefusal::offerer_gone);
  return sender->second.who;
}

bool TrackerSwarms::is_member(const TrackerId& info_hash, const TrackerId& peer_id) const {
  auto swarm_it = swarms_.find(info_hash);
  return swarm_it != swarms_.end() && swarm_it->second.peers.contains(peer_id);
}

std::optional<TrackerMemberRef> TrackerSwarms::member(const TrackerId& info_hash, const TrackerId& peer_id) const {
  auto swarm_it = swarms_.find(info_hash);
  if (swarm_it == swarms_.end()) return std::nullopt;
  auto peer = swarm_it->second.peers.find(peer_id);
  if (peer == swarm_it->second.peers.end()) return std::nullopt;
  return TrackerMemberRef{info_hash, peer_id, peer->second.who, peer->second.seeder};
}

void TrackerSwarms::cluster_counts(const TrackerId& info_hash, uint32_t seeders, uint32_t members, uint64_t now_ms) {
  auto swarm_it = swarms_.find(info_hash);
  if (swarm_it == swarms_.end() || limits_.cluster_counts_ttl_ms == 0) return;
  Swarm_& swarm = swarm_it->second;
  swarm.cluster_complete = std::min(seeders, members);
  swarm.cluster_incomplete = members - swarm.cluster_complete;
  swarm.cluster_counts_until_ms = now_ms + limits_.cluster_counts_ttl_ms;
}

bool TrackerSwarms::leave(const TrackerId& info_hash, const TrackerId& peer_id, PeerLocation who) {
  auto swarm_it = swarms_.find(info_hash);
  if (swarm_it == swarms_.end()) return false;
  auto peer = swarm_it->second.peers.find(peer_id);
  if (peer == swarm_it->second.peers.end() || peer->second.who != who) return false;
  remove_peer(swarm_it->second, peer);
  drop_if_empty(swarm_it);
  return true;
}

void TrackerSwarms::expire(uint64_t now_ms, std::vector<TrackerMemberRef>* removed) {
  // Oldest first; each list ends at its first entry still alive (within one
  // list every entry has the same TTL from its last touch).
  while (Offer* offer = offer_ages_.oldest()) {
    if (offer->expires_ms > now_ms) break;
    Swarm_& swarm = *offer->swarm;
    erase_offer(swarm, swarm.offers.find(*offer->key));
  }
  while (Peer* peer = peer_ages_.oldest()) {
    if (now_ms - peer->last_announce_ms < limits_.peer_ttl_ms) break;
    Swarm_& swarm = *peer->swarm;
    auto swarm_it = swarms_.find(*swarm.info_hash);
    if (removed != nullptr) removed->push_back(TrackerMemberRef{swarm_it->first, *peer->id, peer->who, peer->seeder});
    remove_peer(swarm, swarm.peers.find(*peer->id));
    drop_if_empty(swarm_it);
  }
}

TrackerScrapeCounts TrackerSwarms::scrape(const TrackerId& info_hash, uint64_t now_ms) const {
  auto swarm_it = swarms_.find(info_hash);
  if (swarm_it == swarms_.end()) return {};
  const Swarm_& swarm = swarm_it->second;
  auto [complete, incomplete] = reported_counts(swarm, now_ms);
  return {complete, incomplete, swarm.downloaded};
}

TrackerTotals TrackerSwarms::totals() const {
  TrackerTotals totals;
  totals.swarms = swarms_.size();
  for (const auto& [hash, swarm] : swarms_) {
    totals.peers += swarm.peers.size();
    totals.seeders += swarm.seeders;
    totals.outstanding_offers += swarm.offers.size();
  }
  return totals;
}

}  // namespace mf::edge
