#pragma once
// What the edge sends Valkey commands to and receives pub/sub messages from:
// one server (valkey::Client, common/valkey/valkey_client.h) or a Valkey Cluster
// (valkey::ClusterClient, common/valkey/valkey_cluster_client.h), behind one
// interface so the callers do not care which. The contract of every call is
// the one valkey_client.h states; the cluster client's differences (routing,
// redirections, sharded pub/sub) are in valkey_cluster_client.h.
#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string_view>

#include "common/codec/resp_codec.h"

namespace mf::valkey {

enum class Role : uint8_t { command, subscriber };
enum class LinkState : uint8_t { connecting, ready, disconnected };
enum class Reason : uint8_t {
  none,
  connect_failed,   // socket, connect or adoption failed (detail: errno text)
  connect_timeout,  // no TCP connection or no AUTH/PING answer in time
  auth_failed,      // the server refused AUTH (detail: its error, e.g. WRONGPASS)
  handshake_failed, // the server answered PING with an error (e.g. NOAUTH)
  command_timeout,  // a command waited command_timeout_ms without any reply
  peer_closed,      // the server closed the connection or it failed
  protocol_error,   // unparsable or unexpected reply (detail: why)
  send_failed,      // the shard's block pool is exhausted
  stopped,          // stop()
};
std::string_view role_name(Role role);
std::string_view state_name(LinkState state);
std::string_view reason_name(Reason reason);

struct StateEvent {
  Role role;
  LinkState state;
  Reason reason;            // why it is disconnected (none otherwise)
  std::string_view detail;  // valid during the call
};

// Called on every transition of either link.
using StateCallback = void (*)(void* context, const StateEvent& event);
// A message published on a subscribed channel; views valid during the call.
using MessageCallback = void (*)(void* context, std::string_view channel, std::string_view payload);

// Sharded pub/sub (Config::sharded_pubsub): the server ended a subscription
// by itself (its slot moved to another node: an unasked SUNSUBSCRIBE), or,
// with `channel` empty, refused one (MOVED: not known which). The client
// has forgotten the channel; a cluster client subscribes it again where the
// slot map says.
using ChannelDroppedCallback = void (*)(void* context, std::string_view channel);

struct Handlers {
  StateCallback on_state = nullptr;
  MessageCallback on_message = nullptr;
  void* context = nullptr;
  ChannelDroppedCallback on_channel_dropped = nullptr;
};

enum class CommandStatus : uint8_t { reply, disconnected, stopped };
std::string_view command_status_name(CommandStatus status);

// `reply` is non-null only with CommandStatus::reply; it is valid during the call.
using CommandCallback = void (*)(void* context, uint64_t cookie, CommandStatus status, const resp::ReplyView* reply);
struct Completion {
  CommandCallback fn = nullptr;  // null: fire and forget
  void* context = nullptr;
  uint64_t cookie = 0;
};

enum class SubmitError : uint8_t {
  dropped,  // over max_queued_commands or max_queued_bytes, or the pool is exhausted
  stopped,  // after stop()
  invalid,  // empty argv
};
std::string_view submit_error_name(SubmitError error);

struct Counters {
  uint64_t commands_sent = 0;  // commands handed to the socket (health PINGs included)
  uint64_t replies = 0;        // replies matched to commands
  uint64_t error_replies = 0;  // of which error replies (-ERR ...)
  uint64_t dropped = 0;        // commands refused for the queue bounds
  uint64_t failed_disconnected = 0;  // completions with CommandStatus::disconnected
  uint64_t connects = 0;       // connection attempts, both links
  uint64_t reconnects = 0;     // of which after a failure or a disconnect
  uint64_t connect_failures = 0;
  uint64_t timeouts = 0;       // connect and command timeouts
  uint64_t auth_failures = 0;
  uint64_t protocol_errors = 0;
  uint64_t messages = 0;       // pub/sub messages delivered
  uint64_t script_fallbacks = 0;  // EVALSHA answered NOSCRIPT, sent again as EVAL
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  // A cluster client's own (0 for one server):
  uint64_t redirects_moved = 0;  // MOVED replies followed
  uint64_t redirects_ask = 0;    // ASK replies followed (ASKING, then the command once)
  uint64_t map_refreshes = 0;    // slot maps read (CLUSTER SHARDS answers applied)
  Counters& operator+=(const Counters& o);
};

// Connection to one server or a cluster: see the header comment.
class Endpoint {
 public:
  virtual ~Endpoint() = default;
  // Queues one command; its key (routing in a cluster) is argv[1].
  virtual std::expected<void, SubmitError> command(std::span<const std::string_view> argv, Completion done) = 0;
  // EVALSHA of script `index`; args = numkeys, the keys, the arguments (a
  // cluster routes by the first key).
  virtual std::expected<void, SubmitError> script(size_t index, std::span<const std::string_view> args,
                                                  Completion done) = 0;
  virtual bool subscribe(std::string_view channel) = 0;
  virtual bool unsubscribe(std::string_view channel) = 0;
  virtual void stop() = 0;
  virtual bool stopped() const = 0;
  // A cluster is `ready` when every slot has a primary whose command link is ready.
  virtual LinkState state(Role role) const = 0;
  virtual Counters counters() const = 0;
  virtual size_t live_sockets() const = 0;
  // Accepted commands not yet answered.
  virtual size_t queued_commands() const = 0;
};

}  // namespace mf::valkey
