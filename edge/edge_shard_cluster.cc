// EdgeShard as the host of its cluster sync (edge/cluster_sync.h,
// docs/cluster.md): what the cluster asks of the shard's sessions, claims,
// seats, policy, signals and tracker swarms. Without [valkey] address
// cluster_ is null and nothing here runs.
#include <algorithm>
#include <cstring>

#include "common/base/log.h"
#include "common/codec/http_response.h"
#include "edge/cluster_keys.h"
#include "edge/edge_shard.h"

namespace mf::edge {

namespace {

// /api/cluster requests waiting for Valkey at once; more get 503.
constexpr size_t max_cluster_answers = 16;

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

std::expected<void, std::string> EdgeShard::cluster_start() {
  if (!shared_.cluster.enabled()) return {};
  // The program links the Valkey implementation (edge/cluster_sync_valkey.h)
  // and names it in EdgeShared; a build without it cannot join a cluster.
  if (shared_.cluster_sync == nullptr) return std::unexpected("[valkey] is configured but this build has no cluster sync");
  ClusterSyncContext context{shard_.reactor(), running_.cluster, running_.settings.edge_id, shard_.id(), shard_.count(),
                             valkey_seed_};
  auto sync = shared_.cluster_sync(context, *this);
  if (!sync) return std::unexpected(sync.error());
  cluster_ = std::move(*sync);
  // Shard 0: this edge's summary for the other edges' operator pages.
  if (shard_.id() == 0)
    shard_.reactor().add_periodic(1000, [this] { start_metrics_collection({}, CollectionKind::summary, false); });
  return {};
}

// ---- presence ---------------------------------------------------------------------

ClusterMember EdgeShard::cluster_member(const PeerSession& s) const {
  return ClusterMember{location_of(s), s.join_sequence,  s.peer_id,       s.stream_id,
                       s.rendition,    s.session_digest, &s.topology,     s.accepting_peers};
}

void EdgeShard::cluster_register(const PeerSession& s) {
  if (cluster_ && s.state == PeerState::joined) cluster_->register_member(cluster_member(s));
}

void EdgeShard::cluster_unregister(const PeerSession& s) {
  if (cluster_) cluster_->unregister_member(cluster_member(s));
}

void EdgeShard::joined_members(std::vector<ClusterMember>& out) {
  out.clear();
  for (uint32_t slot = 0; slot < sessions_.created(); ++slot)
    if (sessions_[slot].state == PeerState::joined) out.push_back(cluster_member(sessions_[slot]));
}

std::optional<ClusterMember> EdgeShard::joined_member(const PeerLocation& who) {
  PeerSession* s = session_at(who);
  if (s == nullptr || s->state != PeerState::joined) return std::nullopt;
  return cluster_member(*s);
}

bool EdgeShard::close_superseded(const PeerLocation& who) {
  PeerSession* s = session_at(who);
  if (s == nullptr || s->state != PeerState::joined) return false;
  s->server->close(s->socket, close_code::replaced, "replaced by a newer connection");
  return true;
}

void EdgeShard::close_replaced(const PeerLocation& who, std::string_view peer_id) {
  PeerSession* old = session_at(who);
  if (old != nullptr && old->peer_id == peer_id &&
      (old->state == PeerState::joined || (old->state == PeerState::joining && old->pending.switching)))
    old->server->close(old->socket, close_code::replaced, "replaced by a newer connection");
}

void EdgeShard::send_peers(const PeerLocation& who, uint32_t join_sequence, const CandidateList& local,
                           const CandidateList& remote, std::string_view ref_raw, uint64_t started_ns) {
  PeerSession* s = session_at(who);
  if (s == nullptr || s->state != PeerState::joined || s->join_sequence != join_sequence) return;
  send_peers(*s, local, remote, ref_raw, started_ns);
}

// On the connection's shard: `peers` with the local candidates, after adding
// candidates from other edges when `local` has fewer than `wanted`.
void EdgeShard::deliver_peers(PeerSession& s, CandidateList local, uint32_t wanted, std::vector<std::string> exclude,
                              std::string_view ref_raw, uint64_t started_ns) {
  if (local.count >= wanted || !cluster_ready()) return send_peers(s, local, CandidateList{}, ref_raw, started_ns);
  ClusterQuery query;
  query.who = location_of(s);
  query.join_sequence = s.join_sequence;
  query.started_ns = started_ns;
  query.wanted = wanted;
  query.local = std::move(local);
  query.exclude = std::move(exclude);
  query.ref_raw.assign(ref_raw);
  cluster_->query(cluster_member(s), std::move(query));
}

// ---- claims and seats ----------------------------------------------------------------

void EdgeShard::refuse_claim(std::unique_ptr<ClaimPeer> m, ClaimOutcome local, const PeerLocation& replaced) {
  directory_.release(m->peer_id, m->who, m->join_sequence);
  // A local takeover lost to a holder elsewhere: this edge's old holder was
  // superseded in the cluster already; it goes too.
  if (local == ClaimOutcome::taken_over) send_replace(replaced);
  finish_claim(std::move(m), ClaimOutcome::taken, {}, {});
}

bool EdgeShard::seat_decided(std::unique_ptr<EnterSwarm> enter, ClusterSeat seat) {
  PeerSession* s = session_at(enter->who);
  // Abandoned meanwhile: nothing was entered, nothing to give back; the
  // claim went back with the join.
  if (s == nullptr || s->state != PeerState::joining || s->join_sequence != enter->join_sequence) return false;
  if (seat == ClusterSeat::full) {
    // Full cluster-wide: answered exactly as a full stream on this edge.
    auto full = std::make_unique<EnterResult>();
    full->who = enter->who;
    full->join_sequence = enter->join_sequence;
    full->stream_id = enter->stream_id;
    full->peer_id.assign(enter->member.peer_id.view());
    full->full = true;
    on(std::move(full));
    return true;
  }
  if (seat == ClusterSeat::seated) enter->max_viewers = 0;
  send_enter(s, std::move(enter));
  return true;
}

// ---- policy and the operator page's cluster view ----------------------------------

bool EdgeShard::policy_read(std::optional<std::string_view> text) {
  const std::string& prefix = shared_.cluster.key_prefix;
  PolicySource::ValkeyResult result = policy_source_.valkey_read(text);
  switch (result.change) {
    case PolicySource::ValkeyChange::unchanged:
      return false;
    case PolicySource::ValkeyChange::removed:
      MF_LOG_NOTICE("policy: Valkey key {}policy removed: back to {}", prefix,
                    shared_.settings.policy_file.empty() ? "the defaults" : shared_.settings.policy_file);
      apply_policy_sources();
      return false;
    case PolicySource::ValkeyChange::invalid:
      MF_LOG_ERROR("policy: Valkey key {}policy: {} (keeping the current policy)", prefix, result.error);
      return false;
    case PolicySource::ValkeyChange::loaded:
      MF_LOG_NOTICE("policy: loaded from Valkey key {}policy", prefix);
      apply_policy_sources();
      return true;
  }
  return false;
}

void EdgeShard::cluster_answer(SocketHandle connection, bool head_only, std::string own) {
  auto respond = [&](std::string_view body) {
    admin_server_->respond(connection, http::format_document_response(200, "application/json", body, head_only));
  };
  size_t max_bytes = admin_server_->max_response_bytes() - max_response_head_bytes;
  ValkeyState state = cluster_state();
  if (state != ValkeyState::up) return respond(format_cluster_json(shared_.settings.edge_id, state, own, {}, max_bytes));
  if (cluster_answers_.size() >= max_cluster_answers) {
    admin_server_->respond(connection, http::format_document_response(503, "text/plain", "busy\n", head_only));
    return;
  }
  uint64_t id = ++next_cluster_answer_;
  if (!cluster_->read_summaries(id))
    return respond(format_cluster_json(shared_.settings.edge_id, ValkeyState::down, own, {}, max_bytes));
  cluster_answers_.push_back({id, connection, head_only, std::move(own)});
}

void EdgeShard::summaries_read(uint64_t id, ValkeyState state, std::span<const std::string_view> others) {
  auto found = std::find_if(cluster_answers_.begin(), cluster_answers_.end(),
                            [&](const PendingClusterAnswer& a) { return a.id == id; });
  if (found == cluster_answers_.end()) return;
  PendingClusterAnswer answer = std::move(*found);
  cluster_answers_.erase(found);
  size_t max_bytes = admin_server_->max_response_bytes() - max_response_head_bytes;
  std::string body = format_cluster_json(shared_.settings.edge_id, state, answer.own,
                                         others, max_bytes);
  admin_server_->respond(answer.connection,
                         http::format_document_response(200, "application/json", body, answer.head_only));
}

// ---- signals across edges -------------------------------------------------------------

void EdgeShard::signal_failed(std::unique_ptr<SignalPacket> m) {
  uint32_t back = m->sender.shard;
  send(back, SignalFailed(std::move(m)));
}

void EdgeShard::signal_missed(const cluster::Envelope& e) {
  const PeerLocation sender{static_cast<uint16_t>(shard_.id()), e.sender_slot, e.sender_generation};
  std::unique_ptr<SignalPacket> packet = signal_pool_.acquire();
  packet->to.assign(e.to);
  packet->sender_stream.assign(e.stream_id);
  packet->ref_raw.assign(e.ref_raw);
  packet->text.assign(e.text);
  packet->sender = sender;
  packet->target = PeerLocation{0, e.target_slot, e.target_generation};  // the place it missed
  packet->relookup = true;
  uint32_t to = directory_shard(e.to);
  if (!send(to, RouteSignal(std::move(packet)))) signal_not_found(sender, e.to, e.ref_raw);
}

RemoteDelivery EdgeShard::deliver_signal(const PeerLocation& where, std::string_view to, std::string_view stream_id,
                                         std::string_view text) {
  PeerSession* target = session_at(where);
  if (target == nullptr) return RemoteDelivery::gone;
  if (target->state != PeerState::joined || target->peer_id != to || target->stream_id != stream_id)
    return RemoteDelivery::other;
  counters_.signals_relayed++;
  send_text(*target, text);
  return RemoteDelivery::delivered;
}

// ---- tracker swarms across edges (docs/cluster.md, "Tracker swarms across edges") ----
// Offers that found no member here go to a Valkey sample of the swarm's
// members on other edges, published to the shard that owns the swarm there;
// each edge records the offer, so an answer is checked where it is given and
// again where it arrives.

void EdgeShard::tracker_members(std::vector<TrackerMemberRef>& out) {
  out.clear();
  tracker_swarms_.for_each_member(
      [&](const TrackerId& info_hash, const TrackerId& peer_id, const PeerLocation& who, bool seeder) {
        out.push_back(TrackerMemberRef{info_hash, peer_id, who, seeder});
      });
}

std::optional<TrackerMemberRef> EdgeShard::tracker_member(const TrackerId& info_hash, const TrackerId& peer_id) {
  return tracker_swarms_.member(info_hash, peer_id);
}

void EdgeShard::tracker_counts(const TrackerId& info_hash, uint32_t seeders, uint32_t members) {
  tracker_swarms_.cluster_counts(info_hash, seeders, members, reactor_now());
}

void EdgeShard::tracker_refused(const TrackerMemberRef& member) {
  // Another live edge holds the peer_id in this swarm: the member goes
  // without a removal from Valkey (the record there is the other edge's),
  // and its connection gets the failure a second connection gets on one
  // edge.
  if (!tracker_swarms_.leave(member.info_hash, member.peer_id, member.who)) return;
  counters_.tracker.peer_id_taken++;
  counters_.tracker.failures++;
  TrackerRejection refusal{tracker_refusal_text(TrackerRefusal::peer_id_taken), true, TrackerAction::announce, true,
                           member.info_hash};
  tracker_deliver(member.who, write_tracker_failure(reply_, refusal), TrackerDelivery::Kind::reply);
}

void EdgeShard::tracker_candidates(std::unique_ptr<TrackerPacket> packet, size_t first,
                                   std::span<const RemoteTrackerMember> members) {
  const TrackerPacket& m = *packet;
  const uint64_t now = reactor_now();
  size_t next = first;
  for (const RemoteTrackerMember& member : members) {
    if (next >= m.offer_ids.size()) break;
    TrackerId recipient;
    if (!cluster::unhex_id(member.peer_id_hex, recipient) || recipient == m.peer_id ||
        tracker_swarms_.is_member(m.info_hash, recipient))
      continue;
    uint32_t edge = tracker_swarms_.edge_index(member.edge_id);
    if (edge == 0) continue;
    // The offerer left meanwhile: nothing more goes out for it.
    if (!tracker_swarms_.offer_sent_to_edge(m.info_hash, m.peer_id, m.who, recipient, m.offer_ids[next], edge, now))
      return;
    uint32_t begin = next == 0 ? 0 : m.offer_ends[next - 1];
    std::string_view offer = std::string_view(m.raw).substr(begin, m.offer_ends[next] - begin);
    std::string_view text = write_tracker_offer(reply_, m.info_hash, m.peer_id, offer, m.offer_ids[next]);
    ++next;
    if (text.empty()) continue;
    cluster::Envelope e{cluster::EnvelopeKind::tracker_offer, shared_.settings.edge_id, shard_.id(), m.who.slot,
                        m.who.generation, member.slot, member.generation, id_bytes(recipient), id_bytes(m.info_hash),
                        pair_bytes(tracker_pair_scratch_, m.peer_id, m.offer_ids[next - 1]), text};
    if (cluster_->publish(member.edge_id, member.shard, e)) counters_.tracker.offers_to_edges++;
  }
}

void EdgeShard::tracker_publish_answer(const TrackerAnswerRoute& route, const TrackerPacket& m) {
  std::string_view text = write_tracker_answer(reply_, m.info_hash, m.peer_id, m.raw, m.answer_offer_id);
  bool sent = false;
  if (!text.empty() && cluster_) {
    cluster::Envelope e{cluster::EnvelopeKind::tracker_answer, shared_.settings.edge_id, shard_.id(), m.who.slot,
                        m.who.generation, 0, 0, id_bytes(m.to_peer_id), id_bytes(m.info_hash),
                        pair_bytes(tracker_pair_scratch_, m.peer_id, m.answer_offer_id), text};
    sent = cluster_->publish(tracker_swarms_.edge_name(route.edge), route.shard, e);
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

void EdgeShard::tracker_from_edge(const cluster::Envelope& e) {
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
