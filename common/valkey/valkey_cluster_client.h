#pragma once
// A Valkey (or Redis 7) Cluster client on the shard's own Reactor: one
// valkey::Client per primary (its pipelined command link, and a subscriber
// link using sharded pub/sub once a channel of its slots is subscribed),
// behind the same Endpoint interface as one server (docs/cluster.md,
// "Valkey Cluster").
//
// Slot map. Read with CLUSTER SHARDS (valkey_cluster_map.h) from a seed at
// start, then from any node whose command link is ready: after a MOVED, when
// a node's link fails, when a node ends a sharded subscription by itself,
// every refresh_ms while ready and every min_refresh_ms while not. A map
// that does not parse is ignored (the previous one stays). Nodes that serve
// no slot any more are stopped once nothing of ours waits on them.
//
// Routing. A command goes to the primary of its key's slot: argv[1] for a
// command, the first key for a script (so what one script touches must
// share a hash tag: valkey_keyslot.h). A command without a key goes to any
// node whose command link is ready.
//
// Order. Commands of one slot are answered in the order they were accepted,
// redirections included: a command of slot S is sent to a node only while
// no earlier command of S is in flight to another node or waiting to be
// sent; otherwise it waits (held, in acceptance order) until they are
// answered. So a MOVED (the slot now lives elsewhere: the map is updated
// for that slot at once and refreshed whole) sends the redirected command
// and everything of that slot behind it to the new node in their order.
// ASK (the slot is being migrated and this key is already at the target):
// that one command goes to the target after ASKING, on the same connection;
// a key-less sharded publish never gets ASK (a migrating slot's channels
// stay served by the source until the slot has moved). A command
// redirected more than max_redirects times completes with the last error.
//
// Failures. A command handed to a node whose link then fails completes
// with CommandStatus::disconnected (it may have been applied), as with one
// server. A command still queued in a node that leaves the map (a failed
// primary replaced by its replica) was never sent: it is routed again by
// the new map, in order. state(command) is `ready` while every slot has a
// primary and every such primary's command link is ready; each transition
// is reported to Handlers::on_state as Role::command. While not ready,
// commands are still accepted and wait (bounded by the node Config's
// max_queued_commands for the whole client).
//
// Pub/sub. Channels are sharded channels (SSUBSCRIBE; publishers use
// SPUBLISH): each is subscribed on the primary of its slot and subscribed
// again on the new primary after every map change that moves it.
//
// Threading and shutdown as valkey::Client: one shard, stop(), then run
// the reactor until stopped() before destroying it.
#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/runtime/reactor.h"
#include "common/base/transparent_string_hash.h"
#include "common/valkey/valkey_client.h"
#include "common/valkey/valkey_cluster_map.h"
#include "common/valkey/valkey_endpoint.h"

namespace mf::valkey {

struct ClusterConfig {
  // Numeric HOST:PORT of some nodes; any one that answers gives the map.
  std::vector<std::string> seeds;
  // Per node (its address is set by the client); scripts, credentials,
  // timeouts and bounds apply to each node's connection.
  Config node;
  uint32_t max_nodes = 64;         // primaries (and redirect targets) connected at once
  uint32_t max_redirects = 5;      // per command
  uint32_t refresh_ms = 5000;      // map re-read while ready
  uint32_t min_refresh_ms = 100;   // at most this often while something changes
};

class ClusterClient final : public Endpoint {
 public:
  static std::expected<std::unique_ptr<ClusterClient>, std::string> create(Reactor& reactor,
                                                                           const ClusterConfig& config,
                                                                           const Handlers& handlers);
  ClusterClient(const ClusterClient&) = delete;
  ClusterClient& operator=(const ClusterClient&) = delete;
  ~ClusterClient() override;

  std::expected<void, SubmitError> command(std::span<const std::string_view> argv, Completion done = {}) override;
  std::expected<void, SubmitError> script(size_t index, std::span<const std::string_view> args,
                                          Completion done = {}) override;
  bool subscribe(std::string_view channel) override;
  bool unsubscribe(std::string_view channel) override;
  void stop() override;
  bool stopped() const override;
  LinkState state(Role role) const override;
  Counters counters() const override;
  size_t live_sockets() const override;
  size_t queued_commands() const override { return live_requests_; }

  // For tests and health detail: primaries in the current map, slots with
  // no primary, the address serving `slot` ("" when none).
  size_t primaries() const;
  size_t unassigned_slots() const;
  std::string_view address_of_slot(uint16_t slot) const;

 private:
  static constexpr uint16_t no_node = UINT16_MAX;
  static constexpr uint32_t no_script = UINT32_MAX;
  static constexpr uint32_t no_slot = UINT32_MAX;
  struct Node {
    ClusterClient* owner = nullptr;
    uint16_t index = 0;
    std::string address;
    std::unique_ptr<Client> client;
    bool retiring = false;  // stop() called, destroyed once stopped()
    // Connected as a seed to read a map from: not retired before a map was
    // applied after it.
    bool probe = false;
  };
  // An accepted command awaiting its final answer.
  struct Request {
    uint64_t seq = 0;
    Completion done;
    uint32_t script = no_script;
    uint32_t slot = no_slot;
    uint16_t node = no_node;  // where it is in flight; no_node while held
    bool tracked = false;     // counted in in_flight_[slot] (not an ASK resend)
    bool in_use = false;
    uint8_t redirects = 0;
    // The arguments, each as a 4-byte length then its bytes (capacity kept
    // for the next request: no allocation in steady state).
    std::string args;
  };

  ClusterClient(Reactor& reactor, const ClusterConfig& config, const Handlers& handlers);
  std::expected<void, SubmitError> accept(uint32_t script, uint32_t slot, std::span<const std::string_view> args,
                                          Completion done);
  // Sends request `index` to `node` now (after ASKING when asking); false
  // when the node refused it (then completed as disconnected by the caller).
  bool send(uint32_t index, uint16_t node, bool asking);
  void hold(uint32_t index);
  void release_held();
  void finish(uint32_t index, CommandStatus status, const resp::ReplyView* reply);
  void free_request(uint32_t index);
  void on_node_reply(uint32_t index, CommandStatus status, const resp::ReplyView* reply);
  void on_node_state(Node& node, const StateEvent& event);
  void on_node_message(std::string_view channel, std::string_view payload);
  void on_channel_dropped(Node& node, std::string_view channel);
  void on_shards(uint16_t node, CommandStatus status, const resp::ReplyView* reply);
  // The node serving `address`, connected if new; no_node beyond max_nodes.
  uint16_t node_for(std::string_view address);
  void apply_map(const SlotMap& map);
  void note_map_problem(std::string_view address, std::string_view problem);
  void reassign_channels();
  void retire_idle_nodes();
  void request_refresh() { refresh_wanted_ = true; }
  void maybe_refresh();
  // CLUSTER SHARDS to that node now; false when it refused the command.
  bool refresh_from(uint16_t node);
  void update_state(Reason reason, std::string_view detail);
  void tick();
  bool node_ready(uint16_t node) const;
  std::span<const std::string_view> argv_of(const Request& r);

  Reactor& reactor_;
  ClusterConfig config_;
  Handlers handlers_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::array<uint16_t, cluster_slots> owner_{};  // slot -> node index
  std::vector<uint16_t> owning_;                 // nodes serving at least one slot
  bool map_loaded_ = false;
  size_t unassigned_ = cluster_slots;
  // Per slot: requests in flight (tracked), the node they went to, and
  // requests held.
  std::array<uint32_t, cluster_slots> in_flight_{};
  std::array<uint16_t, cluster_slots> flight_node_{};
  std::array<uint32_t, cluster_slots> held_count_{};
  std::map<uint64_t, uint32_t> held_;  // seq -> request: empty in steady state
  std::bitset<cluster_slots> blocked_;  // release_held's scratch
  bool releasing_ = false;
  bool release_again_ = false;
  std::deque<Request> requests_;  // references stay valid as it grows
  std::vector<uint32_t> free_requests_;
  size_t live_requests_ = 0;
  uint64_t next_seq_ = 0;
  std::vector<std::string_view> argv_scratch_;
  // Sharded channels -> the node subscribed on (no_node: not yet).
  std::unordered_map<std::string, uint16_t, TransparentStringHash, std::equal_to<>> channels_;
  bool refresh_wanted_ = true;
  bool refresh_in_flight_ = false;
  uint64_t last_refresh_ms_ = 0;
  uint32_t refresh_turn_ = 0;
  std::string map_problem_;  // the last one logged
  LinkState state_ = LinkState::connecting;
  bool stop_requested_ = false;
  Counters own_counters_;      // redirects and refreshes
  Counters retired_counters_;  // of node clients destroyed
  std::shared_ptr<ClusterClient*> self_;
};

}  // namespace mf::valkey
