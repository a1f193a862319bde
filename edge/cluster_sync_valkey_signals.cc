// ValkeyClusterSync, signals across edges (docs/cluster.md): a signal whose
// target this edge does not hold is looked up in Valkey (or found in the
// peer-location cache) and published to the target edge's shard channel; what
// arrives on this shard's channel is delivered, bounced or answered.
#include <algorithm>

#include "edge/cluster_keys.h"
#include "edge/cluster_sync_valkey.h"
#include "edge/cluster_sync_valkey_support.h"

namespace mf::edge {

using namespace cluster_support;

// ---- signals across edges -------------------------------------------------------

// Entries at most per shard: beyond, an entry without a lookup in flight is
// dropped for the new one (its peer's next signal looks it up again).
constexpr size_t max_peer_locations = 65536;

bool ValkeyClusterSync::location_usable(const PeerLocationEntry& entry, std::string_view sender_stream) const {
  // A lookup in flight: this signal waits behind it (a publish now could
  // overtake the signal that lookup carries). A location older than the
  // presence TTL is not trusted. A dead edge needs no check here: nobody
  // listens on its channel any more, so the PUBLISH reaches no subscriber
  // and the signal is looked up again.
  return entry.lookups_in_flight == 0 && entry.expires_ms > now_ms() && entry.stream_id == sender_stream;
}

void ValkeyClusterSync::remember_location(std::string_view peer_id, std::string_view edge_id, std::string_view stream_id,
                                  uint32_t shard, uint32_t slot, uint32_t generation) {
  auto it = peer_locations_.find(peer_id);
  if (it == peer_locations_.end()) {
    if (peer_locations_.size() >= max_peer_locations) {
      auto victim = std::find_if(peer_locations_.begin(), peer_locations_.end(),
                                 [](const auto& e) { return e.second.lookups_in_flight == 0; });
      if (victim == peer_locations_.end()) return;
      peer_locations_.erase(victim);
    }
    it = peer_locations_.emplace(std::string(peer_id), PeerLocationEntry{}).first;
  }
  PeerLocationEntry& e = it->second;
  e.edge_id.assign(edge_id);
  e.stream_id.assign(stream_id);
  e.shard = shard;
  e.slot = slot;
  e.generation = generation;
  e.expires_ms = now_ms() + settings_.presence_ttl_ms;
}

void ValkeyClusterSync::forget_location(std::string_view peer_id) {
  auto it = peer_locations_.find(peer_id);
  if (it == peer_locations_.end()) return;
  if (it->second.lookups_in_flight == 0) {
    peer_locations_.erase(it);
    return;
  }
  it->second.expires_ms = 0;
}

void ValkeyClusterSync::route_signal(std::unique_ptr<SignalPacket> m) {
  // Valkey down: this edge alone cannot know the target.
  if (!ready()) return host_.signal_failed(std::move(m));
  uint64_t cookie = ++cookie_;
  auto cached = peer_locations_.find(std::string_view(m->to));
  if (m->relookup) {
    // It missed at the cached place (m->target). Only the first miss of that
    // place is sent again: from then on signals to the peer go by lookup,
    // so a later miss of the same place comes back after signals sent
    // since, and resending it would deliver it out of order: it is
    // answered peer-not-found instead (docs/cluster.md).
    bool first = cached != peer_locations_.end() && cached->second.expires_ms != 0 &&
                 cached->second.slot == m->target.slot && cached->second.generation == m->target.generation;
    if (first) cached->second.expires_ms = 0;
    // A `missed` signal (no text) is answered peer-not-found whatever.
    if (!first || m->text.empty()) return host_.signal_failed(std::move(m));
    counters_.signals_bounced++;
  } else if (cached != peer_locations_.end() && location_usable(cached->second, m->sender_stream)) {
    const PeerLocationEntry& e = cached->second;
    if (!publish_signal(cookie, *m, cluster::EnvelopeKind::signal_cached, e.edge_id, e.shard, e.slot,
                                e.generation))
      return host_.signal_failed(std::move(m));
    // Where it went: a miss there comes back with this place.
    m->target = PeerLocation{static_cast<uint16_t>(e.shard), e.slot, e.generation};
    counters_.location_hits++;
    lookups_.emplace(cookie, PendingSignal{std::move(m), true});
    return;
  }
  std::string_view argv[] = {"GET"sv, cluster::owner_key(key_scratch_, settings_.key_prefix, m->to)};
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus status, const resp::ReplyView* reply) {
                            static_cast<ValkeyClusterSync*>(self)->on_lookup(id, status, reply);
                          },
                          this, cookie};
  if (!command(argv, done)) return host_.signal_failed(std::move(m));
  counters_.location_lookups++;
  if (cached == peer_locations_.end()) cached = peer_locations_.emplace(m->to, PeerLocationEntry{}).first;
  cached->second.lookups_in_flight++;
  lookups_.emplace(cookie, PendingSignal{std::move(m), false});
}

bool ValkeyClusterSync::publish_signal(uint64_t cookie, const SignalPacket& m, cluster::EnvelopeKind kind,
                                       std::string_view edge_id, uint32_t shard, uint32_t slot, uint32_t generation) {
  cluster::encode_envelope(value_scratch_,
                           cluster::Envelope{kind, edge_id_, m.sender.shard, m.sender.slot,
                                             m.sender.generation, slot, generation, m.to, m.sender_stream, m.ref_raw,
                                             m.text});
  std::string_view argv[] = {
      publish_command_, cluster::signal_channel(key_scratch_, settings_.key_prefix, edge_id, shard), value_scratch_};
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus s, const resp::ReplyView* r) {
                            static_cast<ValkeyClusterSync*>(self)->on_published(id, s, r);
                          },
                          this, cookie};
  return command(argv, done);
}

void ValkeyClusterSync::on_lookup(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  auto it = lookups_.find(cookie);
  if (it == lookups_.end()) return;
  std::optional<cluster::OwnerRecord> owner;
  if (status == valkey::CommandStatus::reply && reply->type() == resp::ReplyType::string)
    owner = cluster::decode_owner(reply->text());
  SignalPacket& m = *it->second.packet;
  // The lookup is answered: the cache holds what it found, or nothing.
  if (auto cached = peer_locations_.find(std::string_view(m.to)); cached != peer_locations_.end()) {
    PeerLocationEntry& e = cached->second;
    if (e.lookups_in_flight > 0) e.lookups_in_flight--;
    bool remote = owner && owner->edge_id != edge_id_ && owner->shard <= UINT16_MAX;
    if (remote) {
      remember_location(m.to, owner->edge_id, owner->stream_id, owner->shard, owner->slot, owner->generation);
    } else if (e.lookups_in_flight == 0) {
      peer_locations_.erase(cached);
    } else {
      e.expires_ms = 0;
    }
  }
  // The same-stream guard, first here (the record names the target's
  // stream), then again on the target's edge (it may have switched since).
  if (!owner || owner->stream_id != m.sender_stream || owner->edge_id == edge_id_ ||
      owner->shard > UINT16_MAX) {
    auto packet = std::move(it->second.packet);
    lookups_.erase(it);
    return host_.signal_failed(std::move(packet));
  }
  if (!publish_signal(cookie, m, cluster::EnvelopeKind::signal, owner->edge_id, owner->shard, owner->slot,
                              owner->generation)) {
    auto packet = std::move(it->second.packet);
    lookups_.erase(it);
    host_.signal_failed(std::move(packet));
  }
}

void ValkeyClusterSync::on_published(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  auto it = lookups_.find(cookie);
  if (it == lookups_.end()) return;
  auto packet = std::move(it->second.packet);
  bool cached = it->second.cached;
  lookups_.erase(it);
  // No subscriber: the target's edge is gone (its records not yet expired).
  if (status != valkey::CommandStatus::reply || reply->type() != resp::ReplyType::integer || reply->integer() < 1) {
    // Published from the cache and nobody listened: the cached place is not
    // trusted any more (the next signal looks the peer up), but this one is
    // not sent again: its edge may only be resubscribing (after a Valkey
    // restart), and a signal sent after it may already be delivered.
    if (cached) forget_location(packet->to);
    return host_.signal_failed(std::move(packet));
  }
  counters_.signals_sent++;
  host_.signal_sent(std::move(packet));
}

void ValkeyClusterSync::publish_failure(const cluster::Envelope& e) {
  cluster::encode_envelope(value2_scratch_, cluster::Envelope{cluster::EnvelopeKind::failed, e.origin_edge,
                                                              e.sender_shard, e.sender_slot, e.sender_generation, 0, 0,
                                                              e.to, {}, e.ref_raw, {}});
  std::string_view argv[] = {
      publish_command_, cluster::signal_channel(key2_scratch_, settings_.key_prefix, e.origin_edge, e.sender_shard),
      value2_scratch_};
  command(argv);
}

void ValkeyClusterSync::publish_back(const cluster::Envelope& e, cluster::EnvelopeKind kind) {
  cluster::Envelope back = e;
  back.kind = kind;
  cluster::encode_envelope(value2_scratch_, back);
  std::string_view argv[] = {
      publish_command_, cluster::signal_channel(key2_scratch_, settings_.key_prefix, e.origin_edge, e.sender_shard),
      value2_scratch_};
  command(argv);
}

bool ValkeyClusterSync::publish(std::string_view edge_id, uint32_t shard, const cluster::Envelope& e) {
  cluster::encode_envelope(value2_scratch_, e);
  std::string_view argv[] = {publish_command_, cluster::signal_channel(key2_scratch_, settings_.key_prefix, edge_id, shard),
                             value2_scratch_};
  return command(argv);
}

void ValkeyClusterSync::on_message(std::string_view channel, std::string_view payload) {
  const std::string& prefix = settings_.key_prefix;
  // Shard 0 also listens to the policy channel: any message means "read the key".
  if (shard_ == 0 && channel.size() == prefix.size() + 6 && channel.starts_with(prefix) && channel.ends_with("policy"))
    return poll_policy();
  // Otherwise this shard's own channel. Anything that does not decode is
  // ignored: Valkey is shared, its contents are not trusted blindly.
  auto envelope = cluster::decode_envelope(payload);
  if (!envelope) return;
  const cluster::Envelope& e = *envelope;
  const uint16_t here = static_cast<uint16_t>(shard_);
  if (e.kind == cluster::EnvelopeKind::replace) {
    // Taken over on another edge: close the old holder if it still is it.
    return host_.close_replaced(PeerLocation{here, e.target_slot, e.target_generation}, e.to);
  }
  if (e.kind == cluster::EnvelopeKind::failed) {
    if (e.origin_edge != edge_id_ || e.sender_shard != shard_) return;
    return host_.signal_not_found(PeerLocation{here, e.sender_slot, e.sender_generation}, e.to, e.ref_raw);
  }
  if (e.kind == cluster::EnvelopeKind::bounced || e.kind == cluster::EnvelopeKind::missed) {
    // A signal this shard's peer sent missed at the place this edge had
    // cached: its target's directory shard settles it (looked up and sent
    // again, or peer-not-found; missed: peer-not-found, no text).
    if (e.origin_edge != edge_id_ || e.sender_shard != shard_) return;
    return host_.signal_missed(e);
  }
  if (e.kind == cluster::EnvelopeKind::tracker_offer || e.kind == cluster::EnvelopeKind::tracker_answer) {
    // Valkey is shared: only other edges' envelopes.
    if (e.origin_edge == edge_id_) return;
    return host_.tracker_from_edge(e);
  }
  RemoteDelivery delivery = host_.deliver_signal(PeerLocation{here, e.target_slot, e.target_generation}, e.to,
                                                 e.stream_id, e.text);
  if (delivery == RemoteDelivery::delivered) {
    counters_.signals_received++;
    return;
  }
  // The connection is gone for good (slot and generation never come back)
  // or another one holds the slot.
  if (e.kind == cluster::EnvelopeKind::signal_cached && delivery == RemoteDelivery::other)
    return publish_back(e, cluster::EnvelopeKind::missed);
  if (e.kind == cluster::EnvelopeKind::signal_cached) {
    // The sender's edge had this place cached and the peer left it (a
    // takeover, a reconnect elsewhere): the signal goes back whole, to be
    // looked up again, instead of failing. Every later signal sent to this
    // place misses too, so the sender's edge resends the first only
    // (docs/cluster.md). A peer still here in another stream is not
    // found, as without the cache.
    return publish_back(e, cluster::EnvelopeKind::bounced);
  }
  publish_failure(e);
}

}  // namespace mf::edge
