#include "edge/stream_owner.h"

#include <algorithm>
#include <span>
#include <string>

namespace mf::edge {

StreamOwner::StreamOwner(uint64_t seed, uint16_t shard)
    : streams_(seed, shard), topology_scratch_(Swarm::max_pick * max_topology_json_bytes) {}

std::unique_ptr<EnterResult> StreamOwner::enter(const EnterSwarm& m, uint64_t now_ms) {
  EnterOutcome outcome = streams_.enter(m.stream_id, m.rendition, m.member, m.max_viewers);
  auto reply = std::make_unique<EnterResult>();
  reply->who = m.who;
  reply->join_sequence = m.join_sequence;
  reply->stream_id = m.stream_id;
  reply->peer_id.assign(m.member.peer_id.view());
  reply->full = outcome == EnterOutcome::full;
  if (!reply->full) reply->stream_key = streams_.key(m.stream_id);
  if (!reply->full && m.mesh_enabled) {
    PickRequest request;
    request.requester = m.member.peer_id.view();
    request.requester_topology = m.member.topology;
    request.count = std::min<uint32_t>(m.initial_peers, Swarm::max_pick);
    request.now_ms = now_ms;
    reply->candidates = pick_candidates(m.stream_id, m.rendition, request);
    reply->wanted = request.count;
  }
  return reply;
}

std::unique_ptr<PeersResult> StreamOwner::pick(std::unique_ptr<PickPeers> m, uint64_t now_ms) {
  std::string_view exclude[Swarm::max_exclude];
  size_t exclude_count = std::min(m->exclude.size(), Swarm::max_exclude);
  for (size_t i = 0; i < exclude_count; ++i) exclude[i] = m->exclude[i];
  PickRequest request;
  request.requester = m->requester;
  request.requester_topology = m->topology;
  request.count = m->count;
  request.exclude = std::span<const std::string_view>(exclude, exclude_count);
  request.now_ms = now_ms;
  auto reply = std::make_unique<PeersResult>();
  reply->candidates = pick_candidates(m->stream_id, m->rendition, request);
  reply->wanted = m->count;
  reply->ref_raw = std::move(m->ref_raw);
  reply->exclude = std::move(m->exclude);
  reply->who = m->who;
  return reply;
}

CandidateList StreamOwner::pick_candidates(std::string_view stream_id, std::string_view rendition,
                                           const PickRequest& request) {
  PickedPeer picked[Swarm::max_pick];
  size_t n = request.count == 0 ? 0 : streams_.pick(stream_id, rendition, request, picked, topology_scratch_);
  CandidateList list;
  for (size_t i = 0; i < n; ++i) list.add(picked[i].peer_id, picked[i].rendition, picked[i].topology_json);
  return list;
}

void StreamOwner::leave(const LeaveSwarm& m) { streams_.leave(m.stream_id, m.peer_id, m.where); }

void StreamOwner::update(const UpdateMember& m) {
  streams_.update(m.stream_id, m.peer_id, m.where, m.topology, m.accepting_peers);
}

void StreamOwner::add_stats(const StatsDelta& m) { streams_.add_stats(m.stream_id, m.delta); }

}  // namespace mf::edge
