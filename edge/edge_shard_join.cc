// EdgeShard, the join path (docs/architecture.md, "The edge on this runtime"):
// a join claims its peerId on the directory shard, enters the stream's swarm on
// the stream shard, and every reply that finds its join abandoned undoes what it
// granted; leaves and closes give back what a connection holds.
#include "edge/edge_shard.h"
#include "edge/edge_shard_support.h"

#include <openssl/rand.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/base/heap_allocation_counter.h"
#include "common/base/json_writer.h"
#include "common/base/keyed_hash.h"
#include "common/base/os_random.h"
#include "common/codec/http_response.h"
#include "common/base/log.h"
#include "edge/cluster_keys.h"
#include "edge/operator_page.h"
#include "edge/streams_json.h"

#include <fmt/format.h>

namespace mf::edge {

using namespace shard_support;

// ---- join ---------------------------------------------------------------------

void EdgeShard::handle_join(PeerSession& s, const SdkRequest& r) {
  if (s.state == PeerState::joining)
    return send_error(s, SdkErrorCode::bad_request, "join: a join is already in progress", {}, r.id_raw);
  if (s.state == PeerState::joined && r.peer_id != s.peer_id)
    return send_error(s, SdkErrorCode::bad_request, "peerId: a joined connection keeps its peerId", {}, r.id_raw);
  if (s.claims && !s.claims->covers(r.stream_id))
    return send_error(s, SdkErrorCode::bad_request, "streamId: not allowed by the token", {}, r.id_raw);
  if (s.state != PeerState::joined && (s.held_claim.held || s.in_swarm)) {
    // Only a joined connection holds anything between joins: a path that
    // forgot to give something back. Say so, and give it back now.
    counters_.obligation_anomalies++;
    MF_LOG_WARN("shard {}: connection {}:{} joins while holding a claim ({}) or a swarm seat ({})", shard_.id(),
                s.socket.slot, s.socket.generation, s.held_claim.held, s.in_swarm);
    give_up(s);
  }
  PeerSession::PendingJoin& p = s.pending;
  p.peer_id.assign(r.peer_id);
  p.stream_id.assign(r.stream_id);
  p.rendition.assign(r.rendition);
  p.ref_raw.assign(r.id_raw);
  p.switching = s.state == PeerState::joined;
  p.old_stream_id = p.switching ? s.stream_id : std::string();
  // A switch keeps what the peer declared unless the join declares it anew.
  p.topology = r.topology.present ? topology_from(r.topology) : (p.switching ? s.topology : Topology{});
  p.accepting_peers = r.caps.has_accepting_peers ? r.caps.accepting_peers : (p.switching ? s.accepting_peers : true);
  p.caps_max_peers = r.caps.has_max_peers ? r.caps.max_peers : (p.switching ? s.caps_max_peers : UINT32_MAX);
  p.policy = policy_->effective(r.stream_id);
  p.started_ns = monotonic_ns();
  s.state = PeerState::joining;
  uint32_t sequence = ++s.join_sequence;

  auto claim = std::make_unique<ClaimPeer>();
  claim->peer_id = p.peer_id;
  claim->stream_id = p.stream_id;
  claim->rendition = p.rendition;
  claim->has_offered_session = r.has_session;
  claim->offered_session.assign(r.session);
  std::optional<std::string> session = fresh_session();
  if (!session) {
    // Fail closed: no identity without a secret nobody can guess.
    counters_.sessions_refused++;
    MF_LOG_ERROR("shard {}: no cryptographic randomness for a session: join refused, connection closed", shard_.id());
    s.state = p.switching ? PeerState::joined : PeerState::connected;
    s.server->close(s.socket, ws::close_code::internal_error, "no session randomness");
    return;
  }
  claim->fresh_session = std::move(*session);
  claim->who = location_of(s);
  claim->join_sequence = sequence;
  if (!send(directory_shard(p.peer_id), std::move(claim))) {
    s.server->close(s.socket, ws::close_code::internal_error, "edge busy");
  }
}

void EdgeShard::on(std::unique_ptr<ClaimPeer> m) {
  std::optional<std::string_view> offered;
  if (m->has_offered_session) offered = m->offered_session;
  ClaimResult result = directory_.claim(m->peer_id, m->who, m->join_sequence, m->stream_id, offered, m->fresh_session);
  // In a cluster the owner key in Valkey decides too (another edge may hold
  // the peerId); a peerId held here without the session is refused at once.
  if (result.outcome != ClaimOutcome::taken && cluster_ready()) {
    return cluster_->claim(ClusterClaim{std::move(m), result.outcome, std::string(result.session), result.replaced, {}, 0});
  }
  finish_claim(std::move(m), result.outcome, result.session, result.replaced);
}

void EdgeShard::finish_claim(std::unique_ptr<ClaimPeer> m, ClaimOutcome outcome, std::string_view session,
                             const PeerLocation& replaced) {
  if (outcome == ClaimOutcome::taken_over) {
    counters_.takeovers++;
    if (replaced.slot != UINT32_MAX) send_replace(replaced);
  }
  auto reply = std::make_unique<ClaimResultPayload>();
  reply->outcome = outcome;
  reply->session.assign(session);
  // The claim's handle, for the connection's signals (in a cluster the
  // verdict comes later than the local claim: the entry is looked up again).
  if (outcome != ClaimOutcome::taken)
    if (const DirectoryEntry* entry = directory_.find(m->peer_id); entry != nullptr && entry->location == m->who)
      reply->handle = entry->handle;
  reply->who = m->who;
  reply->join_sequence = m->join_sequence;
  reply->peer_id = std::move(m->peer_id);
  reply->stream_id = std::move(m->stream_id);
  reply->rendition = std::move(m->rendition);
  send(m->who.shard, std::move(reply));
}

void EdgeShard::send_replace(const PeerLocation& who) {
  send(who.shard, ReplaceConnection{who});
}

void EdgeShard::on_replace_connection(const PeerLocation& who) {
  PeerSession* s = session_at(who);
  if (s == nullptr) return;
  // The new holder owns the identity now: this connection must not release
  // it or its swarm membership on the way out (both checks are by location).
  s->server->close(s->socket, close_code::replaced, "replaced by a newer connection");
}

void EdgeShard::on(std::unique_ptr<ClaimResultPayload> m) {
  PeerSession* s = session_at(m->who);
  bool current = s != nullptr && s->state == PeerState::joining && s->join_sequence == m->join_sequence;
  if (!current) {
    // The connection left or closed meanwhile: nobody else knows of this
    // grant, so its reply gives the identity back (that claim only).
    if (m->outcome != ClaimOutcome::taken) {
      counters_.late_grants_undone++;
      send_release(m->peer_id, m->who, m->join_sequence);
      if (cluster_)
        cluster_->release_owner(m->peer_id, m->who, m->stream_id, m->rendition, cluster::session_digest(m->session));
    }
    return;
  }
  PeerSession::PendingJoin& p = s->pending;
  if (m->outcome == ClaimOutcome::taken) {
    s->state = p.switching ? PeerState::joined : PeerState::connected;
    return send_error(*s, SdkErrorCode::peer_id_taken, "peerId is held by another connection", {}, p.ref_raw);
  }
  s->session = std::move(m->session);
  s->directory_handle = m->handle;
  if (cluster_) s->session_digest = cluster::session_digest(s->session);
  // The connection owns this claim now; a switch's claim supersedes the old
  // one (the same directory entry and owner key, now named by this join).
  s->held_claim.held = true;
  s->held_claim.sequence = m->join_sequence;
  s->held_claim.peer_id = p.peer_id;
  s->held_claim.stream_id = p.stream_id;
  s->held_claim.rendition = p.rendition;
  // Leave the old swarm before entering the new one; the client sees the
  // switch as one step (`joined` comes after both).
  if (p.switching) leave_swarm_held(*s);
  auto enter = std::make_unique<EnterSwarm>();
  enter->stream_id = p.stream_id;
  enter->rendition = p.rendition;
  enter->member.peer_id.assign(p.peer_id);
  enter->member.topology = p.topology;
  enter->member.location = member_location_of(*s, m->join_sequence);
  enter->member.accepting_peers = p.accepting_peers;
  enter->max_viewers = p.policy.max_viewers;
  enter->initial_peers = p.policy.mesh_enabled ? effective_max_peers(p.policy, p.caps_max_peers) : 0;
  enter->mesh_enabled = p.policy.mesh_enabled;
  enter->who = m->who;
  enter->join_sequence = m->join_sequence;
  if (enter->max_viewers != 0 && cluster_ready()) return cluster_->admit(std::move(enter));
  send_enter(s, std::move(enter));
}

void EdgeShard::send_enter(PeerSession* s, std::unique_ptr<EnterSwarm> enter) {
  uint32_t to = stream_shard(enter->stream_id);
  if (!send(to, std::move(enter)) && s != nullptr)
    s->server->close(s->socket, ws::close_code::internal_error, "edge busy");
}

void EdgeShard::on(std::unique_ptr<ReleasePeer> m) { directory_.release(m->peer_id, m->who, m->sequence); }

void EdgeShard::on(std::unique_ptr<EnterSwarm> m) {
  uint32_t back = m->who.shard;
  send(back, stream_owner_.enter(*m, reactor_now()));
}

void EdgeShard::on(std::unique_ptr<EnterResult> m) {
  PeerSession* s = session_at(m->who);
  bool current = s != nullptr && s->state == PeerState::joining && s->join_sequence == m->join_sequence;
  if (!current) {
    // The join was abandoned while the enter was in flight: this reply is
    // the only one that knows of the seat, it gives it back.
    if (!m->full) {
      counters_.late_grants_undone++;
      send_leave_swarm(m->stream_id, m->peer_id,
                       MemberLocation{0, m->who.shard, m->who.slot, m->who.generation, m->join_sequence});
    }
    return;
  }
  PeerSession::PendingJoin& p = s->pending;
  if (m->full) {
    // Not joined anywhere now (a switch already left its old swarm): give
    // the identity back so it can join again later.
    release_claim_held(*s);
    s->join_sequence++;
    s->state = PeerState::connected;
    return send_error(*s, SdkErrorCode::stream_full, "stream is full", {}, p.ref_raw, {},
                      shared_.settings.stream_full_retry_ms);
  }
  count_member_joined(*s, p.stream_id);
  s->stream_key = m->stream_key;
  s->in_swarm = true;
  s->member_sequence = m->join_sequence;
  s->state = PeerState::joined;
  s->peer_id = p.peer_id;
  s->signal_head = signal_head(p.peer_id);
  s->stream_id = p.stream_id;
  s->rendition = p.rendition;
  s->topology = p.topology;
  s->accepting_peers = p.accepting_peers;
  s->caps_max_peers = p.caps_max_peers;
  s->policy = p.policy;
  s->stats_credit.start(reactor_now());
  s->proposals_received = 0;
  counters_.joins++;
  char policy_json[max_policy_json_bytes];
  size_t policy_len = write_policy_json(policy_json, s->policy);
  JoinedReply joined{s->peer_id, s->stream_id, s->rendition, shared_.settings.edge_id, s->session,
                     shared_.settings.heartbeat_ms, std::string_view(policy_json, policy_len), p.ref_raw};
  send_text(*s, write_joined(reply_, joined));
  cluster_register(*s);
  if (s->policy.mesh_enabled)
    deliver_peers(*s, std::move(m->candidates), m->wanted, {}, {}, p.started_ns);
  else
    join_to_peers_.record(static_cast<double>(monotonic_ns() - p.started_ns) / 1e9);
}

void EdgeShard::send_leave_swarm(std::string_view stream_id, std::string_view peer_id, const MemberLocation& where) {
  auto leave = std::make_unique<LeaveSwarm>();
  leave->stream_id.assign(stream_id);
  leave->peer_id.assign(peer_id);
  leave->where = where;
  send(stream_shard(stream_id), std::move(leave));
}

void EdgeShard::send_release(std::string_view peer_id, const PeerLocation& who, uint32_t sequence) {
  auto release = std::make_unique<ReleasePeer>();
  release->peer_id.assign(peer_id);
  release->who = who;
  release->sequence = sequence;
  send(directory_shard(peer_id), std::move(release));
}

void EdgeShard::leave_swarm_held(PeerSession& s) {
  if (!s.in_swarm) return;
  s.in_swarm = false;
  cluster_unregister(s);
  send_leave_swarm(s.stream_id, s.peer_id, member_location_of(s, s.member_sequence));
  count_member_left(s);
}

void EdgeShard::release_claim_held(PeerSession& s) {
  if (!s.held_claim.held) return;
  PeerSession::HeldClaim& c = s.held_claim;
  c.held = false;
  send_release(c.peer_id, location_of(s), c.sequence);
  if (cluster_) cluster_->release_owner(c.peer_id, location_of(s), c.stream_id, c.rendition, s.session_digest);
}

void EdgeShard::give_up(PeerSession& s) {
  if (s.in_swarm) counters_.leaves++;
  leave_swarm_held(s);
  release_claim_held(s);
  // A claim or enter still in flight finds the sequence moved: its reply
  // gives back what it granted.
  s.join_sequence++;
}

void EdgeShard::count_member_joined(PeerSession& s, std::string_view stream_id) {
  peers_joined_++;
  s.signal_counts_index = signal_counts_.joined(stream_id);
}

void EdgeShard::count_member_left(PeerSession& s) {
  peers_joined_--;
  signal_counts_.left(s.signal_counts_index);
  s.signal_counts_index = StreamSignalCounts::no_entry;
  s.stream_key = 0;
}

void EdgeShard::on(std::unique_ptr<LeaveSwarm> m) { stream_owner_.leave(*m); }

void EdgeShard::handle_leave(PeerSession& s, const SdkRequest& r) {
  if (s.state == PeerState::joined || s.state == PeerState::joining) {
    give_up(s);
    s.state = PeerState::connected;
  }
  send_text(s, write_left(reply_, r.id_raw));
}

}  // namespace mf::edge
