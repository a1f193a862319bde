// The cluster of edges through Valkey (docs/cluster.md; layout in edge/cluster_keys.h,
// operations in docs/cluster.md): each shard has its own valkey::Client on its
// own ring and, for the connections it holds, registers presence, answers
// signals published to its channel, and adds candidates from other edges to
// `peers`. Without [valkey] address none of this runs (cluster_ stays null).
//
// What is exact and what is not:
//   - presence is eventually consistent: written when a peer joins, refreshed
//     every refresh_ms, removed when it leaves; an edge that dies leaves its
//     records until its liveness entry expires (3 s: not proposed any more) and
//     the records themselves expire (presence_ttl_ms).
//   - while Valkey is down the edge serves alone: no write is queued (they are
//     counted as skipped), and every local peer is registered again as soon as
//     the command link is ready, so nothing is lost that a refresh would not
//     restore.
//   - signals keep their order per pair: every signal to one target goes
//     through the target's directory shard on this edge (hash of its peerId),
//     whose one Valkey connection sends lookups and publishes in order, and
//     Valkey delivers one channel's messages in order.
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
namespace {

// The swarm scripts get three keys of one hash tag: the swarm's index and
// records, and the stream's viewers (every rendition, every edge).
//
// Registers members of one swarm: ARGV expiry-ms ttl-ms then (peerId, record)
// pairs. The keys expire with their members when no edge refreshes them.
constexpr std::string_view register_script = R"(for i = 3, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[3], ARGV[1], ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 1)";

// Removes a member only if its record is still the one given (a successor's
// stays).
constexpr std::string_view unregister_script = R"(if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return 1)";

// The claim of a peerId (uniqueness and takeover across edges). KEYS[1] the
// owner key; ARGV: 1 the claimer's record (ending with its session digest),
// 2 its holder prefix, 3 TTL ms, 4 the digest of the offered session ('' if
// none), 5 a record to override ('' if none: a dead edge's, see the caller).
// Free, already this connection's, or ARGV[5]: written, {0, old}. Held by
// another connection whose session digest is the offered one: written (the
// claimer's record carries the digest of its fresh session: a takeover
// rotates the session), {1, old}: the old holder gets 4001. Otherwise
// untouched, {2, holder}.
constexpr std::string_view claim_script = R"(local cur = redis.call('GET', KEYS[1])
local outcome = 0
if cur and string.sub(cur, 1, #ARGV[2]) ~= ARGV[2] and cur ~= ARGV[5] then
  if ARGV[4] == '' or string.sub(cur, -64) ~= ARGV[4] then return {2, cur} end
  outcome = 1
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return {outcome, cur or ''})";

// Writes a holder's owner record only while the key is free or still names
// that holder (ARGV[2], its prefix): 1; another holder took the peerId over:
// 0, and the caller closes its connection with 4001.
constexpr std::string_view own_script = R"(local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, #ARGV[2]) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1)";

// A seat among a stream's viewers, cluster-wide: KEYS[1] the viewers set;
// ARGV now-ms, cap, peerId, seat expiry, key TTL. Expired members go first;
// a peer already seated (takeover, switch) keeps its seat. 1 seated, 0 full.
constexpr std::string_view admit_script = R"(redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1)";


// Deletes a key only if it still holds the value given.
constexpr std::string_view delete_if_script = R"(if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0)";

// Candidates: trims up to 256 expired members (ARGV[1] = now, Unix ms), then
// a random sample of ARGV[2] members with their records, flattened
// (peerId, record, ...). Bounded work per call whatever the swarm's size.
constexpr std::string_view query_script = R"(local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 256)
if #old > 0 then
  redis.call('ZREM', KEYS[1], unpack(old))
  redis.call('HDEL', KEYS[2], unpack(old))
end
local ids = redis.call('ZRANDMEMBER', KEYS[1], ARGV[2])
if #ids == 0 then return {} end
local records = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i = 1, #ids do
  if records[i] then
    out[#out + 1] = ids[i]
    out[#out + 1] = records[i]
  end
end
return out)";

}  // namespace

using namespace cluster_support;

std::expected<void, std::string> EdgeShard::cluster_start() {
  const ClusterSettings& c = shared_.cluster;
  if (!c.enabled()) return {};
  valkey::Config config;
  config.address = c.address;
  config.username = c.username;
  config.password = c.password;
  config.random_seed = valkey_seed_;
  // In the order of ClusterScript: run by EVALSHA (valkey::Client loads them).
  for (std::string_view script : {register_script, unregister_script, claim_script, own_script, admit_script,
                                   delete_if_script, query_script})
    config.scripts.emplace_back(script);
  valkey::Handlers handlers;
  handlers.context = this;
  handlers.on_state = [](void* self, const valkey::StateEvent& event) {
    static_cast<EdgeShard*>(self)->on_cluster_state(event);
  };
  handlers.on_message = [](void* self, std::string_view channel, std::string_view payload) {
    static_cast<EdgeShard*>(self)->on_cluster_message(channel, payload);
  };
  if (c.cluster_seeds.empty()) {
    auto client = valkey::Client::create(shard_.reactor(), config, handlers);
    if (!client) return std::unexpected("valkey: " + client.error());
    cluster_ = std::move(*client);
  } else {
    // A Valkey Cluster: signals on sharded channels (each crosses only the
    // shard that owns its channel's slot), every key routed by its slot.
    valkey::ClusterConfig cluster_config;
    cluster_config.seeds = c.cluster_seeds;
    cluster_config.node = std::move(config);
    auto client = valkey::ClusterClient::create(shard_.reactor(), cluster_config, handlers);
    if (!client) return std::unexpected("valkey: " + client.error());
    cluster_ = std::move(*client);
    publish_command_ = "SPUBLISH";
  }
  cluster_->subscribe(cluster::signal_channel(key_scratch_, c.key_prefix, shared_.settings.edge_id, shard_.id()));
  Reactor& reactor = shard_.reactor();
  reactor.add_periodic(c.alive_refresh_ms, [this] { cluster_heartbeat(); });
  // The refresh spread over its period: refresh_parts ticks, each writing a
  // part of the peers, so Valkey (and the shard's one command link, which
  // signals share) never takes a whole period's writes at once.
  reactor.add_periodic(std::max<uint32_t>(c.refresh_ms / refresh_parts, 1), [this] {
    cluster_refresh(refresh_tick_ % refresh_parts);
    ++refresh_tick_;
  });
  reactor.add_periodic(50, [this] { cluster_tick(); });
  if (shard_.id() == 0) {
    // The policy document in Valkey: read on its notification (at once), and
    // every second as well (a notification is lost while a link is down).
    cluster_->subscribe(cluster::policy_key(key_scratch_, c.key_prefix));
    reactor.add_periodic(1000, [this] { cluster_poll_policy(); });
    reactor.add_periodic(1000, [this] { start_metrics_collection({}, CollectionKind::summary, false); });
  }
  return {};
}

bool EdgeShard::cluster_ready() const {
  return cluster_ && !stopping_clients_done_ && cluster_->state(valkey::Role::command) == valkey::LinkState::ready;
}

bool EdgeShard::cluster_command(std::span<const std::string_view> argv, valkey::Completion done) {
  if (!cluster_ready()) {
    cluster_counters_.skipped++;
    return false;
  }
  // The client counts refusals (its bounds) itself.
  return cluster_->command(argv, done).has_value();
}

bool EdgeShard::cluster_script(ClusterScript script, std::span<const std::string_view> args, valkey::Completion done) {
  if (!cluster_ready()) {
    cluster_counters_.skipped++;
    return false;
  }
  return cluster_->script(static_cast<size_t>(script), args, done).has_value();
}

void EdgeShard::on_cluster_state(const valkey::StateEvent& event) {
  if (event.role != valkey::Role::command) return;
  const std::string& address =
      shared_.cluster.address.empty() ? shared_.cluster.cluster_seeds.front() : shared_.cluster.address;
  if (event.state == valkey::LinkState::ready) {
    if (shard_.id() == 0)
      MF_LOG_NOTICE("valkey: {} ready{}: presence registered, cross-edge proposals and signals on", address,
                    cluster_was_ready_ || cluster_down_logged_ ? " again" : "");
    cluster_was_ready_ = true;
    cluster_down_logged_ = false;
    // A restarted Valkey has lost everything, and writes may have failed
    // in flight: register every local peer again (idempotent).
    cluster_heartbeat();
    cluster_refresh(all_refresh_parts);
    if (shard_.id() == 0) cluster_poll_policy();
    return;
  }
  if (event.state != valkey::LinkState::disconnected || cluster_down_logged_ || stopping_) return;
  // Logged once per outage (the client retries with backoff meanwhile).
  cluster_down_logged_ = true;
  if (shard_.id() == 0)
    MF_LOG_WARN("valkey: {} {} ({}{}{}): serving local-only until it is back", address,
                cluster_was_ready_ ? "lost" : "unavailable", valkey::reason_name(event.reason),
                event.detail.empty() ? "" : ": ", event.detail);
}

// ---- presence -------------------------------------------------------------------

void EdgeShard::encode_owner_record(std::string& out, const PeerSession& s) const {
  cluster::encode_owner(out, cluster::OwnerRecord{shared_.settings.edge_id, shard_.id(), s.socket.slot,
                                                  s.socket.generation, s.stream_id, s.rendition, s.session_digest});
}

void EdgeShard::encode_swarm_record(std::string& out, const PeerSession& s) const {
  char topology[max_topology_json_bytes];
  size_t length = write_topology_json(topology, s.topology);
  cluster::encode_swarm(out, cluster::SwarmRecord{shared_.settings.edge_id, shard_.id(), s.socket.slot,
                                                  s.socket.generation, s.accepting_peers, s.topology.asn,
                                                  s.topology.region.view(), s.topology.country.view(),
                                                  std::string_view(topology, length)});
}

void EdgeShard::cluster_register(const PeerSession& s) {
  if (!cluster_ || s.state != PeerState::joined) return;
  const ClusterSettings& c = shared_.cluster;
  Decimal ttl(c.presence_ttl_ms);
  Decimal expiry(unix_ms() + c.presence_ttl_ms);
  if (!cluster_write_owner(s, ttl.view())) return;
  encode_swarm_record(value_scratch_, s);
  std::vector<std::string_view>& argv = swarm_keys(s.stream_id, s.rendition);
  argv.insert(argv.end(), {expiry.view(), ttl.view(), s.peer_id, value_scratch_});
  cluster_script(ClusterScript::register_members, argv);
}

bool EdgeShard::cluster_write_owner(const PeerSession& s, std::string_view ttl) {
  const std::string& prefix = shared_.cluster.key_prefix;
  encode_owner_record(value_scratch_, s);
  std::string_view argv[] = {
      "1"sv, cluster::owner_key(value2_scratch_, prefix, s.peer_id), value_scratch_,
      cluster::encode_holder(holder_scratch_, shared_.settings.edge_id, shard_.id(), s.socket.slot, s.socket.generation),
      ttl};
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus status, const resp::ReplyView* reply) {
                            static_cast<EdgeShard*>(self)->on_cluster_owner_written(id, status, reply);
                          },
                          this, (uint64_t{s.socket.slot} << 32) | s.socket.generation};
  return cluster_script(ClusterScript::own, argv, done);
}

void EdgeShard::on_cluster_owner_written(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  if (status != valkey::CommandStatus::reply || reply->type() != resp::ReplyType::integer || reply->integer() != 0)
    return;
  // Another holder owns the peerId in the cluster (a takeover on another
  // edge whose notice this connection has not seen, or a claim made while
  // this edge could not refresh): one holder only, this one goes.
  PeerSession* s = session_at(PeerLocation{static_cast<uint16_t>(shard_.id()), static_cast<uint32_t>(cookie >> 32),
                                           static_cast<uint32_t>(cookie)});
  if (s == nullptr || s->state != PeerState::joined) return;
  cluster_counters_.superseded++;
  s->server->close(s->socket, close_code::replaced, "replaced by a newer connection");
}

std::vector<std::string_view>& EdgeShard::swarm_keys(std::string_view stream_id, std::string_view rendition) {
  const std::string& prefix = shared_.cluster.key_prefix;
  argv_scratch_.assign({"3"sv, cluster::index_key(key_scratch_, prefix, stream_id, rendition),
                        cluster::record_key(key2_scratch_, prefix, stream_id, rendition),
                        cluster::viewers_key(key3_scratch_, prefix, stream_id)});
  return argv_scratch_;
}

void EdgeShard::cluster_release_owner(std::string_view peer_id, const PeerLocation& who, std::string_view stream_id,
                                      std::string_view rendition, std::string_view session_digest) {
  if (!cluster_) return;
  const ClusterSettings& c = shared_.cluster;
  // The record the claim wrote (claim_script) or a refresh rewrote
  // (cluster_write_owner): deleted only while the key still holds it.
  cluster::encode_owner(value_scratch_, cluster::OwnerRecord{shared_.settings.edge_id, who.shard, who.slot, who.generation,
                                                             stream_id, rendition, session_digest});
  std::string_view own[] = {"1"sv, cluster::owner_key(key_scratch_, c.key_prefix, peer_id), value_scratch_};
  cluster_script(ClusterScript::delete_if_equal, own);
}

void EdgeShard::cluster_unregister(const PeerSession& s) {
  if (!cluster_) return;
  encode_swarm_record(value_scratch_, s);
  std::vector<std::string_view>& argv = swarm_keys(s.stream_id, s.rendition);
  argv.insert(argv.end(), {s.peer_id, value_scratch_});
  cluster_script(ClusterScript::unregister_member, argv);
}

void EdgeShard::cluster_refresh(uint32_t part) {
  if (!cluster_ready()) return;
  const bool all = part == all_refresh_parts;
  const ClusterSettings& c = shared_.cluster;
  Decimal ttl(c.presence_ttl_ms);
  Decimal expiry(unix_ms() + c.presence_ttl_ms);
  // Owner keys: each its own command (they hash to different cluster
  // slots), on the tick of the connection's slot.
  refresh_scratch_.clear();
  for (uint32_t slot = 0; slot < sessions_.created(); ++slot) {
    if (sessions_[slot].state != PeerState::joined) continue;
    if (all || slot % refresh_parts == part) cluster_write_owner(sessions_[slot], ttl.view());
    if (all || keyed_hash(sessions_[slot].stream_id) % refresh_parts == part) refresh_scratch_.push_back(slot);
  }
  // Swarm records of this tick's streams, grouped by swarm, so that one
  // command refreshes up to register_batch members of a swarm.
  std::sort(refresh_scratch_.begin(), refresh_scratch_.end(), [this](uint32_t a, uint32_t b) {
    const PeerSession& x = sessions_[a];
    const PeerSession& y = sessions_[b];
    if (int order = x.stream_id.compare(y.stream_id); order != 0) return order < 0;
    return x.rendition < y.rendition;
  });
  size_t i = 0;
  while (i < refresh_scratch_.size()) {
    const PeerSession& first = sessions_[refresh_scratch_[i]];
    // batch_scratch_ keeps the records alive until the command is encoded.
    batch_scratch_.resize(register_batch);
    std::vector<std::string_view>& argv = swarm_keys(first.stream_id, first.rendition);
    argv.insert(argv.end(), {expiry.view(), ttl.view()});
    size_t n = 0;
    for (; i < refresh_scratch_.size() && n < register_batch; ++i, ++n) {
      const PeerSession& s = sessions_[refresh_scratch_[i]];
      if (s.stream_id != first.stream_id || s.rendition != first.rendition) break;
      encode_swarm_record(batch_scratch_[n], s);
      argv.push_back(s.peer_id);
      argv.push_back(batch_scratch_[n]);
    }
    cluster_script(ClusterScript::register_members, argv);
  }
  tracker_cluster_refresh(all, part, expiry.view(), ttl.view());
}

void EdgeShard::cluster_heartbeat() {
  if (!cluster_ready()) return;
  const ClusterSettings& c = shared_.cluster;
  uint64_t now = unix_ms();
  std::string_view edges = cluster::edges_key(key2_scratch_, c.key_prefix);
  if (shard_.id() == 0) {
    // The edge's liveness: its key, and its entry in the readable index of
    // live edges that every shard polls. Entries of edges dead for a minute
    // are trimmed.
    Decimal ttl(c.alive_ttl_ms);
    Decimal expiry(now + c.alive_ttl_ms);
    Decimal old(now > 60000 ? now - 60000 : 0);
    std::string_view alive[] = {"SET"sv, cluster::alive_key(key_scratch_, c.key_prefix, shared_.settings.edge_id),
                                "1"sv, "PX"sv, ttl.view()};
    cluster_command(alive);
    std::string_view index[] = {"ZADD"sv, edges, expiry.view(), shared_.settings.edge_id};
    cluster_command(index);
    std::string_view trim[] = {"ZREMRANGEBYSCORE"sv, edges, "-inf"sv, old.view()};
    cluster_command(trim);
  }
  Decimal now_text(now);
  std::string_view live[] = {"ZRANGEBYSCORE"sv, edges, now_text.view(), "+inf"sv};
  cluster_command(live, valkey::Completion{[](void* self, uint64_t, valkey::CommandStatus status,
                                              const resp::ReplyView* reply) {
                                             static_cast<EdgeShard*>(self)->on_cluster_edges(status, reply);
                                           },
                                           this, 0});
}

void EdgeShard::on_cluster_edges(valkey::CommandStatus status, const resp::ReplyView* reply) {
  if (status != valkey::CommandStatus::reply || reply->type() != resp::ReplyType::array) return;
  live_edges_.clear();
  for (size_t i = 0; i < reply->size(); ++i) live_edges_.emplace((*reply)[i].text());
}

void EdgeShard::cluster_tick() {
  if (!cluster_) return;
  if (stopping_ && !stopping_clients_done_ && clients_gone()) {
    // Every peer has left (and unregistered): close the links.
    stopping_clients_done_ = true;
    cluster_->stop();
  }
  uint64_t now = reactor_now();
  // A join waits for Valkey at most peers_timeout_ms per step (claim, seat):
  // then this edge decides alone, as when Valkey is down; a late reply finds
  // no entry and is ignored (the refresh settles a conflicting claim).
  for (auto it = cluster_claims_.begin(); it != cluster_claims_.end();) {
    uint64_t cookie = it->first;
    bool late = it->second.deadline_ms <= now;
    ++it;
    if (late) on_cluster_claimed(cookie, valkey::CommandStatus::disconnected, nullptr);
  }
  for (auto it = cluster_admissions_.begin(); it != cluster_admissions_.end();) {
    uint64_t cookie = it->first;
    bool late = it->second.deadline_ms <= now;
    ++it;
    if (late) on_cluster_admitted(cookie, valkey::CommandStatus::disconnected, nullptr);
  }
  if (cluster_queries_.empty()) return;
  for (auto it = cluster_queries_.begin(); it != cluster_queries_.end();) {
    if (it->second.deadline_ms > now) {
      ++it;
      continue;
    }
    // Valkey is slow: the local candidates go out now; a late reply finds
    // no query and is ignored.
    uint64_t cookie = it->first;
    ++it;
    cluster_counters_.peers_timeouts++;
    cluster_finish_query(cookie, nullptr);
  }
}

// ---- candidates from other edges --------------------------------------------------

void EdgeShard::deliver_peers(PeerSession& s, CandidateList local, uint32_t wanted, std::vector<std::string> exclude,
                              std::string_view ref_raw, uint64_t started_ns) {
  if (local.count >= wanted || !cluster_ready()) return send_peers(s, local, CandidateList{}, ref_raw, started_ns);
  ClusterQuery query;
  query.who = location_of(s);
  query.join_sequence = s.join_sequence;
  query.started_ns = started_ns;
  query.deadline_ms = reactor_now() + shared_.cluster.peers_timeout_ms;
  query.wanted = wanted;
  query.local = std::move(local);
  query.exclude = std::move(exclude);
  query.ref_raw.assign(ref_raw);
  cluster_query(s, std::move(query));
}

void EdgeShard::cluster_query(PeerSession& s, ClusterQuery query) {
  uint64_t cookie = ++cluster_cookie_;
  Decimal now(unix_ms());
  Decimal sample(std::min<uint64_t>(max_sample, 2ull * query.wanted + query.local.count + query.exclude.size() + 8));
  std::vector<std::string_view>& argv = swarm_keys(s.stream_id, s.rendition);
  argv.insert(argv.end(), {now.view(), sample.view()});
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus status, const resp::ReplyView* reply) {
                            static_cast<EdgeShard*>(self)->cluster_finish_query(
                                id, status == valkey::CommandStatus::reply ? reply : nullptr);
                          },
                          this, cookie};
  if (!cluster_script(ClusterScript::query, argv, done))
    return send_peers(s, query.local, CandidateList{}, query.ref_raw, query.started_ns);
  cluster_queries_.emplace(cookie, std::move(query));
}

void EdgeShard::cluster_finish_query(uint64_t cookie, const resp::ReplyView* reply) {
  auto it = cluster_queries_.find(cookie);
  if (it == cluster_queries_.end()) return;  // timed out already
  ClusterQuery query = std::move(it->second);
  cluster_queries_.erase(it);
  PeerSession* s = session_at(query.who);
  // The peer left, closed or switched meanwhile: this `peers` is moot.
  if (s == nullptr || s->state != PeerState::joined || s->join_sequence != query.join_sequence) return;
  CandidateList remote;
  if (reply != nullptr && reply->type() == resp::ReplyType::array) {
    struct Ranked {
      uint32_t rank;  // same region 4, same asn 2, same country 1: higher first (docs/protocol.md section 4)
      uint32_t tie;   // random: equal ranks spread the load
      std::string_view peer_id, topology_json;
      std::string_view edge_id;
      uint32_t shard, slot, generation;
    };
    Ranked ranked[max_sample];
    size_t n = 0;
    auto known = [&](std::string_view id) {
      if (id == s->peer_id) return true;
      for (const std::string& e : query.exclude)
        if (e == id) return true;
      bool local = false;
      query.local.for_each([&](std::string_view peer, std::string_view, std::string_view) { local = local || peer == id; });
      return local;
    };
    for (size_t i = 0; i + 1 < reply->size() && n < max_sample; i += 2) {
      std::string_view id = (*reply)[i].text();
      auto record = cluster::decode_swarm((*reply)[i + 1].text());
      // Peers of this edge came from the local matcher already; an edge
      // whose liveness expired is dead: its peers are not proposed.
      if (!record || !record->accepting_peers || record->edge_id == shared_.settings.edge_id ||
          !live_edges_.contains(record->edge_id) || known(id))
        continue;
      const Topology& mine = s->topology;
      uint32_t rank = (!mine.region.empty() && record->region == mine.region.view() ? 4 : 0) +
                      (mine.asn >= 0 && record->asn == mine.asn ? 2 : 0) +
                      (!mine.country.empty() && record->country == mine.country.view() ? 1 : 0);
      ranked[n++] = Ranked{rank,           static_cast<uint32_t>(rng_.next()), id, record->topology_json,
                           record->edge_id, record->shard,                     record->slot, record->generation};
    }
    size_t keep = std::min<size_t>(n, query.wanted - query.local.count);
    std::partial_sort(ranked, ranked + keep, ranked + n, [](const Ranked& a, const Ranked& b) {
      return a.rank != b.rank ? a.rank > b.rank : a.tie < b.tie;
    });
    for (size_t i = 0; i < keep; ++i) {
      const Ranked& r = ranked[i];
      remote.add(r.peer_id, s->rendition, r.topology_json);
      // A presence read fills the location cache too: the joiner's first
      // offer to a proposed peer then needs no lookup (when this shard is
      // that peer's directory shard, where signals to it are routed).
      if (directory_shard(r.peer_id) == shard_.id() && r.shard <= UINT16_MAX)
        remember_location(r.peer_id, r.edge_id, s->stream_id, r.shard, r.slot, r.generation);
    }
  }
  send_peers(*s, query.local, remote, query.ref_raw, query.started_ns);
}

}  // namespace mf::edge
