// ValkeyClusterSync, what Valkey decides for the whole cluster
// (docs/cluster.md): peerId claims and takeovers across edges, the cluster-wide
// maxViewers, the policy document in Valkey, and the operator page's cluster view.
#include <algorithm>

#include "edge/cluster_keys.h"
#include "edge/cluster_sync_valkey.h"
#include "edge/cluster_sync_valkey_support.h"

namespace mf::edge {

using namespace cluster_support;

// ---- peerId claims across edges ----------------------------------------------------

void ValkeyClusterSync::claim(ClusterClaim claim) {
  const ClaimPeer& m = *claim.message;
  const ClusterSettings& c = settings_;
  std::string digest = cluster::session_digest(claim.session);
  std::string offered = m.has_offered_session ? cluster::session_digest(m.offered_session) : std::string();
  cluster::encode_owner(value_scratch_, cluster::OwnerRecord{edge_id_, m.who.shard, m.who.slot,
                                                             m.who.generation, m.stream_id, m.rendition, digest});
  Decimal ttl(c.presence_ttl_ms);
  std::string_view argv[] = {
      "1"sv, cluster::owner_key(key_scratch_, c.key_prefix, m.peer_id), value_scratch_,
      cluster::encode_holder(holder_scratch_, edge_id_, m.who.shard, m.who.slot, m.who.generation),
      ttl.view(), offered, claim.stale};
  claim.deadline_ms = now_ms() + c.peers_timeout_ms;
  uint64_t cookie = ++cookie_;
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus status, const resp::ReplyView* reply) {
                            static_cast<ValkeyClusterSync*>(self)->on_claimed(id, status, reply);
                          },
                          this, cookie};
  if (!script(Script::claim, argv, done)) {
    // Valkey cannot take it now: this edge's decision stands, as when alone.
    return host_.finish_claim(std::move(claim.message), claim.local, claim.session, claim.replaced);
  }
  claims_.emplace(cookie, std::move(claim));
}

void ValkeyClusterSync::on_claimed(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  auto it = claims_.find(cookie);
  if (it == claims_.end()) return;
  ClusterClaim claim = std::move(it->second);
  claims_.erase(it);
  ClaimPeer& m = *claim.message;
  // Whatever the outcome, where this edge had the peerId cached is not to be
  // trusted any more (the claim runs on the peerId's directory shard, the
  // cache's home).
  forget_location(m.peer_id);
  if (status != valkey::CommandStatus::reply || reply->type() != resp::ReplyType::array || reply->size() != 2 ||
      (*reply)[0].type() != resp::ReplyType::integer) {
    // Valkey failed in flight: decided locally, as when it is down (the
    // refresh settles a conflict: the holder the owner key names stays).
    return host_.finish_claim(std::move(claim.message), claim.local, claim.session, claim.replaced);
  }
  int64_t outcome = (*reply)[0].integer();
  std::string_view previous = (*reply)[1].text();
  auto old = cluster::decode_owner(previous);
  bool elsewhere = old && old->edge_id != edge_id_;
  if (outcome == 2) {
    // Held on another edge: if that edge's liveness key is gone (it died),
    // its record is overridden once (compare-and-set on its value).
    if (claim.stale.empty() && elsewhere) {
      claim.stale.assign(previous);
      std::string_view argv[] = {"EXISTS"sv, cluster::alive_key(key_scratch_, settings_.key_prefix, old->edge_id)};
      uint64_t check = ++cookie_;
      valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus s, const resp::ReplyView* r) {
                                static_cast<ValkeyClusterSync*>(self)->on_holder_checked(id, s, r);
                              },
                              this, check};
      if (command(argv, done)) {
        claims_.emplace(check, std::move(claim));
        return;
      }
    }
    return refuse(std::move(claim));
  }
  if (outcome != 1) return host_.finish_claim(std::move(claim.message), claim.local, claim.session, claim.replaced);
  // A takeover in the cluster: the record written carries the digest of
  // claim.session, the fresh session the directory gave this claim.
  PeerLocation replaced = claim.replaced;
  if (elsewhere) {
    counters_.takeovers++;
    cluster::encode_envelope(value2_scratch_,
                             cluster::Envelope{cluster::EnvelopeKind::replace, edge_id_, 0, 0, 0,
                                               old->slot, old->generation, m.peer_id, {}, {}, {}});
    std::string_view argv[] = {
        publish_command_, cluster::signal_channel(key2_scratch_, settings_.key_prefix, old->edge_id, old->shard),
        value2_scratch_};
    command(argv);
  } else if (old && claim.local != ClaimOutcome::taken_over && old->shard < shard_count_ && old->shard <= UINT16_MAX) {
    // A connection of this edge the directory no longer knows (generation
    // checked on its shard).
    replaced = PeerLocation{static_cast<uint16_t>(old->shard), old->slot, old->generation};
  }
  host_.finish_claim(std::move(claim.message), ClaimOutcome::taken_over, claim.session, replaced);
}

void ValkeyClusterSync::on_holder_checked(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  auto it = claims_.find(cookie);
  if (it == claims_.end()) return;
  ClusterClaim claim = std::move(it->second);
  claims_.erase(it);
  bool dead = status == valkey::CommandStatus::reply && reply->type() == resp::ReplyType::integer &&
              reply->integer() == 0;
  if (dead) return this->claim(std::move(claim));  // claim.stale: override that record only
  refuse(std::move(claim));
}

void ValkeyClusterSync::refuse(ClusterClaim claim) {
  counters_.claims_refused++;
  host_.refuse_claim(std::move(claim.message), claim.local, claim.replaced);
}

// ---- cluster-wide maxViewers ---------------------------------------------------------

void ValkeyClusterSync::admit(std::unique_ptr<EnterSwarm> enter) {
  const ClusterSettings& c = settings_;
  uint64_t now_unix = unix_ms();
  Decimal now(now_unix);
  Decimal cap(enter->max_viewers);
  Decimal seat(now_unix + seat_reservation_ms);
  Decimal ttl(std::max<uint64_t>(c.presence_ttl_ms, seat_reservation_ms));
  std::string_view argv[] = {"1"sv, cluster::viewers_key(key_scratch_, c.key_prefix, enter->stream_id),
                             now.view(), cap.view(), enter->member.peer_id.view(), seat.view(), ttl.view()};
  uint64_t cookie = ++cookie_;
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus status, const resp::ReplyView* reply) {
                            static_cast<ValkeyClusterSync*>(self)->on_admitted(id, status, reply);
                          },
                          this, cookie};
  if (script(Script::admit, argv, done)) {
    admissions_.emplace(cookie, PendingAdmission{std::move(enter), now_ms() + c.peers_timeout_ms});
    return;
  }
  // Valkey cannot take it: the edge-local cap, as when alone.
  host_.seat_decided(std::move(enter), ClusterSeat::unanswered);
}

void ValkeyClusterSync::on_admitted(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  auto it = admissions_.find(cookie);
  if (it == admissions_.end()) return;
  std::unique_ptr<EnterSwarm> enter = std::move(it->second.enter);
  admissions_.erase(it);
  bool answered = status == valkey::CommandStatus::reply && reply->type() == resp::ReplyType::integer;
  // Seated: the cluster counted every edge's viewers, this one included, so
  // the local table does not cap again. Full: answered exactly as a full
  // stream on this edge. Unanswered: the local cap, as alone.
  ClusterSeat seat = !answered ? ClusterSeat::unanswered
                     : reply->integer() == 0 ? ClusterSeat::full
                     : reply->integer() == 1 ? ClusterSeat::seated
                                             : ClusterSeat::unanswered;
  // An abandoned join found nothing to give back (the seat reservation
  // expires by itself).
  if (host_.seat_decided(std::move(enter), seat) && seat == ClusterSeat::full) counters_.viewers_full++;
}

// ---- the policy document in Valkey ------------------------------------------------------

void ValkeyClusterSync::poll_policy() {
  std::string_view argv[] = {"GET"sv, cluster::policy_key(key_scratch_, settings_.key_prefix)};
  command(argv, valkey::Completion{[](void* self, uint64_t, valkey::CommandStatus status,
                                              const resp::ReplyView* reply) {
                                             static_cast<ValkeyClusterSync*>(self)->on_policy(status, reply);
                                           },
                                           this, 0});
}

void ValkeyClusterSync::on_policy(valkey::CommandStatus status, const resp::ReplyView* reply) {
  // Valkey unreachable: the last policy read from it stays (no flapping to
  // the file's while Valkey restarts).
  if (status != valkey::CommandStatus::reply) return;
  std::optional<std::string_view> text;
  if (reply->type() == resp::ReplyType::string) {
    text = reply->text();
  } else if (reply->type() != resp::ReplyType::nil) {
    return;
  }
  if (host_.policy_read(text)) counters_.policy_loads++;
}

// ---- the operator page's cluster view ------------------------------------------

namespace {
// Other edges' summaries live 3 s past their last write (written every
// second); fields dead for a minute are deleted by the next reader.
constexpr uint64_t summary_ttl_ms = 3000;
constexpr uint64_t summary_trim_ms = 60000;
}  // namespace

void ValkeyClusterSync::publish_summary(std::string_view summary) {
  if (!ready()) return;
  std::string record = encode_summary_record(unix_ms() + summary_ttl_ms, summary);
  std::string_view hset[] = {"HSET"sv, cluster::summaries_key(key_scratch_, settings_.key_prefix), edge_id_, record};
  command(hset);
}

bool ValkeyClusterSync::read_summaries(uint64_t id) {
  std::string_view hgetall[] = {"HGETALL"sv, cluster::summaries_key(key_scratch_, settings_.key_prefix)};
  return command(hgetall, valkey::Completion{[](void* self, uint64_t cookie, valkey::CommandStatus status,
                                                const resp::ReplyView* reply) {
                                               static_cast<ValkeyClusterSync*>(self)->on_summaries(cookie, status,
                                                                                                   reply);
                                             },
                                             this, id});
}

void ValkeyClusterSync::on_summaries(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  std::vector<std::string_view> others;
  ValkeyState state = ValkeyState::down;
  if (status == valkey::CommandStatus::reply && reply->type() == resp::ReplyType::array) {
    state = ValkeyState::up;
    uint64_t now = unix_ms();
    std::vector<std::string_view> dead;
    for (size_t i = 0; i + 1 < reply->size(); i += 2) {
      std::string_view edge = (*reply)[i].text();
      auto record = decode_summary_record((*reply)[i + 1].text());
      if (!record) continue;  // not written by an edge: never trusted
      if (record->expires_unix_ms + summary_trim_ms < now) dead.push_back(edge);
      if (edge == edge_id_ || record->expires_unix_ms < now) continue;
      others.push_back(record->summary);
    }
    if (!dead.empty()) {
      std::vector<std::string_view> hdel = {"HDEL"sv, cluster::summaries_key(key_scratch_, settings_.key_prefix)};
      hdel.insert(hdel.end(), dead.begin(), dead.end());
      command(hdel);
    }
  }
  host_.summaries_read(cookie, state, others);
}

}  // namespace mf::edge
