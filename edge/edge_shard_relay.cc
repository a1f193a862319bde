// EdgeShard, the joined connection's traffic: signals relayed through the
// target's directory shard to its connection's shard (docs/architecture.md,
// "The relay path"), need-peers, updates and stats.
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
#include "common/base/same_bytes.h"
#include "common/codec/http_response.h"
#include "common/base/log.h"
#include "edge/cluster_keys.h"
#include "edge/operator_page.h"
#include "edge/streams_json.h"

#include <fmt/format.h>

namespace mf::edge {

using namespace shard_support;

// ---- signal -------------------------------------------------------------------

void EdgeShard::handle_signal(PeerSession& s, const SignalFields& r, std::string_view id_raw) {
  if (s.state != PeerState::joined) return send_error(s, SdkErrorCode::not_joined, "signal before join", {}, id_raw);
  if (!s.policy.mesh_enabled)
    return send_error(s, SdkErrorCode::mesh_disabled, "the mesh is disabled for this stream", {}, id_raw, r.to);
  // A peer that signalled this one lately is known by its handle, whose
  // shard is its directory shard: no hashing. Else the text is hashed once,
  // here, and the hash travels for D's lookup.
  const DirectoryHandle* known = s.recent_peers.find(r.to);
  const uint64_t to_hash = known != nullptr ? 0 : PeerDirectory::hash_of(r.to);
  const uint32_t directory = known != nullptr ? known->shard : directory_shard_of(to_hash);
  // Directory entry and target both here: delivered now, from the request's
  // own bytes. Everything else (another shard, another edge, a refusal)
  // takes the packet below, and so do the refusals the checks here found.
  if (directory == shard_.id() && deliver_in_place(s, r, known, to_hash)) return;

  std::unique_ptr<SignalPacket> packet = signal_pool_.acquire();
  packet->to.assign(r.to);
  packet->from.assign(s.peer_id);
  packet->sender_stream.assign(s.stream_id);
  packet->ref_raw.assign(id_raw);
  // Rendered once, into the string that travels to the target's shard and
  // is sent from there as it is: the sender's head, rendered at its join,
  // then the kind and `data`.
  const size_t bound = s.signal_head.size() + signal_tail_bytes + r.data_raw.size();
  SignalPacketPool::reserve_text(*packet, bound);
  packet->text.resize_and_overwrite(bound, [&](char* out, size_t size) {
    return write_signal(std::span<char>(out, size), s.signal_head, r).size();
  });
  packet->sender = location_of(s);
  packet->sender_handle = s.directory_handle;
  packet->sender_stream_key = s.stream_key;
  if (known != nullptr) packet->to_handle = *known;
  packet->to_hash = to_hash;
  if (!send(directory, RouteSignal(std::move(packet)))) {
    counters_.signals_dropped++;
    send_error(s, SdkErrorCode::rate_limited, "signal dropped: edge busy", {}, id_raw, r.to);
  }
}

// The in-place path's helpers are forced inline: each was a call of its own,
// 10 to 15 instructions of entry and exit per signal (docs/benchmarks.md,
// "One signal's instructions").
[[gnu::always_inline]] inline bool EdgeShard::deliver_in_place(PeerSession& s, const SignalFields& r,
                                                               const DirectoryHandle* known, uint64_t to_hash) {
  const DirectoryEntry* entry = directory_entry(known, r.to, to_hash);
  if (entry == nullptr || entry->location.shard != shard_.id()) return false;
  // No comparison of the entry's stream text: the target found here holds
  // this very claim (its handle) and its stream's key must be the sender's,
  // and keys are never reused, so a peer of another stream fails there and
  // is refused by the packet path as on_route_signal refuses it.
  PeerSession* target = signal_target(entry->location, entry->handle, s.stream_key);
  if (target == nullptr) return false;
  deliver_signal(*target, s.peer_id, s.directory_handle, signal_text(s.signal_head, r).view());
  return true;
}

[[gnu::always_inline]] inline const DirectoryEntry* EdgeShard::directory_entry(const DirectoryHandle* handle,
                                                                                 std::string_view to,
                                                                                 uint64_t& to_hash) const {
  if (handle != nullptr && handle->valid()) {
    if (const DirectoryEntry* entry = directory_.resolve(*handle, to)) return entry;
  }
  // No handle, or a stale one (the peer left, or joined again since).
  if (to_hash == 0) to_hash = PeerDirectory::hash_of(to);
  return directory_.find(to, to_hash);
}

[[gnu::always_inline]] inline EdgeShard::PeerSession* EdgeShard::signal_target(const PeerLocation& where,
                                                                                 const DirectoryHandle& to_handle,
                                                                                 uint64_t sender_stream_key) {
  // All integers: the connection by slot and generation, the identity by its
  // directory claim, the stream by its key.
  PeerSession* target = session_at(where);
  if (target == nullptr || target->state != PeerState::joined || target->directory_handle != to_handle ||
      sender_stream_key == 0 || target->stream_key != sender_stream_key)
    return nullptr;
  return target;
}

[[gnu::always_inline]] inline void EdgeShard::deliver_signal(PeerSession& target, std::string_view from,
                                                             const DirectoryHandle& sender_handle,
                                                             std::span<const std::string_view> text) {
  counters_.signals_relayed++;
  signal_counts_.delivered(target.signal_counts_index);
  // Its reply goes back by the sender's handle.
  target.recent_peers.remember(from, sender_handle);
  target.server->send_text(target.socket, text);
}

void EdgeShard::on_route_signal(std::unique_ptr<SignalPacket> m) {
  const DirectoryEntry* entry = directory_entry(&m->to_handle, m->to, m->to_hash);
  // Not on this edge: maybe on another one of the cluster. A signal that
  // missed at a cached place of another edge is settled there too, even if
  // the peer is on this edge now (docs/cluster.md, "The peer-location cache").
  if ((entry == nullptr || m->relookup) && cluster_) return cluster_->route_signal(std::move(m));
  // The same-stream guard: a peer of another stream is indistinguishable
  // from an absent one (the edge does not reveal it exists), refused here as
  // an absent one is. The entry's stream is the claim's text (the stream's
  // key does not exist yet at the claim): a comparison, not a hash. T checks
  // again by key.
  if (entry == nullptr || !same_bytes(entry->stream_id, m->sender_stream)) {
    uint32_t back = m->sender.shard;
    send(back, SignalFailed(std::move(m)));
    return;
  }
  m->to_handle = entry->handle;
  m->target = entry->location;
  uint32_t target_shard = entry->location.shard;
  if (!send(target_shard, DeliverSignal(std::move(m)))) counters_.signals_dropped++;
}

void EdgeShard::on_deliver_signal(std::unique_ptr<SignalPacket> m) {
  PeerSession* target = signal_target(m->target, m->to_handle, m->sender_stream_key);
  if (target == nullptr) {
    uint32_t back = m->sender.shard;
    send(back, SignalFailed(std::move(m)));
    return;
  }
  const std::string_view text[1] = {m->text};
  deliver_signal(*target, m->from, m->sender_handle, text);
  recycle_signal(std::move(m));
}

void EdgeShard::on_signal_failed(std::unique_ptr<SignalPacket> m) {
  signal_not_found(m->sender, m->to, m->ref_raw);
  recycle_signal(std::move(m));
}

void EdgeShard::recycle_signal(std::unique_ptr<SignalPacket> m) {
  SignalPacket* full = signal_pool_.release(std::move(m));
  if (full != nullptr)
    send(full->home_shard, SignalPacketsReturned(full));
  // A batch begun is owed home: the timer runs once for it.
  if (signal_pool_.pending_batches() > 0) shard_.reactor().schedule_deferred(signal_return_task_);
}

void EdgeShard::flush_signal_returns() {
  counters_.signal_return_timer_runs++;
  signal_pool_.flush([this](uint32_t home, SignalPacket* chain) {
    send(home, SignalPacketsReturned(chain));
  });
}

void EdgeShard::signal_not_found(const PeerLocation& sender_location, std::string_view to, std::string_view ref_raw) {
  PeerSession* sender = session_at(sender_location);
  counters_.signals_failed++;
  if (sender == nullptr) return;
  send_error(*sender, SdkErrorCode::peer_not_found, "peer not found in this stream", {}, ref_raw, to);
}

// ---- need-peers, update, stats ------------------------------------------------

void EdgeShard::handle_need_peers(PeerSession& s, const SdkRequest& r) {
  if (s.state != PeerState::joined) return send_error(s, SdkErrorCode::not_joined, "need-peers before join", {}, r.id_raw);
  if (!s.policy.mesh_enabled) return send_error(s, SdkErrorCode::mesh_disabled, "the mesh is disabled for this stream", {}, r.id_raw);
  uint32_t limit = effective_max_peers(s.policy, s.caps_max_peers);
  auto pick = std::make_unique<PickPeers>();
  pick->stream_id = s.stream_id;
  pick->rendition = s.rendition;
  pick->requester = s.peer_id;
  pick->ref_raw.assign(r.id_raw);
  pick->topology = s.topology;
  pick->count = r.has_count ? std::min(r.count, limit) : limit;
  pick->exclude.reserve(r.exclude.size());
  for (std::string_view peer : r.exclude) pick->exclude.emplace_back(peer);
  pick->who = location_of(s);
  if (!send(stream_shard(s.stream_id), std::move(pick)))
    send_error(s, SdkErrorCode::rate_limited, "need-peers dropped: edge busy", {}, r.id_raw);
}

void EdgeShard::on(std::unique_ptr<PickPeers> m) {
  uint32_t back = m->who.shard;
  send(back, stream_owner_.pick(std::move(m), reactor_now()));
}

void EdgeShard::send_peers(PeerSession& s, const CandidateList& local, const CandidateList& remote,
                           std::string_view ref_raw, uint64_t started_ns) {
  PeerCandidate candidates[Swarm::max_pick];
  size_t n = 0;
  auto take = [&](std::string_view peer_id, std::string_view rendition, std::string_view topology_json) {
    if (n < Swarm::max_pick) candidates[n++] = PeerCandidate{peer_id, rendition, topology_json};
  };
  local.for_each(take);
  remote.for_each(take);
  counters_.proposals += n;
  s.proposals_received += n;
  if (cluster_ && remote.count != 0)
    cluster_->count_remote_proposals(std::min<size_t>(remote.count, n - std::min<size_t>(n, local.count)));
  send_text(s, write_peers(reply_, std::span<const PeerCandidate>(candidates, n), ref_raw));
  if (started_ns != 0) join_to_peers_.record(static_cast<double>(monotonic_ns() - started_ns) / 1e9);
}

void EdgeShard::on(std::unique_ptr<PeersResult> m) {
  PeerSession* s = session_at(m->who);
  if (s == nullptr || s->state != PeerState::joined) return;
  deliver_peers(*s, std::move(m->candidates), m->wanted, std::move(m->exclude), m->ref_raw, 0);
}

void EdgeShard::handle_update(PeerSession& s, const SdkRequest& r) {
  if (s.state != PeerState::joined) return send_error(s, SdkErrorCode::not_joined, "update before join", {}, r.id_raw);
  if (r.topology.present) s.topology = topology_from(r.topology);
  if (r.caps.has_accepting_peers) s.accepting_peers = r.caps.accepting_peers;
  if (r.caps.has_max_peers) s.caps_max_peers = r.caps.max_peers;
  cluster_register(s);
  auto update = std::make_unique<UpdateMember>();
  update->stream_id = s.stream_id;
  update->peer_id = s.peer_id;
  update->where = member_location_of(s, s.member_sequence);
  update->topology = s.topology;
  update->accepting_peers = s.accepting_peers;
  send(stream_shard(s.stream_id), std::move(update));
}

void EdgeShard::on(std::unique_ptr<UpdateMember> m) { stream_owner_.update(*m); }

void EdgeShard::handle_stats(PeerSession& s, const SdkRequest& r) {
  if (s.state != PeerState::joined) return send_error(s, SdkErrorCode::not_joined, "stats before join", {}, r.id_raw);
  // Cumulative since join, credited within what is plausible for the time
  // joined (edge/stats_credit.h, docs/protocol.md).
  auto field = [](bool has, uint64_t value) { return has ? std::optional<uint64_t>(value) : std::nullopt; };
  ReportedStats report{field(r.has_p2p_bytes, r.p2p_bytes), field(r.has_cdn_bytes, r.cdn_bytes),
                       field(r.has_uploaded_bytes, r.uploaded_bytes),
                       field(r.has_connected_proposals, r.connected_proposals)};
  bool clamped = false;
  StreamStats delta = s.stats_credit.credit(report, reactor_now(), s.proposals_received, clamped);
  if (clamped) counters_.stats_clamped++;
  if (delta.p2p_bytes == 0 && delta.cdn_bytes == 0 && delta.uploaded_bytes == 0 && delta.connected_proposals == 0) return;
  auto message = std::make_unique<StatsDelta>();
  message->stream_id = s.stream_id;
  message->delta = delta;
  send(stream_shard(s.stream_id), std::move(message));
}

void EdgeShard::on(std::unique_ptr<StatsDelta> m) {
  stream_owner_.add_stats(*m);
  counters_.offload.add(m->delta);  // never decreases: streams that ended still count
}

}  // namespace mf::edge
