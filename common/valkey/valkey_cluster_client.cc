#include "common/valkey/valkey_cluster_client.h"

#include <algorithm>
#include <cstring>

#include "common/base/log.h"
#include "common/runtime/shard_check.h"
#include "common/valkey/valkey_keyslot.h"

namespace mf::valkey {

std::expected<std::unique_ptr<ClusterClient>, std::string> ClusterClient::create(Reactor& reactor,
                                                                                 const ClusterConfig& config,
                                                                                 const Handlers& handlers) {
  if (config.seeds.empty()) return std::unexpected(std::string("valkey cluster: no seed address"));
  if (config.max_nodes == 0 || config.max_nodes >= no_node)
    return std::unexpected(std::string("valkey cluster: max_nodes must be within 1..65534"));
  if (config.refresh_ms == 0 || config.min_refresh_ms == 0)
    return std::unexpected(std::string("valkey cluster: refresh intervals must be positive"));
  // Each seed is checked as one server's address would be (numeric, a port).
  for (const std::string& seed : config.seeds) {
    auto address = parse_socket_address(seed);
    if (!address) return std::unexpected("valkey cluster seed: " + address.error());
  }
  std::unique_ptr<ClusterClient> client(new ClusterClient(reactor, config, handlers));
  for (const std::string& seed : config.seeds) {
    uint16_t node = client->node_for(seed);
    if (node == no_node) return std::unexpected("valkey cluster seed '" + seed + "' refused");
    client->nodes_[node]->probe = true;
  }
  return client;
}

ClusterClient::ClusterClient(Reactor& reactor, const ClusterConfig& config, const Handlers& handlers)
    : reactor_(reactor), config_(config), handlers_(handlers), self_(std::make_shared<ClusterClient*>(this)) {
  config_.node.sharded_pubsub = true;
  owner_.fill(no_node);
  flight_node_.fill(no_node);
  std::shared_ptr<ClusterClient*> cell = self_;
  reactor_.add_periodic(config_.node.tick_ms, [cell] {
    if (*cell != nullptr) (*cell)->tick();
  });
}

ClusterClient::~ClusterClient() {
  *self_ = nullptr;
  // Each node client aborts if destroyed with live sockets (stop() first).
  nodes_.clear();
}

// ---- nodes ----

uint16_t ClusterClient::node_for(std::string_view address) {
  size_t free_index = nodes_.size();
  size_t live = 0;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& n = *nodes_[i];
    if (n.client && !n.retiring && n.address == address) return static_cast<uint16_t>(i);
    if (n.client) {
      ++live;
    } else if (free_index == nodes_.size()) {
      free_index = i;
    }
  }
  if (live >= config_.max_nodes) {
    MF_LOG_WARN("valkey cluster: more than {} nodes, {} not connected", config_.max_nodes, address);
    return no_node;
  }
  if (free_index == nodes_.size()) {
    nodes_.push_back(std::make_unique<Node>());
    nodes_.back()->owner = this;
    nodes_.back()->index = static_cast<uint16_t>(free_index);
  }
  Node& node = *nodes_[free_index];
  node.address.assign(address);
  node.retiring = false;
  node.probe = false;
  Config config = config_.node;
  config.address = node.address;
  config.random_seed = config_.node.random_seed * 31 + free_index;
  Handlers h;
  h.context = &node;
  h.on_state = [](void* context, const StateEvent& event) {
    Node* n = static_cast<Node*>(context);
    n->owner->on_node_state(*n, event);
  };
  h.on_message = [](void* context, std::string_view channel, std::string_view payload) {
    static_cast<Node*>(context)->owner->on_node_message(channel, payload);
  };
  h.on_channel_dropped = [](void* context, std::string_view channel) {
    Node* n = static_cast<Node*>(context);
    n->owner->on_channel_dropped(*n, channel);
  };
  auto client = Client::create(reactor_, config, h);
  if (!client) {
    MF_LOG_WARN("valkey cluster: node {}: {}", address, client.error());
    node.address.clear();
    return no_node;
  }
  node.client = std::move(*client);
  return static_cast<uint16_t>(free_index);
}

bool ClusterClient::node_ready(uint16_t node) const {
  if (node >= nodes_.size()) return false;
  const Node& n = *nodes_[node];
  return n.client && !n.retiring && n.client->state(Role::command) == LinkState::ready;
}

void ClusterClient::on_node_state(Node& node, const StateEvent& event) {
  if (stop_requested_) return;
  if (event.state == LinkState::disconnected) request_refresh();
  // Called from Client::create too, before node.client is set.
  if (event.role == Role::command) update_state(event.reason, event.detail);
  (void)node;
}

void ClusterClient::on_node_message(std::string_view channel, std::string_view payload) {
  if (handlers_.on_message != nullptr) handlers_.on_message(handlers_.context, channel, payload);
}

void ClusterClient::on_channel_dropped(Node& node, std::string_view channel) {
  // The node forgot it: subscribed again where the next map says. That node
  // knows where its slot went: asked at once, not at the next tick (a
  // signal published meanwhile reaches no subscriber).
  for (auto& [name, at] : channels_)
    if (at == node.index && (channel.empty() || name == channel)) at = no_node;
  request_refresh();
  if (!refresh_in_flight_ && !stop_requested_ && node_ready(node.index)) refresh_from(node.index);
}

bool ClusterClient::refresh_from(uint16_t node) {
  std::string_view argv[] = {"CLUSTER", "SHARDS"};
  Completion done{[](void* self, uint64_t n, CommandStatus status, const resp::ReplyView* reply) {
                    static_cast<ClusterClient*>(self)->on_shards(static_cast<uint16_t>(n), status, reply);
                  },
                  this, node};
  if (!nodes_[node]->client->command(argv, done)) return false;
  refresh_in_flight_ = true;
  refresh_wanted_ = false;
  last_refresh_ms_ = reactor_.now_ms();
  return true;
}

void ClusterClient::update_state(Reason reason, std::string_view detail) {
  if (stop_requested_) return;
  bool ready = map_loaded_ && unassigned_ == 0 && !owning_.empty();
  for (uint16_t n : owning_) ready = ready && node_ready(n);
  LinkState next = ready ? LinkState::ready
                         : (state_ == LinkState::ready || reason != Reason::none ? LinkState::disconnected : state_);
  if (next == state_) return;
  state_ = next;
  if (handlers_.on_state == nullptr) return;
  if (!ready && detail.empty() && reason == Reason::none) detail = "slot map incomplete";
  StateEvent event{Role::command, state_, ready ? Reason::none : reason, ready ? std::string_view() : detail};
  handlers_.on_state(handlers_.context, event);
}

// ---- the slot map ----

void ClusterClient::maybe_refresh() {
  if (stop_requested_ || refresh_in_flight_) return;
  const uint64_t now = reactor_.now_ms();
  if (refresh_wanted_ ? now < last_refresh_ms_ + config_.min_refresh_ms : now < last_refresh_ms_ + config_.refresh_ms)
    return;
  // Any node whose command link is ready, in turn.
  const size_t count = nodes_.size();
  for (size_t k = 0; k < count; ++k) {
    uint16_t n = static_cast<uint16_t>((refresh_turn_ + k) % count);
    if (!node_ready(n)) continue;
    refresh_turn_ = n + 1u;
    if (refresh_from(n)) return;
  }
  // Nobody to ask: the seeds again (each connects, and answers next time).
  refresh_wanted_ = true;
  last_refresh_ms_ = now;
  for (const std::string& seed : config_.seeds) {
    uint16_t n = node_for(seed);
    if (n != no_node && std::find(owning_.begin(), owning_.end(), n) == owning_.end()) nodes_[n]->probe = true;
  }
}

void ClusterClient::on_shards(uint16_t node, CommandStatus status, const resp::ReplyView* reply) {
  refresh_in_flight_ = false;
  if (stop_requested_) return;
  if (status != CommandStatus::reply || reply->is_error()) {
    // E.g. "ERR This instance has cluster support disabled": a seed that is
    // not a cluster node. Logged when the problem changes, not per retry.
    if (status == CommandStatus::reply) note_map_problem(nodes_[node]->address, reply->text());
    request_refresh();
    return;
  }
  auto map = SlotMap::from_shards(*reply, config_.max_nodes);
  if (!map) {
    note_map_problem(nodes_[node]->address, map.error());
    request_refresh();
    return;
  }
  map_problem_.clear();
  ++own_counters_.map_refreshes;
  apply_map(*map);
}

void ClusterClient::note_map_problem(std::string_view address, std::string_view problem) {
  if (problem == map_problem_) return;
  map_problem_.assign(problem);
  MF_LOG_WARN("valkey cluster: no slot map from {}: {}", address, problem);
}

void ClusterClient::apply_map(const SlotMap& map) {
  std::vector<uint16_t> index(map.primaries().size(), no_node);
  for (size_t i = 0; i < index.size(); ++i) index[i] = node_for(map.primaries()[i].address);
  std::vector<bool> owns(nodes_.size(), false);
  unassigned_ = 0;
  for (uint32_t slot = 0; slot < cluster_slots; ++slot) {
    uint16_t p = map.node_of_slot(static_cast<uint16_t>(slot));
    uint16_t n = p == SlotMap::unassigned ? no_node : index[p];
    owner_[slot] = n;
    if (n == no_node) {
      ++unassigned_;
    } else {
      owns[n] = true;
    }
  }
  const bool first = !map_loaded_;
  map_loaded_ = true;
  owning_.clear();
  for (size_t n = 0; n < owns.size(); ++n)
    if (owns[n]) owning_.push_back(static_cast<uint16_t>(n));
  for (auto& node : nodes_) node->probe = false;
  if (unassigned_ > 0) {
    MF_LOG_WARN("valkey cluster: {} slots without a primary", unassigned_);
    request_refresh();
  }
  if (first) MF_LOG_INFO("valkey cluster: slot map read, {} primaries", owning_.size());
  reassign_channels();
  retire_idle_nodes();
  release_held();
  update_state(Reason::none, {});
}

void ClusterClient::reassign_channels() {
  for (auto& [channel, at] : channels_) {
    const uint16_t target = owner_[key_slot(channel)];
    if (target == at) continue;
    if (at != no_node && at < nodes_.size() && nodes_[at]->client && !nodes_[at]->retiring)
      nodes_[at]->client->unsubscribe(channel);
    at = target;
    if (target != no_node) nodes_[target]->client->subscribe(channel);
  }
}

void ClusterClient::retire_idle_nodes() {
  if (!map_loaded_ || stop_requested_) return;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& n = *nodes_[i];
    if (!n.client || n.retiring || n.probe) continue;
    if (std::find(owning_.begin(), owning_.end(), static_cast<uint16_t>(i)) != owning_.end()) continue;
    // Commands of ours still on a live link are answered there first (a
    // MOVED sends them on); on a dead link they were never sent.
    if (n.client->state(Role::command) == LinkState::ready && n.client->queued_commands() > 0) continue;
    n.retiring = true;
    MF_LOG_INFO("valkey cluster: {} serves no slot now, disconnected", n.address);
    // Completes its queued commands with `stopped`: routed again.
    n.client->stop();
  }
}

// ---- commands ----

std::span<const std::string_view> ClusterClient::argv_of(const Request& r) {
  argv_scratch_.clear();
  size_t at = 0;
  while (at + 4 <= r.args.size()) {
    uint32_t length = 0;
    std::memcpy(&length, r.args.data() + at, 4);
    argv_scratch_.emplace_back(r.args.data() + at + 4, length);
    at += 4 + length;
  }
  return argv_scratch_;
}

std::expected<void, SubmitError> ClusterClient::command(std::span<const std::string_view> argv, Completion done) {
  MF_ASSERT_ON_SHARD(reactor_.shard_id());
  if (argv.empty()) return std::unexpected(SubmitError::invalid);
  return accept(no_script, argv.size() >= 2 ? key_slot(argv[1]) : no_slot, argv, done);
}

std::expected<void, SubmitError> ClusterClient::script(size_t index, std::span<const std::string_view> args,
                                                       Completion done) {
  MF_ASSERT_ON_SHARD(reactor_.shard_id());
  if (index >= config_.node.scripts.size() || args.empty()) return std::unexpected(SubmitError::invalid);
  const bool keyed = args.size() >= 2 && args[0] != "0";
  return accept(static_cast<uint32_t>(index), keyed ? key_slot(args[1]) : no_slot, args, done);
}

std::expected<void, SubmitError> ClusterClient::accept(uint32_t script, uint32_t slot,
                                                       std::span<const std::string_view> args, Completion done) {
  if (stop_requested_) return std::unexpected(SubmitError::stopped);
  if (live_requests_ >= config_.node.max_queued_commands) {
    ++own_counters_.dropped;
    return std::unexpected(SubmitError::dropped);
  }
  uint32_t index;
  if (!free_requests_.empty()) {
    index = free_requests_.back();
    free_requests_.pop_back();
  } else {
    index = static_cast<uint32_t>(requests_.size());
    requests_.emplace_back();
  }
  Request& r = requests_[index];
  r.seq = next_seq_++;
  r.done = done;
  r.script = script;
  r.slot = slot;
  r.node = no_node;
  r.tracked = false;
  r.in_use = true;
  r.redirects = 0;
  r.args.clear();
  for (std::string_view a : args) {
    uint32_t length = static_cast<uint32_t>(a.size());
    r.args.append(reinterpret_cast<const char*>(&length), 4);
    r.args.append(a);
  }
  ++live_requests_;
  uint16_t target = no_node;
  bool now = false;
  if (slot == no_slot) {
    for (uint16_t n : owning_)
      if (node_ready(n)) {
        target = n;
        break;
      }
    now = target != no_node && held_.empty();
  } else {
    target = owner_[slot];
    now = target != no_node && held_count_[slot] == 0 && (in_flight_[slot] == 0 || flight_node_[slot] == target);
  }
  if (!now) {
    hold(index);
    return {};
  }
  if (!send(index, target, false)) {
    free_request(index);
    return std::unexpected(SubmitError::dropped);
  }
  return {};
}

bool ClusterClient::send(uint32_t index, uint16_t node, bool asking) {
  Request& r = requests_[index];
  Client& client = *nodes_[node]->client;
  if (asking) {
    std::string_view argv[] = {"ASKING"};
    if (!client.command(argv)) return false;
  }
  r.node = node;
  if (r.slot != no_slot && !asking) {
    r.tracked = true;
    ++in_flight_[r.slot];
    flight_node_[r.slot] = node;
  }
  std::span<const std::string_view> argv = argv_of(r);
  Completion done{[](void* self, uint64_t cookie, CommandStatus status, const resp::ReplyView* reply) {
                    static_cast<ClusterClient*>(self)->on_node_reply(static_cast<uint32_t>(cookie), status, reply);
                  },
                  this, index};
  auto sent = r.script != no_script ? client.script(r.script, argv, done) : client.command(argv, done);
  if (sent) return true;
  if (r.tracked) {
    r.tracked = false;
    --in_flight_[r.slot];
  }
  r.node = no_node;
  return false;
}

void ClusterClient::hold(uint32_t index) {
  Request& r = requests_[index];
  r.node = no_node;
  held_.emplace(r.seq, index);
  if (r.slot != no_slot) ++held_count_[r.slot];
  if (releasing_) release_again_ = true;
}

void ClusterClient::release_held() {
  if (held_.empty() || stop_requested_) return;
  if (releasing_) {
    release_again_ = true;
    return;
  }
  releasing_ = true;
  do {
    release_again_ = false;
    blocked_.reset();
    bool keyless_blocked = false;
    for (auto it = held_.begin(); it != held_.end();) {
      const uint32_t index = it->second;
      const uint32_t slot = requests_[index].slot;
      uint16_t target = no_node;
      if (slot == no_slot) {
        if (!keyless_blocked)
          for (uint16_t n : owning_)
            if (node_ready(n)) {
              target = n;
              break;
            }
        if (target == no_node) {
          keyless_blocked = true;
          ++it;
          continue;
        }
      } else {
        target = owner_[slot];
        if (blocked_[slot] || target == no_node || (in_flight_[slot] > 0 && flight_node_[slot] != target)) {
          blocked_.set(slot);
          ++it;
          continue;
        }
        --held_count_[slot];
      }
      it = held_.erase(it);
      if (!send(index, target, false)) finish(index, CommandStatus::disconnected, nullptr);
    }
  } while (release_again_ && !stop_requested_);
  releasing_ = false;
}

void ClusterClient::free_request(uint32_t index) {
  Request& r = requests_[index];
  r.in_use = false;
  r.args.clear();
  r.done = {};
  free_requests_.push_back(index);
  --live_requests_;
}

void ClusterClient::finish(uint32_t index, CommandStatus status, const resp::ReplyView* reply) {
  Completion done = requests_[index].done;
  free_request(index);
  if (done.fn != nullptr) done.fn(done.context, done.cookie, status, reply);
}

void ClusterClient::on_node_reply(uint32_t index, CommandStatus status, const resp::ReplyView* reply) {
  Request& r = requests_[index];
  const uint32_t slot = r.slot;
  const uint16_t from = r.node;
  if (r.tracked) {
    r.tracked = false;
    --in_flight_[slot];
  }
  r.node = no_node;
  if (status == CommandStatus::stopped && !stop_requested_) {
    // Its node was retired before the command was sent: routed again.
    hold(index);
    release_held();
    return;
  }
  if (status == CommandStatus::reply && reply->is_error() && r.redirects < config_.max_redirects) {
    if (auto redirect = parse_redirect(reply->text())) {
      std::string address;
      std::string_view host = redirect->host;
      if (host.empty() && from < nodes_.size()) {
        // ":port": the host of the node that answered.
        std::string_view own = nodes_[from]->address;
        host = own.substr(0, own.rfind(':'));
        if (host.starts_with('[')) host = host.substr(1, host.size() - 2);
      }
      const bool v6 = host.find(':') != std::string_view::npos;
      address.append(v6 ? "[" : "").append(host).append(v6 ? "]:" : ":").append(std::to_string(redirect->port));
      const bool moved = redirect->kind == Redirect::Kind::moved;
      const uint16_t redirect_slot = redirect->slot;
      const uint16_t target = node_for(address);
      if (target != no_node) {
        ++requests_[index].redirects;
        if (moved) {
          ++own_counters_.redirects_moved;
          owner_[redirect_slot] = target;
          if (std::find(owning_.begin(), owning_.end(), target) == owning_.end()) owning_.push_back(target);
          request_refresh();
          hold(index);
          release_held();
          return;
        }
        ++own_counters_.redirects_ask;
        if (send(index, target, true)) return;
        finish(index, CommandStatus::disconnected, nullptr);
        return;
      }
    }
  }
  finish(index, status, reply);
  if (slot != no_slot && in_flight_[slot] == 0 && held_count_[slot] > 0) release_held();
}

// ---- pub/sub ----

bool ClusterClient::subscribe(std::string_view channel) {
  MF_ASSERT_ON_SHARD(reactor_.shard_id());
  if (stop_requested_ || channel.empty()) return false;
  if (channels_.contains(channel)) return true;
  auto [it, added] = channels_.emplace(std::string(channel), no_node);
  const uint16_t target = owner_[key_slot(channel)];
  if (map_loaded_ && target != no_node) {
    it->second = target;
    nodes_[target]->client->subscribe(channel);
  }
  return true;
}

bool ClusterClient::unsubscribe(std::string_view channel) {
  MF_ASSERT_ON_SHARD(reactor_.shard_id());
  if (stop_requested_ || channel.empty()) return false;
  auto it = channels_.find(channel);
  if (it == channels_.end()) return true;
  const uint16_t at = it->second;
  if (at != no_node && nodes_[at]->client && !nodes_[at]->retiring) nodes_[at]->client->unsubscribe(channel);
  channels_.erase(it);
  return true;
}

// ---- life ----

void ClusterClient::tick() {
  if (stop_requested_) return;
  for (auto& node : nodes_) {
    if (node->retiring && node->client->stopped()) {
      retired_counters_ += node->client->counters();
      node->client.reset();
      node->retiring = false;
      node->address.clear();
    }
  }
  retire_idle_nodes();
  maybe_refresh();
  release_held();
  update_state(Reason::none, {});
}

void ClusterClient::stop() {
  MF_ASSERT_ON_SHARD(reactor_.shard_id());
  if (stop_requested_) return;
  stop_requested_ = true;
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i]->client) nodes_[i]->client->stop();  // completes their commands: `stopped`
  while (!held_.empty()) {
    const uint32_t index = held_.begin()->second;
    held_.erase(held_.begin());
    finish(index, CommandStatus::stopped, nullptr);
  }
  held_count_.fill(0);
  if (state_ != LinkState::disconnected && handlers_.on_state != nullptr) {
    state_ = LinkState::disconnected;
    handlers_.on_state(handlers_.context, StateEvent{Role::command, state_, Reason::stopped, {}});
  }
  state_ = LinkState::disconnected;
}

bool ClusterClient::stopped() const {
  if (!stop_requested_) return false;
  for (const auto& node : nodes_)
    if (node->client && !node->client->stopped()) return false;
  return true;
}

LinkState ClusterClient::state(Role) const { return state_; }

Counters ClusterClient::counters() const {
  Counters total = own_counters_;
  total += retired_counters_;
  for (const auto& node : nodes_)
    if (node->client) total += node->client->counters();
  return total;
}

size_t ClusterClient::live_sockets() const {
  size_t total = 0;
  for (const auto& node : nodes_)
    if (node->client) total += node->client->live_sockets();
  return total;
}

size_t ClusterClient::primaries() const { return owning_.size(); }

size_t ClusterClient::unassigned_slots() const { return unassigned_; }

std::string_view ClusterClient::address_of_slot(uint16_t slot) const {
  uint16_t n = owner_[slot & (cluster_slots - 1)];
  return n == no_node || n >= nodes_.size() ? std::string_view() : std::string_view(nodes_[n]->address);
}

}  // namespace mf::valkey
