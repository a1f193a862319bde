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

namespace mf::edge {
namespace {

using std::string_view_literals::operator""sv;

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

// A seat taken for a join in flight lasts this long unless the join's
// registration (which follows at once) extends it to the presence TTL: a
// join abandoned between the two holds a seat at most this long.
constexpr uint64_t seat_reservation_ms = 2000;

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

// Members per register command (a refresh of a big swarm is several).
constexpr size_t register_batch = 64;
// The refresh period is cut into this many ticks: an owner key is written on
// the tick of its connection's slot, a swarm's registration on the tick of
// its stream (so a swarm's members still go in batches of register_batch).
constexpr uint32_t refresh_parts = 10;
constexpr uint32_t all_refresh_parts = UINT32_MAX;
// Sample asked from Valkey per wanted candidate: peers of this edge, the
// requester, excluded and non-accepting ones are in the sample too.
constexpr uint32_t max_sample = 256;

uint64_t unix_ms() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

// Integers as command arguments, without allocating.
struct Decimal {
  char digits[24];
  size_t size;
  explicit Decimal(uint64_t value) { size = static_cast<size_t>(std::to_chars(digits, digits + sizeof digits, value).ptr - digits); }
  std::string_view view() const { return {digits, size}; }
};

}  // namespace

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

// ---- signals across edges -------------------------------------------------------

void EdgeShard::cluster_fail_signal(std::unique_ptr<SignalPacket> m) {
  uint32_t back = m->sender.shard;
  send_obligation(back, edge_message::signal_failed, std::move(m));
}

// Entries at most per shard: beyond, an entry without a lookup in flight is
// dropped for the new one (its peer's next signal looks it up again).
constexpr size_t max_peer_locations = 65536;

bool EdgeShard::location_usable(const PeerLocationEntry& entry, std::string_view sender_stream) const {
  // A lookup in flight: this signal waits behind it (a publish now could
  // overtake the signal that lookup carries). A location older than the
  // presence TTL is not trusted. A dead edge needs no check here: nobody
  // listens on its channel any more, so the PUBLISH reaches no subscriber
  // and the signal is looked up again.
  return entry.lookups_in_flight == 0 && entry.expires_ms > reactor_now() && entry.stream_id == sender_stream;
}

void EdgeShard::remember_location(std::string_view peer_id, std::string_view edge_id, std::string_view stream_id,
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
  e.expires_ms = reactor_now() + shared_.cluster.presence_ttl_ms;
}

void EdgeShard::forget_location(std::string_view peer_id) {
  auto it = peer_locations_.find(peer_id);
  if (it == peer_locations_.end()) return;
  if (it->second.lookups_in_flight == 0) {
    peer_locations_.erase(it);
    return;
  }
  it->second.expires_ms = 0;
}

void EdgeShard::cluster_route_signal(std::unique_ptr<SignalPacket> m) {
  // Valkey down: this edge alone cannot know the target.
  if (!cluster_ready()) return cluster_fail_signal(std::move(m));
  uint64_t cookie = ++cluster_cookie_;
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
    if (!first || m->text.empty()) return cluster_fail_signal(std::move(m));
    cluster_counters_.signals_bounced++;
  } else if (cached != peer_locations_.end() && location_usable(cached->second, m->sender_stream)) {
    const PeerLocationEntry& e = cached->second;
    if (!cluster_publish_signal(cookie, *m, cluster::EnvelopeKind::signal_cached, e.edge_id, e.shard, e.slot,
                                e.generation))
      return cluster_fail_signal(std::move(m));
    // Where it went: a miss there comes back with this place.
    m->target = PeerLocation{static_cast<uint16_t>(e.shard), e.slot, e.generation};
    cluster_counters_.location_hits++;
    cluster_lookups_.emplace(cookie, ClusterSignal{std::move(m), true});
    return;
  }
  std::string_view argv[] = {"GET"sv, cluster::owner_key(key_scratch_, shared_.cluster.key_prefix, m->to)};
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus status, const resp::ReplyView* reply) {
                            static_cast<EdgeShard*>(self)->on_cluster_lookup(id, status, reply);
                          },
                          this, cookie};
  if (!cluster_command(argv, done)) return cluster_fail_signal(std::move(m));
  cluster_counters_.location_lookups++;
  if (cached == peer_locations_.end()) cached = peer_locations_.emplace(m->to, PeerLocationEntry{}).first;
  cached->second.lookups_in_flight++;
  cluster_lookups_.emplace(cookie, ClusterSignal{std::move(m), false});
}

bool EdgeShard::cluster_publish_signal(uint64_t cookie, const SignalPacket& m, cluster::EnvelopeKind kind,
                                       std::string_view edge_id, uint32_t shard, uint32_t slot, uint32_t generation) {
  cluster::encode_envelope(value_scratch_,
                           cluster::Envelope{kind, shared_.settings.edge_id, m.sender.shard, m.sender.slot,
                                             m.sender.generation, slot, generation, m.to, m.sender_stream, m.ref_raw,
                                             m.text});
  std::string_view argv[] = {
      publish_command_, cluster::signal_channel(key_scratch_, shared_.cluster.key_prefix, edge_id, shard), value_scratch_};
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus s, const resp::ReplyView* r) {
                            static_cast<EdgeShard*>(self)->on_cluster_published(id, s, r);
                          },
                          this, cookie};
  return cluster_command(argv, done);
}

void EdgeShard::on_cluster_lookup(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  auto it = cluster_lookups_.find(cookie);
  if (it == cluster_lookups_.end()) return;
  std::optional<cluster::OwnerRecord> owner;
  if (status == valkey::CommandStatus::reply && reply->type() == resp::ReplyType::string)
    owner = cluster::decode_owner(reply->text());
  SignalPacket& m = *it->second.packet;
  // The lookup is answered: the cache holds what it found, or nothing.
  if (auto cached = peer_locations_.find(std::string_view(m.to)); cached != peer_locations_.end()) {
    PeerLocationEntry& e = cached->second;
    if (e.lookups_in_flight > 0) e.lookups_in_flight--;
    bool remote = owner && owner->edge_id != shared_.settings.edge_id && owner->shard <= UINT16_MAX;
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
  if (!owner || owner->stream_id != m.sender_stream || owner->edge_id == shared_.settings.edge_id ||
      owner->shard > UINT16_MAX) {
    auto packet = std::move(it->second.packet);
    cluster_lookups_.erase(it);
    return cluster_fail_signal(std::move(packet));
  }
  if (!cluster_publish_signal(cookie, m, cluster::EnvelopeKind::signal, owner->edge_id, owner->shard, owner->slot,
                              owner->generation)) {
    auto packet = std::move(it->second.packet);
    cluster_lookups_.erase(it);
    cluster_fail_signal(std::move(packet));
  }
}

void EdgeShard::on_cluster_published(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  auto it = cluster_lookups_.find(cookie);
  if (it == cluster_lookups_.end()) return;
  auto packet = std::move(it->second.packet);
  bool cached = it->second.cached;
  cluster_lookups_.erase(it);
  // No subscriber: the target's edge is gone (its records not yet expired).
  if (status != valkey::CommandStatus::reply || reply->type() != resp::ReplyType::integer || reply->integer() < 1) {
    // Published from the cache and nobody listened: the cached place is not
    // trusted any more (the next signal looks the peer up), but this one is
    // not sent again: its edge may only be resubscribing (after a Valkey
    // restart), and a signal sent after it may already be delivered.
    if (cached) forget_location(packet->to);
    return cluster_fail_signal(std::move(packet));
  }
  cluster_counters_.signals_sent++;
  recycle_signal(std::move(packet));
}

void EdgeShard::cluster_publish_failure(std::string_view origin_edge, uint32_t sender_shard, uint32_t sender_slot,
                                        uint32_t sender_generation, std::string_view to, std::string_view ref_raw) {
  cluster::encode_envelope(value2_scratch_, cluster::Envelope{cluster::EnvelopeKind::failed, origin_edge, sender_shard,
                                                              sender_slot, sender_generation, 0, 0, to, {}, ref_raw, {}});
  std::string_view argv[] = {
      publish_command_, cluster::signal_channel(key2_scratch_, shared_.cluster.key_prefix, origin_edge, sender_shard),
      value2_scratch_};
  cluster_command(argv);
}

void EdgeShard::on_cluster_message(std::string_view channel, std::string_view payload) {
  const std::string& prefix = shared_.cluster.key_prefix;
  // Shard 0 also listens to the policy channel: any message means "read the key".
  if (shard_.id() == 0 && channel.size() == prefix.size() + 6 && channel.starts_with(prefix) &&
      channel.ends_with("policy"))
    return cluster_poll_policy();
  // Otherwise this shard's own channel. Anything that does not decode is
  // ignored: Valkey is shared, its contents are not trusted blindly.
  auto envelope = cluster::decode_envelope(payload);
  if (!envelope) return;
  const cluster::Envelope& e = *envelope;
  if (e.kind == cluster::EnvelopeKind::replace) {
    // Taken over on another edge: close the old holder if it still is it.
    PeerSession* old = session_at(PeerLocation{static_cast<uint16_t>(shard_.id()), e.target_slot, e.target_generation});
    if (old != nullptr && old->peer_id == e.to &&
        (old->state == PeerState::joined || (old->state == PeerState::joining && old->pending.switching)))
      old->server->close(old->socket, close_code::replaced, "replaced by a newer connection");
    return;
  }
  if (e.kind == cluster::EnvelopeKind::failed) {
    if (e.origin_edge != shared_.settings.edge_id || e.sender_shard != shard_.id()) return;
    return signal_not_found(PeerLocation{static_cast<uint16_t>(shard_.id()), e.sender_slot, e.sender_generation}, e.to,
                            e.ref_raw);
  }
  if (e.kind == cluster::EnvelopeKind::bounced || e.kind == cluster::EnvelopeKind::missed) {
    // A signal this shard's peer sent missed at the place this edge had
    // cached: its target's directory shard settles it (looked up and sent
    // again, or peer-not-found; missed: peer-not-found, no text).
    if (e.origin_edge != shared_.settings.edge_id || e.sender_shard != shard_.id()) return;
    std::unique_ptr<SignalPacket> packet = signal_pool_.acquire();
    packet->to.assign(e.to);
    packet->sender_stream.assign(e.stream_id);
    packet->ref_raw.assign(e.ref_raw);
    packet->text.assign(e.text);
    packet->sender = PeerLocation{static_cast<uint16_t>(shard_.id()), e.sender_slot, e.sender_generation};
    packet->target = PeerLocation{0, e.target_slot, e.target_generation};  // the place it missed
    packet->relookup = true;
    if (!send_to_shard(directory_shard(e.to), edge_message::route_signal, std::move(packet)))
      signal_not_found(PeerLocation{static_cast<uint16_t>(shard_.id()), e.sender_slot, e.sender_generation}, e.to,
                       e.ref_raw);
    return;
  }
  if (e.kind == cluster::EnvelopeKind::tracker_offer || e.kind == cluster::EnvelopeKind::tracker_answer)
    return on_cluster_tracker(e);
  PeerSession* target = session_at(PeerLocation{static_cast<uint16_t>(shard_.id()), e.target_slot, e.target_generation});
  if (target == nullptr || target->state != PeerState::joined || target->peer_id != e.to ||
      target->stream_id != e.stream_id) {
    // The connection is gone for good (slot and generation never come back)
    // or another one holds the slot.
    bool gone = target == nullptr;
    if (e.kind == cluster::EnvelopeKind::signal_cached && !gone) {
      cluster::Envelope back = e;
      back.kind = cluster::EnvelopeKind::missed;
      cluster::encode_envelope(value2_scratch_, back);
      std::string_view argv[] = {
          publish_command_, cluster::signal_channel(key2_scratch_, prefix, e.origin_edge, e.sender_shard), value2_scratch_};
      cluster_command(argv);
      return;
    }
    if (e.kind == cluster::EnvelopeKind::signal_cached) {
      // The sender's edge had this place cached and the peer left it (a
      // takeover, a reconnect elsewhere): the signal goes back whole, to be
      // looked up again, instead of failing. Every later signal sent to this
      // place misses too, so the sender's edge resends the first only
      // (docs/cluster.md). A peer still here in another stream is not
      // found, as without the cache.
      cluster::Envelope back = e;
      back.kind = cluster::EnvelopeKind::bounced;
      cluster::encode_envelope(value2_scratch_, back);
      std::string_view argv[] = {
          publish_command_, cluster::signal_channel(key2_scratch_, prefix, e.origin_edge, e.sender_shard), value2_scratch_};
      cluster_command(argv);
      return;
    }
    return cluster_publish_failure(e.origin_edge, e.sender_shard, e.sender_slot, e.sender_generation, e.to, e.ref_raw);
  }
  cluster_counters_.signals_received++;
  counters_.signals_relayed++;
  send_text(*target, e.text);
}

// ---- tracker swarms across edges --------------------------------------------------
// (docs/cluster.md, "Tracker swarms across edges"). A swarm's members are
// registered by the shard that owns its info_hash on their edge, in
// P{t:<info_hash hex>}:idx/rec with the SDK swarms' scripts (the index key
// stands in for the viewers key: tracker swarms have no viewer cap). Offers
// that found no member here go to a Valkey sample of the swarm's members on
// other edges, published to the shard that owns the swarm there; each edge
// records the offer, so an answer is checked where it is given and again
// where it arrives.

namespace {

bool unhex_id(std::string_view hex, TrackerId& out) {
  if (hex.size() != 2 * tracker_id_bytes) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < tracker_id_bytes; ++i) {
    int high = nibble(hex[2 * i]), low = nibble(hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    out[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return true;
}

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

std::vector<std::string_view>& EdgeShard::tracker_swarm_keys(const TrackerId& info_hash) {
  const std::string& prefix = shared_.cluster.key_prefix;
  std::string_view hex = cluster::hex_id(tracker_hex_scratch_, id_bytes(info_hash));
  std::string_view index = cluster::tracker_index_key(key_scratch_, prefix, hex);
  argv_scratch_.assign({"3"sv, index, cluster::tracker_record_key(key2_scratch_, prefix, hex), index});
  return argv_scratch_;
}

void EdgeShard::encode_tracker_record(std::string& out, const PeerLocation& who) const {
  // The shard is the swarm's (where offers to the member are published);
  // the connection makes each registration's record its own, so a late
  // removal leaves a successor's record alone.
  cluster::encode_swarm(out, cluster::SwarmRecord{shared_.settings.edge_id, shard_.id(), who.slot, who.generation, true,
                                                  -1, {}, {}, "{}"});
}

void EdgeShard::tracker_cluster_register(const TrackerId& info_hash, const TrackerId& peer_id, const PeerLocation& who) {
  if (!cluster_) return;
  const ClusterSettings& c = shared_.cluster;
  Decimal ttl(c.presence_ttl_ms);
  Decimal expiry(unix_ms() + c.presence_ttl_ms);
  encode_tracker_record(value_scratch_, who);
  std::vector<std::string_view>& argv = tracker_swarm_keys(info_hash);
  argv.insert(argv.end(), {expiry.view(), ttl.view(), cluster::hex_id(tracker_hex2_scratch_, id_bytes(peer_id)),
                           value_scratch_});
  cluster_script(ClusterScript::register_members, argv);
}

void EdgeShard::tracker_cluster_unregister(const TrackerId& info_hash, const TrackerId& peer_id,
                                           const PeerLocation& who) {
  if (!cluster_) return;
  encode_tracker_record(value_scratch_, who);
  std::vector<std::string_view>& argv = tracker_swarm_keys(info_hash);
  argv.insert(argv.end(), {cluster::hex_id(tracker_hex2_scratch_, id_bytes(peer_id)), value_scratch_});
  cluster_script(ClusterScript::unregister_member, argv);
}

void EdgeShard::tracker_cluster_refresh(bool all, uint32_t part, std::string_view expiry, std::string_view ttl) {
  tracker_refresh_scratch_.clear();
  // Members come swarm by swarm; a swarm is refreshed on the tick of its
  // info_hash.
  tracker_swarms_.for_each_member([&](const TrackerId& info_hash, const TrackerId& peer_id, const PeerLocation& who) {
    if (all || keyed_hash(id_bytes(info_hash)) % refresh_parts == part)
      tracker_refresh_scratch_.push_back(TrackerMemberRef{info_hash, peer_id, who});
  });
  size_t i = 0;
  while (i < tracker_refresh_scratch_.size()) {
    const TrackerId info_hash = tracker_refresh_scratch_[i].info_hash;
    batch_scratch_.resize(2 * register_batch);
    std::vector<std::string_view>& argv = tracker_swarm_keys(info_hash);
    argv.insert(argv.end(), {expiry, ttl});
    size_t n = 0;
    for (; i < tracker_refresh_scratch_.size() && n < register_batch; ++i, ++n) {
      const TrackerMemberRef& member = tracker_refresh_scratch_[i];
      if (member.info_hash != info_hash) break;
      argv.push_back(cluster::hex_id(batch_scratch_[2 * n], id_bytes(member.peer_id)));
      encode_tracker_record(batch_scratch_[2 * n + 1], member.who);
      argv.push_back(batch_scratch_[2 * n + 1]);
    }
    cluster_script(ClusterScript::register_members, argv);
  }
}

void EdgeShard::tracker_cluster_offers(std::unique_ptr<TrackerPacket> m, size_t first) {
  if (!cluster_ready()) return;  // alone: the offers found nobody, as on one edge
  uint64_t cookie = ++cluster_cookie_;
  size_t remaining = m->offer_ids.size() - first;
  Decimal now(unix_ms());
  Decimal sample(std::min<uint64_t>(max_sample, 2 * remaining + 8));
  std::vector<std::string_view>& argv = tracker_swarm_keys(m->info_hash);
  argv.insert(argv.end(), {now.view(), sample.view()});
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus status, const resp::ReplyView* reply) {
                            static_cast<EdgeShard*>(self)->on_tracker_candidates(id, status, reply);
                          },
                          this, cookie};
  if (cluster_script(ClusterScript::query, argv, done)) tracker_queries_.emplace(cookie, TrackerQuery{std::move(m), first});
}

void EdgeShard::on_tracker_candidates(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  auto it = tracker_queries_.find(cookie);
  if (it == tracker_queries_.end()) return;
  TrackerQuery query = std::move(it->second);
  tracker_queries_.erase(it);
  if (status != valkey::CommandStatus::reply || reply->type() != resp::ReplyType::array) return;
  const TrackerPacket& m = *query.packet;
  const uint64_t now = reactor_now();
  size_t next = query.first;
  for (size_t i = 0; i + 1 < reply->size() && next < m.offer_ids.size(); i += 2) {
    TrackerId recipient;
    auto record = cluster::decode_swarm((*reply)[i + 1].text());
    // Members of this edge were offered by the local matching already; an
    // edge whose liveness expired is dead.
    if (!record || !unhex_id((*reply)[i].text(), recipient) || record->edge_id == shared_.settings.edge_id ||
        !live_edges_.contains(record->edge_id) || recipient == m.peer_id ||
        tracker_swarms_.is_member(m.info_hash, recipient))
      continue;
    uint32_t edge = tracker_swarms_.edge_index(record->edge_id);
    if (edge == 0) continue;
    // The offerer left meanwhile: nothing more goes out for it.
    if (!tracker_swarms_.offer_sent_to_edge(m.info_hash, m.peer_id, m.who, recipient, m.offer_ids[next], edge, now))
      return;
    uint32_t begin = next == 0 ? 0 : m.offer_ends[next - 1];
    std::string_view offer = std::string_view(m.raw).substr(begin, m.offer_ends[next] - begin);
    std::string_view text = write_tracker_offer(reply_, m.info_hash, m.peer_id, offer, m.offer_ids[next]);
    ++next;
    if (text.empty()) continue;
    cluster::encode_envelope(
        tracker_envelope_scratch_,
        cluster::Envelope{cluster::EnvelopeKind::tracker_offer, shared_.settings.edge_id, shard_.id(), m.who.slot,
                          m.who.generation, record->slot, record->generation, id_bytes(recipient),
                          id_bytes(m.info_hash), pair_bytes(value2_scratch_, m.peer_id, m.offer_ids[next - 1]), text});
    std::string_view publish[] = {
        publish_command_, cluster::signal_channel(key_scratch_, shared_.cluster.key_prefix, record->edge_id, record->shard),
        tracker_envelope_scratch_};
    if (cluster_command(publish)) counters_.tracker.offers_to_edges++;
  }
}

void EdgeShard::tracker_publish_answer(const TrackerAnswerRoute& route, const TrackerPacket& m) {
  std::string_view text = write_tracker_answer(reply_, m.info_hash, m.peer_id, m.raw, m.answer_offer_id);
  bool sent = false;
  if (!text.empty()) {
    cluster::encode_envelope(tracker_envelope_scratch_,
                             cluster::Envelope{cluster::EnvelopeKind::tracker_answer, shared_.settings.edge_id,
                                               shard_.id(), m.who.slot, m.who.generation, 0, 0, id_bytes(m.to_peer_id),
                                               id_bytes(m.info_hash),
                                               pair_bytes(value2_scratch_, m.peer_id, m.answer_offer_id), text});
    std::string_view publish[] = {publish_command_,
                                  cluster::signal_channel(key_scratch_, shared_.cluster.key_prefix,
                                                          tracker_swarms_.edge_name(route.edge), route.shard),
                                  tracker_envelope_scratch_};
    sent = cluster_command(publish);
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

void EdgeShard::on_cluster_tracker(const cluster::Envelope& e) {
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
  if (claim.local == ClaimOutcome::taken_over) send_replace(m.peer_id, claim.replaced);
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
    return on_enter_result(std::move(full));
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
  if (reply->type() == resp::ReplyType::nil) {
    if (!policy_from_valkey_ && policy_valkey_text_.empty()) return;
    MF_LOG_NOTICE("policy: Valkey key {}policy removed: back to {}", prefix,
                  shared_.settings.policy_file.empty() ? "the defaults" : shared_.settings.policy_file);
    policy_from_valkey_.reset();
    policy_valkey_text_.clear();
    return apply_policy_sources();
  }
  if (reply->type() != resp::ReplyType::string || reply->text() == policy_valkey_text_) return;
  policy_valkey_text_.assign(reply->text());
  auto document = PolicyDocument::parse(policy_valkey_text_);
  if (!document) {
    MF_LOG_ERROR("policy: Valkey key {}policy: {} (keeping the current policy)", prefix, document.error());
    return;
  }
  MF_LOG_NOTICE("policy: loaded from Valkey key {}policy", prefix);
  cluster_counters_.policy_loads++;
  policy_from_valkey_ = std::make_shared<const PolicyDocument>(std::move(*document));
  apply_policy_sources();
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
