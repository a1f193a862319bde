#pragma once
// A per-shard Valkey (or Redis 7) client on the shard's own Reactor: no
// thread, no blocking call, every byte through the ring (docs/cluster.md; transport
// only; presence is built on top of it).
//
// Two connections ("links"), because in RESP2 a subscribed connection can do
// nothing but (un)subscribe:
//   command     pipelined commands, replies matched FIFO to their commands.
//   subscriber  opened on the first subscribe(); SUBSCRIBE/UNSUBSCRIBE and
//               the messages of the subscribed channels. After a reconnect
//               it subscribes to every channel again by itself.
//
// Life of a link: connecting (TCP, then AUTH or PING: "ready" means the
// server answered, not just that the kernel completed a handshake, which a
// stopped server's kernel still does) -> ready -> on any failure the socket
// is aborted and the link retries after an exponential backoff with jitter
// (backoff_min_ms * 2^failures, at most backoff_max_ms, of which the
// fraction backoff_jitter is random; the source is seeded by the caller, per
// shard: no global state). Each transition is reported to on_state.
//
// Commands.
//   - command() encodes the command at once (resp_codec, into the shard's
//     pool blocks or straight into the socket's send queue) and queues its
//     completion. While the link is not ready, commands wait in the queue;
//     they are sent, in order, once it is.
//   - Bounds: at most max_queued_commands commands and max_queued_bytes
//     bytes are accepted and not yet answered (sent or not). Beyond that,
//     command() returns SubmitError::dropped at once (counted; the callback
//     is not called). A Valkey that stops answering therefore costs at most
//     these bounds, never more.
//   - Completion: exactly once per accepted command, with the reply
//     (CommandStatus::reply: the reply may be an error reply, see
//     ReplyView::is_error), or CommandStatus::disconnected when the link
//     failed after the command was handed to the socket, or
//     CommandStatus::stopped when stop() came first.
//     `disconnected` means the command may or may not have been applied:
//     callers re-register (idempotent writes: SET with TTL, SADD, DEL) after
//     the link is ready again. Queued commands not yet handed to the socket
//     survive a reconnect and are sent on the next connection.
//   - command_timeout_ms: when a command has been waiting for its reply and
//     no reply at all arrived for this long, the link is closed (in-flight
//     commands fail with `disconnected`) and reconnects.
//   - The completion is a function pointer, a context and a 64-bit cookie:
//     nothing is allocated per command (std::function could).
//   - Callbacks run on the shard thread inside the reactor's completion
//     loop. They may call command(), subscribe(), unsubscribe() and stop().
//
// Scripts (Config::scripts): their SHA-1 is computed at create(); every
// connection of the command link loads them (SCRIPT LOAD, part of its
// handshake), and script() sends EVALSHA with the digest, never the text.
// NOSCRIPT fallback: should a server answer NOSCRIPT anyway (SCRIPT FLUSH,
// a replica promoted without them), the command is sent again as EVAL with
// the text (which loads it), once, and its completion gets that reply. For
// this the client keeps a copy of each script command's arguments until its
// reply (bounded like the commands themselves). The resent command goes at
// the back of the pipeline: commands sent after it may run before it.
//
// Health: a ready link that received nothing for health_check_ms sends a
// PING, so a server that went silent (SIGSTOP, a dead host) is found by the
// command timeout even when the edge has nothing to say.
//
// Timers: deadlines (connect, command, backoff, health) are checked by one
// reactor periodic every tick_ms. The Reactor's per-socket timer cannot
// serve here: it exists only while a socket is open, and a link waiting to
// reconnect has no socket.
//
// Ownership and shutdown: the client belongs to the reactor's shard and is
// used only on its thread. Create it outside a reactor periodic callback
// (add_periodic must not run while the periodics are iterated). Before
// destroying it, call stop() and run the reactor until stopped(): the
// reactor holds the client as the service of its sockets until they are
// released; destroying it earlier is a programming error and aborts.
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/runtime/block_pool.h"
#include "common/net/listen_socket.h"
#include "common/runtime/reactor.h"
#include "common/codec/resp_codec.h"
#include "common/base/transparent_string_hash.h"
#include "common/valkey/valkey_endpoint.h"

namespace mf::valkey {

struct Config {
  // Numeric "HOST:PORT" or "[IPv6]:PORT" (no DNS on a shard thread).
  std::string address;
  // AUTH: password alone (requirepass) or username and password (ACL).
  // Empty password: no AUTH.
  std::string username;
  std::string password;
  uint32_t connect_timeout_ms = 2000;  // TCP connect plus the AUTH/PING answer
  uint32_t command_timeout_ms = 2000;  // no reply while a command waits
  uint32_t health_check_ms = 5000;     // PING after this much silence; 0: never
  uint32_t max_queued_commands = 65536;
  size_t max_queued_bytes = size_t{16} << 20;
  uint32_t backoff_min_ms = 100;
  uint32_t backoff_max_ms = 5000;
  double backoff_jitter = 0.5;  // 0..1: this fraction of each delay is random
  uint64_t random_seed = 1;     // e.g. shard id mixed with the start time
  uint32_t tick_ms = 50;        // resolution of every deadline above
  resp::ReaderLimits reader;    // reply size caps (64 MiB by default)
  // Lua scripts run by script(index): loaded on every connection.
  std::vector<std::string> scripts;
  // The subscriber link uses sharded pub/sub (SSUBSCRIBE, SUNSUBSCRIBE, one
  // channel per command: a cluster refuses channels of several slots in
  // one), for a node of a Valkey Cluster (valkey_cluster_client.h).
  bool sharded_pubsub = false;
};


class Client final : public Endpoint, public SocketService {
 public:
  // Checks the configuration and starts connecting the command link.
  static std::expected<std::unique_ptr<Client>, std::string> create(Reactor& reactor, const Config& config,
                                                                    const Handlers& handlers);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // Queues one command (argv binary-safe). See the header comment.
  std::expected<void, SubmitError> command(std::span<const std::string_view> argv, Completion done = {}) override;
  // EVALSHA of Config::scripts[index]; `args` is numkeys, the keys, then
  // the arguments. Otherwise as command(); `invalid` for an unknown index.
  std::expected<void, SubmitError> script(size_t index, std::span<const std::string_view> args,
                                          Completion done = {}) override;
  // The lowercase hex SHA-1 of Config::scripts[index] (what EVALSHA names).
  std::string_view script_sha(size_t index) const { return script_shas_[index]; }
  // Adds or removes a channel of the subscriber link. False after stop() or
  // for an empty name. Idempotent.
  bool subscribe(std::string_view channel) override;
  bool unsubscribe(std::string_view channel) override;

  // Closes both links: bytes already handed to a socket are still flushed
  // (graceful close), every pending command completes with `stopped`.
  void stop() override;
  // stop() was called and every socket has been released: the client may be
  // destroyed.
  bool stopped() const override { return stop_requested_ && live_sockets_ == 0; }

  LinkState state(Role role) const override;
  // Why the link was last disconnected, and the detail (server error text,
  // errno text), for logs and health detail.
  Reason last_reason(Role role) const;
  const std::string& last_detail(Role role) const;
  Counters counters() const override { return counters_; }
  // Accepted commands not yet answered, and their bytes.
  size_t queued_commands() const override { return pending_.size(); }
  size_t queued_bytes() const { return pending_bytes_; }
  size_t subscriptions() const { return channels_.size(); }
  // Sockets of this client the reactor still holds (0, 1 or 2).
  size_t live_sockets() const override { return live_sockets_; }

  // SocketService.
  void on_accepted(SocketHandle socket, const sockaddr_storage* peer) override;
  void on_received(SocketHandle socket, std::span<uint8_t> bytes) override;
  void on_peer_closed(SocketHandle socket, int error) override;
  void on_timer(SocketHandle socket) override;
  void on_connected(SocketHandle socket, int error) override;
  void on_released(SocketHandle socket) override;

 private:
  enum class Phase : uint8_t { idle, backoff, connecting, handshake, ready };
  struct Link {
    Link(Role r, const resp::ReaderLimits& limits) : role(r), reader(limits) {}
    Role role;
    Phase phase = Phase::idle;
    SocketHandle socket;
    uint64_t deadline_ms = 0;  // backoff: retry at; connecting/handshake: give up at
    uint32_t failures = 0;     // consecutive, the backoff exponent
    uint32_t handshake_replies = 0;
    bool ever_attempted = false;
    uint64_t last_received_ms = 0;
    uint64_t last_reply_ms = 0;
    // subscriber: confirmations and pongs still expected
    uint32_t outstanding = 0;
    Reason last_reason = Reason::none;
    std::string last_detail;
    resp::ReplyReader reader;
  };
  // An accepted command awaiting its reply.
  static constexpr uint32_t no_script = UINT32_MAX;
  struct Pending {
    Completion done;
    uint32_t bytes;
    uint64_t handed_ms;  // when its first byte went to the socket
    // script(): which script, and the size of its arguments' copy at the
    // head of script_args_ (for the NOSCRIPT fallback).
    uint32_t script = no_script;
    uint32_t args_bytes = 0;
  };
  // FIFO of Pending in a power-of-two ring that grows to the high-water
  // mark and no further: no allocation per command (std::deque allocates a
  // chunk every few pushes).
  class PendingFifo {
   public:
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    Pending& operator[](size_t i) { return items_[(head_ + i) & (items_.size() - 1)]; }
    Pending& front() { return (*this)[0]; }
    void push_back(const Pending& p);
    void pop_front();

   private:
    std::vector<Pending> items_;
    size_t head_ = 0;
    size_t size_ = 0;
  };

  Client(Reactor& reactor, const Config& config, const Handlers& handlers, const SocketAddress& address);
  Link* link_of(SocketHandle socket);
  void tick();
  void connect(Link& link);
  void fail(Link& link, Reason reason, std::string_view detail);
  void become_ready(Link& link);
  void emit(Link& link, LinkState state);
  void on_reply(Link& link, const resp::ReplyView& reply);
  void on_command_reply(Link& link, const resp::ReplyView& reply);
  void on_pubsub_reply(Link& link, const resp::ReplyView& reply);
  // Hands queued bytes to the command socket while its send queue has room.
  void pump();
  void mark_handed(size_t bytes);
  void fail_in_flight(CommandStatus status, bool everything);
  // Sends one command on the subscriber link (false: the link failed).
  bool send_subscriber(std::span<const std::string_view> argv);
  void resubscribe();
  // Forgets every channel (unsubscribing each) and tells the caller.
  void drop_all_channels();
  // Queues one encoded-as-argv command with its Pending (command() and script()).
  std::expected<void, SubmitError> submit(std::span<const std::string_view> argv, const Pending& pending);
  // Drops the oldest script command's argument copy (its reply came, or it failed).
  void release_script_args(const Pending& p);
  // NOSCRIPT: `p`'s command again as EVAL with the script's text.
  void resend_as_eval(const Pending& p);
  uint64_t backoff_ms(uint32_t failures);

  Reactor& reactor_;
  Config config_;
  Handlers handlers_;
  SocketAddress address_;
  std::minstd_rand random_;
  Link command_;
  Link subscriber_;
  PendingFifo pending_;
  size_t handed_ = 0;   // pending_[0, handed_) are wholly on the socket
  size_t partial_ = 0;  // bytes of pending_[handed_] on the socket (a large command)
  size_t pending_bytes_ = 0;
  ByteQueue backlog_;   // encoded commands not yet handed to the socket
  std::string scratch_;  // reused encoding buffer
  std::vector<std::string_view> argv_scratch_;
  std::vector<std::string> script_shas_;
  // The arguments of script commands awaiting their replies, in order, each
  // as a RESP array; consumed from script_args_head_.
  std::string script_args_;
  size_t script_args_head_ = 0;
  std::vector<std::string_view> script_argv_;
  std::unordered_set<std::string, TransparentStringHash, std::equal_to<>> channels_;
  size_t live_sockets_ = 0;
  bool stop_requested_ = false;
  Counters counters_;
  // The reactor's periodic cannot be removed: it holds this cell and does
  // nothing once the destructor has cleared it.
  std::shared_ptr<Client*> self_;
};

}  // namespace mf::valkey
