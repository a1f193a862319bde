// EdgeShard's cluster role, what Valkey decides for the whole cluster
// (docs/cluster.md): peerId claims and takeovers across edges, the cluster-wide
// maxViewers, the policy document in Valkey, and the operator page's cluster view.
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

// ---- peerId claims across edges ----------------------------------------------------

void EdgeShard::cluster_claim(ClusterClaim claim) {
  const ClaimPeer& m = *claim.message;
  const ClusterSettings& c = shared_.cluster;
  std::string digest = cluster::session_digest(claim.session);
  std::string offered = m.has_offered_session ? cluster::session_digest(m.offered_session) : std::string();
  cluster::encode_owner(value_scratch_, cluster::OwnerRecord{shared_.settings.edge_id, m.who.shard, m.who.slot,
                                                             m.who.generation, m.stream_id, m.rendition, digest});
  Decimal ttl(c.presence_ttl_ms);
  std::string_view argv[] = {
      "1"sv, cluster::owner_key(key_scratch_, c.key_prefix, m.peer_id), value_scratch_,
      cluster::encode_holder(holder_scratch_, shared_.settings.edge_id, m.who.shard, m.who.slot, m.who.generation),
      ttl.view(), offered, claim.stale};
  claim.deadline_ms = reactor_now() + c.peers_timeout_ms;
  uint64_t cookie = ++cluster_cookie_;
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus status, const resp::ReplyView* reply) {
                            static_cast<EdgeShard*>(self)->on_cluster_claimed(id, status, reply);
                          },
                          this, cookie};
  if (!cluster_script(ClusterScript::claim, argv, done)) {
    // Valkey cannot take it now: this edge's decision stands, as when alone.
    return finish_claim(std::move(claim.message), claim.local, claim.session, claim.replaced);
  }
  cluster_claims_.emplace(cookie, std::move(claim));
}

void EdgeShard::on_cluster_claimed(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  auto it = cluster_claims_.find(cookie);
  if (it == cluster_claims_.end()) return;
  ClusterClaim claim = std::move(it->second);
  cluster_claims_.erase(it);
  ClaimPeer& m = *claim.message;
  // Whatever the outcome, where this edge had the peerId cached is not to be
  // trusted any more (the claim runs on the peerId's directory shard, the
  // cache's home).
  forget_location(m.peer_id);
  if (status != valkey::CommandStatus::reply || reply->type() != resp::ReplyType::array || reply->size() != 2 ||
      (*reply)[0].type() != resp::ReplyType::integer) {
    // Valkey failed in flight: decided locally, as when it is down (the
    // refresh settles a conflict: the holder the owner key names stays).
    return finish_claim(std::move(claim.message), claim.local, claim.session, claim.replaced);
  }
  int64_t outcome = (*reply)[0].integer();
  std::string_view previous = (*reply)[1].text();
  auto old = cluster::decode_owner(previous);
  bool elsewhere = old && old->edge_id != shared_.settings.edge_id;
  if (outcome == 2) {
    // Held on another edge: if that edge's liveness key is gone (it died),
    // its record is overridden once (compare-and-set on its value).
    if (claim.stale.empty() && elsewhere) {
      claim.stale.assign(previous);
      std::string_view argv[] = {"EXISTS"sv, cluster::alive_key(key_scratch_, shared_.cluster.key_prefix, old->edge_id)};
      uint64_t check = ++cluster_cookie_;
      valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus s, const resp::ReplyView* r) {
                                static_cast<EdgeShard*>(self)->on_cluster_holder_checked(id, s, r);
                              },
                              this, check};
      if (cluster_command(argv, done)) {
        cluster_claims_.emplace(check, std::move(claim));
        return;
      }
    }
    return refuse_claim(std::move(claim));
  }
  if (outcome != 1) return finish_claim(std::move(claim.message), claim.local, claim.session, claim.replaced);
  // A takeover in the cluster: the record written carries the digest of
  // claim.session, the fresh session the directory gave this claim.
  PeerLocation replaced = claim.replaced;
  if (elsewhere) {
    cluster_counters_.takeovers++;
    cluster::encode_envelope(value2_scratch_,
                             cluster::Envelope{cluster::EnvelopeKind::replace, shared_.settings.edge_id, 0, 0, 0,
                                               old->slot, old->generation, m.peer_id, {}, {}, {}});
    std::string_view argv[] = {
        publish_command_, cluster::signal_channel(key2_scratch_, shared_.cluster.key_prefix, old->edge_id, old->shard),
        value2_scratch_};
    cluster_command(argv);
  } else if (old && claim.local != ClaimOutcome::taken_over && old->shard < shard_.count() && old->shard <= UINT16_MAX) {
    // A connection of this edge the directory no longer knows (generation
    // checked on its shard).
    replaced = PeerLocation{static_cast<uint16_t>(old->shard), old->slot, old->generation};
  }
  finish_claim(std::move(claim.message), ClaimOutcome::taken_over, claim.session, replaced);
}

void EdgeShard::on_cluster_holder_checked(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  auto it = cluster_claims_.find(cookie);
  if (it == cluster_claims_.end()) return;
  ClusterClaim claim = std::move(it->second);
  cluster_claims_.erase(it);
  bool dead = status == valkey::CommandStatus::reply && reply->type() == resp::ReplyType::integer &&
              reply->integer() == 0;
  if (dead) return cluster_claim(std::move(claim));  // claim.stale: override that record only
  refuse_claim(std::move(claim));
}

void EdgeShard::refuse_claim(ClusterClaim claim) {
  ClaimPeer& m = *claim.message;
  cluster_counters_.claims_refused++;
  directory_.release(m.peer_id, m.who, m.join_sequence);
  // A local takeover lost to a holder elsewhere: this edge's old holder was
  // superseded in the cluster already; it goes too.
  if (claim.local == ClaimOutcome::taken_over) send_replace(claim.replaced);
  finish_claim(std::move(claim.message), ClaimOutcome::taken, {}, {});
}

// ---- cluster-wide maxViewers ---------------------------------------------------------

void EdgeShard::cluster_admit(PeerSession& s, std::unique_ptr<EnterSwarm> enter) {
  const ClusterSettings& c = shared_.cluster;
  uint64_t now_ms = unix_ms();
  Decimal now(now_ms);
  Decimal cap(enter->max_viewers);
  Decimal seat(now_ms + seat_reservation_ms);
  Decimal ttl(std::max<uint64_t>(c.presence_ttl_ms, seat_reservation_ms));
  std::string_view argv[] = {"1"sv, cluster::viewers_key(key_scratch_, c.key_prefix, s.pending.stream_id),
                             now.view(), cap.view(), s.pending.peer_id, seat.view(), ttl.view()};
  uint64_t cookie = ++cluster_cookie_;
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus status, const resp::ReplyView* reply) {
                            static_cast<EdgeShard*>(self)->on_cluster_admitted(id, status, reply);
                          },
                          this, cookie};
  if (cluster_script(ClusterScript::admit, argv, done)) {
    cluster_admissions_.emplace(cookie, ClusterAdmission{std::move(enter), reactor_now() + c.peers_timeout_ms});
    return;
  }
  // Valkey cannot take it: the edge-local cap, as when alone.
  send_enter(&s, std::move(enter));
}

void EdgeShard::on_cluster_admitted(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  auto it = cluster_admissions_.find(cookie);
  if (it == cluster_admissions_.end()) return;
  std::unique_ptr<EnterSwarm> enter = std::move(it->second.enter);
  cluster_admissions_.erase(it);
  bool answered = status == valkey::CommandStatus::reply && reply->type() == resp::ReplyType::integer;
  PeerSession* s = session_at(enter->who);
  bool current = s != nullptr && s->state == PeerState::joining && s->join_sequence == enter->join_sequence;
  // Abandoned meanwhile: nothing was entered, nothing to give back (the
  // seat reservation expires by itself); the claim went back with the join.
  if (!current) return;
  if (answered && current && reply->integer() == 0) {
    // Full cluster-wide: answered exactly as a full stream on this edge.
    cluster_counters_.viewers_full++;
    auto full = std::make_unique<EnterResult>();
    full->who = enter->who;
    full->join_sequence = enter->join_sequence;
    full->stream_id = enter->stream_id;
    full->peer_id.assign(enter->member.peer_id.view());
    full->full = true;
    return on(std::move(full));
  }
  // Seated: the cluster counted every edge's viewers, this one included, so
  // the local table does not cap again. Unanswered: the local cap, as alone.
  if (answered && reply->integer() == 1) enter->max_viewers = 0;
  send_enter(s, std::move(enter));
}

// ---- the policy document in Valkey ------------------------------------------------------

void EdgeShard::cluster_poll_policy() {
  std::string_view argv[] = {"GET"sv, cluster::policy_key(key_scratch_, shared_.cluster.key_prefix)};
  cluster_command(argv, valkey::Completion{[](void* self, uint64_t, valkey::CommandStatus status,
                                              const resp::ReplyView* reply) {
                                             static_cast<EdgeShard*>(self)->on_cluster_policy(status, reply);
                                           },
                                           this, 0});
}

void EdgeShard::on_cluster_policy(valkey::CommandStatus status, const resp::ReplyView* reply) {
  // Valkey unreachable: the last policy read from it stays (no flapping to
  // the file's while Valkey restarts).
  if (status != valkey::CommandStatus::reply) return;
  const std::string& prefix = shared_.cluster.key_prefix;
  std::optional<std::string_view> text;
  if (reply->type() == resp::ReplyType::string) {
    text = reply->text();
  } else if (reply->type() != resp::ReplyType::nil) {
    return;
  }
  PolicySource::ValkeyResult result = policy_source_.valkey_read(text);
  switch (result.change) {
    case PolicySource::ValkeyChange::unchanged:
      return;
    case PolicySource::ValkeyChange::removed:
      MF_LOG_NOTICE("policy: Valkey key {}policy removed: back to {}", prefix,
                    shared_.settings.policy_file.empty() ? "the defaults" : shared_.settings.policy_file);
      return apply_policy_sources();
    case PolicySource::ValkeyChange::invalid:
      MF_LOG_ERROR("policy: Valkey key {}policy: {} (keeping the current policy)", prefix, result.error);
      return;
    case PolicySource::ValkeyChange::loaded:
      MF_LOG_NOTICE("policy: loaded from Valkey key {}policy", prefix);
      cluster_counters_.policy_loads++;
      return apply_policy_sources();
  }
}

}  // namespace mf::edge

// ---- the operator page's cluster view ------------------------------------------

namespace mf::edge {

namespace {
// Other edges' summaries live 3 s past their last write (written every
// second); fields dead for a minute are deleted by the next reader.
constexpr uint64_t summary_ttl_ms = 3000;
constexpr uint64_t summary_trim_ms = 60000;
// /api/cluster requests waiting for Valkey at once; more get 503.
constexpr size_t max_cluster_answers = 16;
}  // namespace

ValkeyState EdgeShard::cluster_valkey_state() const {
  if (!cluster_) return ValkeyState::off;
  return cluster_ready() ? ValkeyState::up : ValkeyState::down;
}

void EdgeShard::cluster_publish_summary(std::string_view summary) {
  if (!cluster_ready()) return;
  std::string record = encode_summary_record(unix_ms() + summary_ttl_ms, summary);
  std::string_view hset[] = {"HSET"sv, cluster::summaries_key(key_scratch_, shared_.cluster.key_prefix),
                             shared_.settings.edge_id, record};
  cluster_command(hset);
}

void EdgeShard::cluster_answer(SocketHandle connection, bool head_only, std::string own) {
  auto respond = [&](std::string_view body) {
    admin_server_->respond(connection, http::format_document_response(200, "application/json", body, head_only));
  };
  size_t max_bytes = admin_server_->max_response_bytes() - max_response_head_bytes;
  ValkeyState state = cluster_valkey_state();
  if (state != ValkeyState::up) return respond(format_cluster_json(shared_.settings.edge_id, state, own, {}, max_bytes));
  if (cluster_answers_.size() >= max_cluster_answers) {
    admin_server_->respond(connection, http::format_document_response(503, "text/plain", "busy\n", head_only));
    return;
  }
  uint64_t id = ++next_cluster_answer_;
  std::string_view hgetall[] = {"HGETALL"sv, cluster::summaries_key(key_scratch_, shared_.cluster.key_prefix)};
  bool sent = cluster_command(hgetall, valkey::Completion{[](void* self, uint64_t cookie, valkey::CommandStatus status,
                                                             const resp::ReplyView* reply) {
                                                            static_cast<EdgeShard*>(self)->on_cluster_summaries(
                                                                cookie, status, reply);
                                                          },
                                                          this, id});
  if (!sent)
    return respond(format_cluster_json(shared_.settings.edge_id, ValkeyState::down, own, {}, max_bytes));
  cluster_answers_.push_back({id, connection, head_only, std::move(own)});
}

void EdgeShard::on_cluster_summaries(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  auto found = std::find_if(cluster_answers_.begin(), cluster_answers_.end(),
                            [&](const PendingClusterAnswer& a) { return a.id == cookie; });
  if (found == cluster_answers_.end()) return;
  PendingClusterAnswer answer = std::move(*found);
  cluster_answers_.erase(found);
  size_t max_bytes = admin_server_->max_response_bytes() - max_response_head_bytes;
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
      if (edge == shared_.settings.edge_id || record->expires_unix_ms < now) continue;
      others.push_back(record->summary);
    }
    if (!dead.empty()) {
      std::vector<std::string_view> hdel = {"HDEL"sv, cluster::summaries_key(key_scratch_, shared_.cluster.key_prefix)};
      hdel.insert(hdel.end(), dead.begin(), dead.end());
      cluster_command(hdel);
    }
  }
  std::string body = format_cluster_json(shared_.settings.edge_id, state, answer.own, others, max_bytes);
  admin_server_->respond(answer.connection,
                         http::format_document_response(200, "application/json", body, answer.head_only));
}

}  // namespace mf::edge
