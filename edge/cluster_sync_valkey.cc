// ValkeyClusterSync: start, presence, the refresh, liveness, deadlines and
// candidates from other edges (docs/cluster.md; the contract in
// edge/cluster_sync_valkey.h). The Lua scripts every file of it runs are here.
#include <algorithm>

#include "common/base/keyed_hash.h"
#include "common/base/log.h"
#include "common/runtime/reactor.h"
#include "edge/cluster_keys.h"
#include "edge/cluster_sync_valkey.h"
#include "edge/cluster_sync_valkey_support.h"

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

// Tracker swarms (docs/cluster.md, "Tracker swarms across edges"): KEYS the
// swarm's index, records, seeders and offer counts (P{t:<info_hash hex>}:idx,
// :rec, :seed, :load).
//
// The register and query scripts open with this prefix (put before each in
// start(), where the scripts are loaded) and first call trim_expired(now):
// up to 256 members whose score is at or below `now` (Unix ms) leave the
// index, the records and the offer counts. Bounded work per call whatever
// the swarm's size.
constexpr std::string_view tracker_trim_prefix = R"(local function trim_expired(now)
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 256)
  if #old > 0 then
    redis.call('ZREM', KEYS[1], unpack(old))
    redis.call('HDEL', KEYS[2], unpack(old))
    redis.call('ZREM', KEYS[4], unpack(old))
  end
end
)";

// Registers members: ARGV 1 expiry-ms, 2 ttl-ms, 3 now (Unix ms), 4 this
// edge's first record field (cluster::encode_edge_field), then per member
// (peer_id, record, '1' seeder or '0', a record it may replace or ''). A
// member whose peer_id has a live record (score above now) of another edge,
// other than the one it may replace, is not written. A new member's offer
// count starts at the swarm's lowest. Returns {live seeders, live members,
// then (peer_id, holder's record) per member not written}.
constexpr std::string_view tracker_register_script = R"(trim_expired(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[3])
local now = tonumber(ARGV[3])
local floor = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')[2] or 0
local out = {0, 0}
for i = 5, #ARGV, 4 do
  local cur = redis.call('HGET', KEYS[2], ARGV[i])
  local score = cur and redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) > now and cur ~= ARGV[i + 3] and string.sub(cur, 1, #ARGV[4]) ~= ARGV[4] then
    out[#out + 1] = ARGV[i]
    out[#out + 1] = cur
  else
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    redis.call('ZADD', KEYS[4], 'NX', floor, ARGV[i])
    if ARGV[i + 2] == '1' then
      redis.call('ZADD', KEYS[3], ARGV[1], ARGV[i])
    else
      redis.call('ZREM', KEYS[3], ARGV[i])
    end
  end
end
for k = 1, 4 do redis.call('PEXPIRE', KEYS[k], ARGV[2]) end
out[1] = redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[3], '+inf')
out[2] = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[3], '+inf')
return out)";

// Removes a member only if its record is still the one given: ARGV peer_id,
// record, now (Unix ms). Returns {live seeders, live members}.
constexpr std::string_view tracker_unregister_script = R"(if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
end
return {redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[3], '+inf'), redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[3], '+inf')})";

// Recipients on other edges for offers: ARGV 1 now (Unix ms), 2 how many, 3
// the asking edge's first record field, 4 the offerer's peer_id. The live
// members of other edges with the fewest offers from other edges first
// (looking at most 4 * ARGV[2] + 16 of them), each counted one more offer:
// (peer_id, record, ...).
constexpr std::string_view tracker_query_script = R"(trim_expired(ARGV[1])
local now, wanted = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[4], 0, 4 * wanted + 15)) do
  if #out >= 2 * wanted then break end
  if id ~= ARGV[4] then
    local record = redis.call('HGET', KEYS[2], id)
    local score = record and redis.call('ZSCORE', KEYS[1], id)
    if score and tonumber(score) > now and string.sub(record, 1, #ARGV[3]) ~= ARGV[3] then
      redis.call('ZINCRBY', KEYS[4], 1, id)
      out[#out + 1] = id
      out[#out + 1] = record
    end
  end
end
return out)";

}  // namespace

using namespace cluster_support;

std::expected<std::unique_ptr<ClusterSync>, std::string> ValkeyClusterSync::create(const ClusterSyncContext& context,
                                                                                 ClusterHost& host) {
  std::unique_ptr<ValkeyClusterSync> self(new ValkeyClusterSync(context, host));
  if (auto started = self->start(context.seed); !started) return std::unexpected(started.error());
  return std::unique_ptr<ClusterSync>(std::move(self));
}

ValkeyClusterSync::ValkeyClusterSync(const ClusterSyncContext& context, ClusterHost& host)
    : host_(host),
      reactor_(context.reactor),
      settings_(context.settings),
      edge_id_(context.edge_id),
      shard_(context.shard),
      shard_count_(context.shard_count),
      rng_(context.seed ^ 0xD1B54A32D192ED03ull) {
  cluster::encode_edge_field(edge_field_, edge_id_);
}

ValkeyClusterSync::~ValkeyClusterSync() = default;

std::expected<void, std::string> ValkeyClusterSync::start(uint64_t seed) {
  const ClusterSettings& c = settings_;
  valkey::Config config;
  config.address = c.address;
  config.username = c.username;
  config.password = c.password;
  config.random_seed = seed;
  // In the order of Script: run by EVALSHA (valkey::Client loads them).
  for (std::string_view text : {register_script, unregister_script, claim_script, own_script, admit_script,
                                delete_if_script, query_script, tracker_register_script, tracker_unregister_script,
                                tracker_query_script})
    config.scripts.emplace_back(text);
  for (Script opens_with_trim : {Script::tracker_register, Script::tracker_query})
    config.scripts[static_cast<size_t>(opens_with_trim)].insert(0, tracker_trim_prefix);
  valkey::Handlers handlers;
  handlers.context = this;
  handlers.on_state = [](void* self, const valkey::StateEvent& event) {
    static_cast<ValkeyClusterSync*>(self)->on_state(event);
  };
  handlers.on_message = [](void* self, std::string_view channel, std::string_view payload) {
    static_cast<ValkeyClusterSync*>(self)->on_message(channel, payload);
  };
  if (c.cluster_seeds.empty()) {
    auto client = valkey::Client::create(reactor_, config, handlers);
    if (!client) return std::unexpected("valkey: " + client.error());
    client_ = std::move(*client);
  } else {
    // A Valkey Cluster: signals on sharded channels (each crosses only the
    // shard that owns its channel's slot), every key routed by its slot.
    valkey::ClusterConfig cluster_config;
    cluster_config.seeds = c.cluster_seeds;
    cluster_config.node = std::move(config);
    auto client = valkey::ClusterClient::create(reactor_, cluster_config, handlers);
    if (!client) return std::unexpected("valkey: " + client.error());
    client_ = std::move(*client);
    publish_command_ = "SPUBLISH";
  }
  client_->subscribe(cluster::signal_channel(key_scratch_, c.key_prefix, edge_id_, shard_));
  reactor_.add_periodic(c.alive_refresh_ms, [this] { heartbeat(); });
  // The refresh spread over its period: refresh_parts ticks, each writing a
  // part of the peers, so Valkey (and the shard's one command link, which
  // signals share) never takes a whole period's writes at once.
  reactor_.add_periodic(std::max<uint32_t>(c.refresh_ms / refresh_parts, 1), [this] {
    refresh(refresh_tick_ % refresh_parts);
    ++refresh_tick_;
  });
  reactor_.add_periodic(50, [this] { tick(); });
  if (shard_ == 0) {
    // The policy document in Valkey: read on its notification (at once), and
    // every second as well (a notification is lost while a link is down).
    client_->subscribe(cluster::policy_key(key_scratch_, c.key_prefix));
    reactor_.add_periodic(1000, [this] { poll_policy(); });
  }
  return {};
}

uint64_t ValkeyClusterSync::now_ms() const { return reactor_.now_ms(); }

bool ValkeyClusterSync::ready() const {
  return !client_stopping_ && client_->state(valkey::Role::command) == valkey::LinkState::ready;
}

ValkeyState ValkeyClusterSync::state() const { return ready() ? ValkeyState::up : ValkeyState::down; }

void ValkeyClusterSync::add_metrics(MetricsSnapshot& snapshot) const {
  snapshot.cluster_configured = true;
  snapshot.valkey_up = ready();
  snapshot.live_edges = static_cast<uint32_t>(live_edges_.size());
  snapshot.cluster = counters_;
  const valkey::Counters& v = client_->counters();
  snapshot.valkey = ValkeyLinkCounters{v.commands_sent, v.dropped,         v.failed_disconnected,
                                       v.error_replies, v.reconnects,      v.timeouts,
                                       v.redirects_moved, v.redirects_ask, v.map_refreshes};
}

bool ValkeyClusterSync::command(std::span<const std::string_view> argv, valkey::Completion done) {
  if (!ready()) {
    counters_.skipped++;
    return false;
  }
  // The client counts refusals (its bounds) itself.
  return client_->command(argv, done).has_value();
}

bool ValkeyClusterSync::script(Script which, std::span<const std::string_view> args, valkey::Completion done) {
  if (!ready()) {
    counters_.skipped++;
    return false;
  }
  return client_->script(static_cast<size_t>(which), args, done).has_value();
}

void ValkeyClusterSync::on_state(const valkey::StateEvent& event) {
  if (event.role != valkey::Role::command) return;
  const std::string& address = settings_.address.empty() ? settings_.cluster_seeds.front() : settings_.address;
  if (event.state == valkey::LinkState::ready) {
    if (shard_ == 0)
      MF_LOG_NOTICE("valkey: {} ready{}: presence registered, cross-edge proposals and signals on", address,
                    was_ready_ || down_logged_ ? " again" : "");
    was_ready_ = true;
    down_logged_ = false;
    // A restarted Valkey has lost everything, and writes may have failed
    // in flight: register every local peer again (idempotent).
    heartbeat();
    refresh(all_refresh_parts);
    if (shard_ == 0) poll_policy();
    return;
  }
  if (event.state != valkey::LinkState::disconnected || down_logged_ || host_.draining()) return;
  // Logged once per outage (the client retries with backoff meanwhile).
  down_logged_ = true;
  if (shard_ == 0)
    MF_LOG_WARN("valkey: {} {} ({}{}{}): serving local-only until it is back", address,
                was_ready_ ? "lost" : "unavailable", valkey::reason_name(event.reason),
                event.detail.empty() ? "" : ": ", event.detail);
}

// ---- presence -------------------------------------------------------------------

void ValkeyClusterSync::encode_owner_record(std::string& out, const ClusterMember& m) const {
  cluster::encode_owner(out, cluster::OwnerRecord{edge_id_, shard_, m.who.slot, m.who.generation, m.stream_id,
                                                  m.rendition, m.session_digest});
}

void ValkeyClusterSync::encode_swarm_record(std::string& out, const ClusterMember& m) const {
  char topology[max_topology_json_bytes];
  size_t length = write_topology_json(topology, *m.topology);
  cluster::encode_swarm(out, cluster::SwarmRecord{edge_id_, shard_, m.who.slot, m.who.generation, m.accepting_peers,
                                                  m.topology->asn, m.topology->region.view(),
                                                  m.topology->country.view(), std::string_view(topology, length)});
}

void ValkeyClusterSync::register_member(const ClusterMember& m) {
  Decimal ttl(settings_.presence_ttl_ms);
  Decimal expiry(unix_ms() + settings_.presence_ttl_ms);
  if (!write_owner(m, ttl.view())) return;
  encode_swarm_record(value_scratch_, m);
  std::vector<std::string_view>& argv = swarm_keys(m.stream_id, m.rendition);
  argv.insert(argv.end(), {expiry.view(), ttl.view(), m.peer_id, value_scratch_});
  script(Script::register_members, argv);
}

bool ValkeyClusterSync::write_owner(const ClusterMember& m, std::string_view ttl) {
  encode_owner_record(value_scratch_, m);
  std::string_view argv[] = {"1"sv, cluster::owner_key(value2_scratch_, settings_.key_prefix, m.peer_id),
                             value_scratch_,
                             cluster::encode_holder(holder_scratch_, edge_id_, shard_, m.who.slot, m.who.generation),
                             ttl};
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus status, const resp::ReplyView* reply) {
                            static_cast<ValkeyClusterSync*>(self)->on_owner_written(id, status, reply);
                          },
                          this, (uint64_t{m.who.slot} << 32) | m.who.generation};
  return script(Script::own, argv, done);
}

void ValkeyClusterSync::on_owner_written(uint64_t cookie, valkey::CommandStatus status, const resp::ReplyView* reply) {
  if (status != valkey::CommandStatus::reply || reply->type() != resp::ReplyType::integer || reply->integer() != 0)
    return;
  // Another holder owns the peerId in the cluster (a takeover on another
  // edge whose notice this connection has not seen, or a claim made while
  // this edge could not refresh): one holder only, this one goes.
  PeerLocation who{static_cast<uint16_t>(shard_), static_cast<uint32_t>(cookie >> 32), static_cast<uint32_t>(cookie)};
  if (host_.close_superseded(who)) counters_.superseded++;
}

std::vector<std::string_view>& ValkeyClusterSync::swarm_keys(std::string_view stream_id, std::string_view rendition) {
  const std::string& prefix = settings_.key_prefix;
  argv_scratch_.assign({"3"sv, cluster::index_key(key_scratch_, prefix, stream_id, rendition),
                        cluster::record_key(key2_scratch_, prefix, stream_id, rendition),
                        cluster::viewers_key(key3_scratch_, prefix, stream_id)});
  return argv_scratch_;
}

void ValkeyClusterSync::release_owner(std::string_view peer_id, const PeerLocation& who, std::string_view stream_id,
                                      std::string_view rendition, std::string_view session_digest) {
  // The record the claim wrote (claim_script) or a refresh rewrote
  // (write_owner): deleted only while the key still holds it.
  cluster::encode_owner(value_scratch_, cluster::OwnerRecord{edge_id_, who.shard, who.slot, who.generation, stream_id,
                                                             rendition, session_digest});
  std::string_view own[] = {"1"sv, cluster::owner_key(key_scratch_, settings_.key_prefix, peer_id), value_scratch_};
  script(Script::delete_if_equal, own);
}

void ValkeyClusterSync::unregister_member(const ClusterMember& m) {
  encode_swarm_record(value_scratch_, m);
  std::vector<std::string_view>& argv = swarm_keys(m.stream_id, m.rendition);
  argv.insert(argv.end(), {m.peer_id, value_scratch_});
  script(Script::unregister_member, argv);
}

void ValkeyClusterSync::refresh(uint32_t part) {
  if (!ready()) return;
  const bool all = part == all_refresh_parts;
  Decimal ttl(settings_.presence_ttl_ms);
  Decimal expiry(unix_ms() + settings_.presence_ttl_ms);
  // Owner keys: each its own command (they hash to different cluster
  // slots), on the tick of the connection's slot.
  host_.joined_members(members_scratch_);
  refresh_scratch_.clear();
  for (uint32_t i = 0; i < members_scratch_.size(); ++i) {
    const ClusterMember& m = members_scratch_[i];
    if (all || m.who.slot % refresh_parts == part) write_owner(m, ttl.view());
    if (all || keyed_hash(m.stream_id) % refresh_parts == part) refresh_scratch_.push_back(i);
  }
  // Swarm records of this tick's streams, grouped by swarm, so that one
  // command refreshes up to register_batch members of a swarm.
  std::sort(refresh_scratch_.begin(), refresh_scratch_.end(), [this](uint32_t a, uint32_t b) {
    const ClusterMember& x = members_scratch_[a];
    const ClusterMember& y = members_scratch_[b];
    if (int order = x.stream_id.compare(y.stream_id); order != 0) return order < 0;
    return x.rendition < y.rendition;
  });
  size_t i = 0;
  while (i < refresh_scratch_.size()) {
    const ClusterMember& first = members_scratch_[refresh_scratch_[i]];
    // batch_scratch_ keeps the records alive until the command is encoded.
    batch_scratch_.resize(register_batch);
    std::vector<std::string_view>& argv = swarm_keys(first.stream_id, first.rendition);
    argv.insert(argv.end(), {expiry.view(), ttl.view()});
    size_t n = 0;
    for (; i < refresh_scratch_.size() && n < register_batch; ++i, ++n) {
      const ClusterMember& m = members_scratch_[refresh_scratch_[i]];
      if (m.stream_id != first.stream_id || m.rendition != first.rendition) break;
      encode_swarm_record(batch_scratch_[n], m);
      argv.push_back(m.peer_id);
      argv.push_back(batch_scratch_[n]);
    }
    script(Script::register_members, argv);
  }
  tracker_refresh(all, part, expiry.view(), ttl.view());
}

void ValkeyClusterSync::heartbeat() {
  if (!ready()) return;
  const ClusterSettings& c = settings_;
  uint64_t now = unix_ms();
  std::string_view edges = cluster::edges_key(key2_scratch_, c.key_prefix);
  if (shard_ == 0) {
    // The edge's liveness: its key, and its entry in the readable index of
    // live edges that every shard polls. Entries of edges dead for a minute
    // are trimmed.
    Decimal ttl(c.alive_ttl_ms);
    Decimal expiry(now + c.alive_ttl_ms);
    Decimal old(now > 60000 ? now - 60000 : 0);
    std::string_view alive[] = {"SET"sv, cluster::alive_key(key_scratch_, c.key_prefix, edge_id_), "1"sv, "PX"sv,
                                ttl.view()};
    command(alive);
    std::string_view index[] = {"ZADD"sv, edges, expiry.view(), edge_id_};
    command(index);
    std::string_view trim[] = {"ZREMRANGEBYSCORE"sv, edges, "-inf"sv, old.view()};
    command(trim);
  }
  Decimal now_text(now);
  std::string_view live[] = {"ZRANGEBYSCORE"sv, edges, now_text.view(), "+inf"sv};
  command(live, valkey::Completion{[](void* self, uint64_t, valkey::CommandStatus status,
                                      const resp::ReplyView* reply) {
                                     static_cast<ValkeyClusterSync*>(self)->on_edges(status, reply);
                                   },
                                   this, 0});
}

void ValkeyClusterSync::on_edges(valkey::CommandStatus status, const resp::ReplyView* reply) {
  if (status != valkey::CommandStatus::reply || reply->type() != resp::ReplyType::array) return;
  live_edges_.clear();
  for (size_t i = 0; i < reply->size(); ++i) live_edges_.emplace((*reply)[i].text());
}

void ValkeyClusterSync::tick() {
  if (host_.draining() && !client_stopping_ && host_.clients_gone()) {
    // Every peer has left (and unregistered): close the links.
    client_stopping_ = true;
    client_->stop();
  }
  uint64_t now = now_ms();
  // A join waits for Valkey at most peers_timeout_ms per step (claim, seat):
  // then this edge decides alone, as when Valkey is down; a late reply finds
  // no entry and is ignored (the refresh settles a conflicting claim).
  for (auto it = claims_.begin(); it != claims_.end();) {
    uint64_t cookie = it->first;
    bool late = it->second.deadline_ms <= now;
    ++it;
    if (late) on_claimed(cookie, valkey::CommandStatus::disconnected, nullptr);
  }
  for (auto it = admissions_.begin(); it != admissions_.end();) {
    uint64_t cookie = it->first;
    bool late = it->second.deadline_ms <= now;
    ++it;
    if (late) on_admitted(cookie, valkey::CommandStatus::disconnected, nullptr);
  }
  if (queries_.empty()) return;
  for (auto it = queries_.begin(); it != queries_.end();) {
    if (it->second.deadline_ms > now) {
      ++it;
      continue;
    }
    // Valkey is slow: the local candidates go out now; a late reply finds
    // no query and is ignored.
    uint64_t cookie = it->first;
    ++it;
    counters_.peers_timeouts++;
    finish_query(cookie, nullptr);
  }
}

// ---- candidates from other edges --------------------------------------------------

void ValkeyClusterSync::query(const ClusterMember& requester, ClusterQuery query) {
  uint64_t cookie = ++cookie_;
  query.deadline_ms = now_ms() + settings_.peers_timeout_ms;
  Decimal now(unix_ms());
  Decimal sample(std::min<uint64_t>(max_sample, 2ull * query.wanted + query.local.count + query.exclude.size() + 8));
  std::vector<std::string_view>& argv = swarm_keys(requester.stream_id, requester.rendition);
  argv.insert(argv.end(), {now.view(), sample.view()});
  valkey::Completion done{[](void* self, uint64_t id, valkey::CommandStatus status, const resp::ReplyView* reply) {
                            static_cast<ValkeyClusterSync*>(self)->finish_query(
                                id, status == valkey::CommandStatus::reply ? reply : nullptr);
                          },
                          this, cookie};
  if (!script(Script::query, argv, done))
    return host_.send_peers(query.who, query.join_sequence, query.local, CandidateList{}, query.ref_raw,
                            query.started_ns);
  queries_.emplace(cookie, std::move(query));
}

void ValkeyClusterSync::finish_query(uint64_t cookie, const resp::ReplyView* reply) {
  auto it = queries_.find(cookie);
  if (it == queries_.end()) return;  // timed out already
  ClusterQuery query = std::move(it->second);
  queries_.erase(it);
  std::optional<ClusterMember> s = host_.joined_member(query.who);
  // The peer left, closed or switched meanwhile: this `peers` is moot.
  if (!s || s->join_sequence != query.join_sequence) return;
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
      if (!record || !record->accepting_peers || record->edge_id == edge_id_ || !live_edges_.contains(record->edge_id) ||
          known(id))
        continue;
      const Topology& mine = *s->topology;
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
      if (host_.directory_shard(r.peer_id) == shard_ && r.shard <= UINT16_MAX)
        remember_location(r.peer_id, r.edge_id, s->stream_id, r.shard, r.slot, r.generation);
    }
  }
  host_.send_peers(query.who, query.join_sequence, query.local, remote, query.ref_raw, query.started_ns);
}

}  // namespace mf::edge
