#include "edge/stream_table.h"

#include <algorithm>

#include "common/base/keyed_hash.h"

namespace mf::edge {

StreamTable::StreamTable(uint64_t seed, uint16_t shard)
    : rng_(seed), seed_(seed), key_base_((static_cast<uint64_t>(shard) + 1) << 48) {}

bool StreamTable::same_location(const MemberLocation& a, const MemberLocation& b) {
  return a.edge_index == b.edge_index && a.shard == b.shard && a.connection_slot == b.connection_slot &&
         a.connection_generation == b.connection_generation && a.join_sequence == b.join_sequence;
}

EnterOutcome StreamTable::enter(std::string_view stream_id, std::string_view rendition, const Member& member,
                                uint32_t max_viewers) {
  auto stream_it = streams_.find(stream_id);
  if (stream_it == streams_.end()) {
    stream_it = streams_.emplace(std::string(stream_id), Stream{}).first;
    stream_it->second.key = key_base_ | (++streams_made_ & ((uint64_t{1} << 48) - 1));
  }
  Stream& stream = stream_it->second;
  std::string_view peer_id = member.peer_id.view();
  auto existing = stream.members.find(peer_id);
  bool moved = existing != stream.members.end();
  if (moved) {
    remove_member(stream, existing);
  } else if (max_viewers != 0 && stream.members.size() >= max_viewers) {
    if (stream.members.empty()) streams_.erase(stream_it);
    return EnterOutcome::full;
  }
  auto swarm_it = stream.swarms.find(rendition);
  if (swarm_it == stream.swarms.end())
    swarm_it = stream.swarms.emplace(std::string(rendition), Swarm(seed_ ^ keyed_hash(rendition))).first;
  MemberHandle handle = swarm_it->second.add(member);
  stream.members.emplace(std::string(peer_id), MemberRef{std::string(rendition), handle});
  stream.joins++;
  return moved ? EnterOutcome::moved : EnterOutcome::entered;
}

void StreamTable::remove_member(Stream& stream, MemberMap::iterator member) {
  auto swarm_it = stream.swarms.find(member->second.rendition);
  if (swarm_it != stream.swarms.end()) {
    swarm_it->second.remove(member->second.handle);
    if (swarm_it->second.empty()) stream.swarms.erase(swarm_it);
  }
  stream.members.erase(member);
}

StreamTable::FoundMember StreamTable::find_member(std::string_view stream_id, std::string_view peer_id,
                                                 const MemberLocation& who) {
  auto stream_it = streams_.find(stream_id);
  if (stream_it == streams_.end()) return {};
  Stream& stream = stream_it->second;
  auto member = stream.members.find(peer_id);
  if (member == stream.members.end()) return {};
  auto swarm_it = stream.swarms.find(member->second.rendition);
  if (swarm_it == stream.swarms.end()) return {};
  const Member* m = swarm_it->second.find(member->second.handle);
  // Only the registered location may act: a late message from a replaced
  // connection leaves its successor alone.
  if (m == nullptr || !same_location(m->location, who)) return {};
  return FoundMember{stream_it, member, &swarm_it->second};
}

bool StreamTable::leave(std::string_view stream_id, std::string_view peer_id, const MemberLocation& who) {
  FoundMember found = find_member(stream_id, peer_id, who);
  if (found.swarm == nullptr) return false;
  Stream& stream = found.stream->second;
  remove_member(stream, found.member);
  if (stream.members.empty()) streams_.erase(found.stream);
  return true;
}

bool StreamTable::update(std::string_view stream_id, std::string_view peer_id, const MemberLocation& who,
                         const Topology& topology, bool accepting_peers) {
  FoundMember found = find_member(stream_id, peer_id, who);
  if (found.swarm == nullptr) return false;
  return found.swarm->update(found.member->second.handle, topology, accepting_peers);
}

size_t StreamTable::pick(std::string_view stream_id, std::string_view rendition, const PickRequest& request,
                         std::span<PickedPeer> out, std::span<char> topology_scratch) {
  auto stream_it = streams_.find(stream_id);
  if (stream_it == streams_.end()) return 0;
  auto swarm_it = stream_it->second.swarms.find(rendition);
  if (swarm_it == stream_it->second.swarms.end()) return 0;
  Swarm& swarm = swarm_it->second;
  MemberHandle handles[Swarm::max_pick];
  size_t wanted = std::min<size_t>({out.size(), Swarm::max_pick, request.count});
  PickRequest bounded = request;
  bounded.count = static_cast<uint32_t>(wanted);
  size_t n = swarm.pick(bounded, std::span<MemberHandle>(handles, wanted), rng_);
  size_t used = 0;
  size_t written = 0;
  for (size_t i = 0; i < n; ++i) {
    const Member& m = swarm.at(handles[i]);
    size_t room = topology_scratch.size() - used;
    size_t len = write_topology_json(topology_scratch.subspan(used, room), m.topology);
    if (len == 0) break;  // scratch too small: return what fits
    out[written++] = PickedPeer{m.peer_id.view(), swarm_it->first, std::string_view(topology_scratch.data() + used, len)};
    used += len;
  }
  stream_it->second.proposals += written;
  return written;
}

void StreamTable::add_stats(std::string_view stream_id, const StreamStats& delta) {
  auto stream_it = streams_.find(stream_id);
  if (stream_it == streams_.end()) return;
  stream_it->second.stats.add(delta);
}

uint64_t StreamTable::key(std::string_view stream_id) const {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? 0 : it->second.key;
}

uint32_t StreamTable::viewers(std::string_view stream_id) const {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? 0 : static_cast<uint32_t>(it->second.members.size());
}

void StreamTable::summarize(std::vector<StreamSummary>& out) const {
  for (const auto& [id, stream] : streams_) {
    StreamSummary& summary = out.emplace_back();
    summary.stream_id = id;
    summary.viewers = static_cast<uint32_t>(stream.members.size());
    summary.joins = stream.joins;
    summary.proposals = stream.proposals;
    summary.stats = stream.stats;
    summary.renditions.reserve(stream.swarms.size());
    for (const auto& [rendition, swarm] : stream.swarms) summary.renditions.push_back(RenditionPeers{rendition, swarm.size()});
    std::sort(summary.renditions.begin(), summary.renditions.end(),
              [](const RenditionPeers& a, const RenditionPeers& b) { return a.rendition < b.rendition; });
  }
}

}  // namespace mf::edge
