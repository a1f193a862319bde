#include "common/valkey/valkey_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/base/log.h"
#include "common/base/sha1.h"

namespace mf::valkey {
namespace {

std::string_view errno_text(int error) {
  const char* name = strerrorname_np(error);
  return name != nullptr ? std::string_view(name) : std::string_view("unknown errno");
}

// SYN retransmissions the kernel makes before a connect fails: the first
// SYN plus n retries take 2^(n+1) - 1 s. Closing a socket whose connect is
// still pending does not cancel that connect in the Reactor (it only marks
// the socket abandoned), so bound it by the connect timeout instead of the
// kernel's default of about two minutes.
int syn_retries_for(uint32_t timeout_ms) {
  int n = 1;
  while (n < 6 && ((1u << (n + 1)) - 1) * 1000u < timeout_ms) ++n;
  return n;
}

// Subscriptions sent per SUBSCRIBE when resubscribing many channels.
constexpr size_t channels_per_subscribe = 256;

}  // namespace

std::string_view role_name(Role role) { return role == Role::command ? "command" : "subscriber"; }

std::string_view state_name(LinkState state) {
  switch (state) {
    case LinkState::connecting: return "connecting";
    case LinkState::ready: return "ready";
    case LinkState::disconnected: return "disconnected";
  }
  return "?";
}

std::string_view reason_name(Reason reason) {
  switch (reason) {
    case Reason::none: return "none";
    case Reason::connect_failed: return "connect failed";
    case Reason::connect_timeout: return "connect timeout";
    case Reason::auth_failed: return "authentication failed";
    case Reason::handshake_failed: return "handshake failed";
    case Reason::command_timeout: return "command timeout";
    case Reason::peer_closed: return "closed by server";
    case Reason::protocol_error: return "protocol error";
    case Reason::send_failed: return "send failed";
    case Reason::stopped: return "stopped";
  }
  return "?";
}

std::string_view command_status_name(CommandStatus status) {
  switch (status) {
    case CommandStatus::reply: return "reply";
    case CommandStatus::disconnected: return "disconnected";
    case CommandStatus::stopped: return "stopped";
  }
  return "?";
}

std::string_view submit_error_name(SubmitError error) {
  switch (error) {
    case SubmitError::dropped: return "dropped";
    case SubmitError::stopped: return "stopped";
    case SubmitError::invalid: return "invalid";
  }
  return "?";
}

Counters& Counters::operator+=(const Counters& o) {
  commands_sent += o.commands_sent;
  replies += o.replies;
  error_replies += o.error_replies;
  dropped += o.dropped;
  failed_disconnected += o.failed_disconnected;
  connects += o.connects;
  reconnects += o.reconnects;
  connect_failures += o.connect_failures;
  timeouts += o.timeouts;
  auth_failures += o.auth_failures;
  protocol_errors += o.protocol_errors;
  messages += o.messages;
  script_fallbacks += o.script_fallbacks;
  bytes_in += o.bytes_in;
  bytes_out += o.bytes_out;
  redirects_moved += o.redirects_moved;
  redirects_ask += o.redirects_ask;
  map_refreshes += o.map_refreshes;
  return *this;
}

// ---- PendingFifo ----

void Client::PendingFifo::push_back(const Pending& p) {
  if (size_ == items_.size()) {
    std::vector<Pending> grown(items_.empty() ? 64 : items_.size() * 2);
    for (size_t i = 0; i < size_; ++i) grown[i] = (*this)[i];
    items_.swap(grown);
    head_ = 0;
  }
  items_[(head_ + size_) & (items_.size() - 1)] = p;
  ++size_;
}

void Client::PendingFifo::pop_front() {
  head_ = (head_ + 1) & (items_.size() - 1);
  --size_;
}

// ---- Client ----

std::expected<std::unique_ptr<Client>, std::string> Client::create(Reactor& reactor, const Config& config,
                                                                    const Handlers& handlers) {
  auto address = parse_socket_address(config.address);
  if (!address) return std::unexpected("valkey address: " + address.error());
  // parse_socket_address serves listeners too: a wildcard host or port 0
  // parse, and name no server.
  const sockaddr_storage& s = address->storage;
  const bool unspecified =
      s.ss_family == AF_INET
          ? reinterpret_cast<const sockaddr_in&>(s).sin_addr.s_addr == htonl(INADDR_ANY)
          : IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6&>(s).sin6_addr);
  const uint16_t port = s.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(s).sin_port
                                               : reinterpret_cast<const sockaddr_in6&>(s).sin6_port;
  if (unspecified || port == 0)
    return std::unexpected("valkey address: '" + config.address + "' names no server (HOST:PORT)");
  if (config.connect_timeout_ms == 0 || config.command_timeout_ms == 0 || config.tick_ms == 0)
    return std::unexpected(std::string("valkey: timeouts and tick must be positive"));
  if (config.backoff_min_ms == 0 || config.backoff_max_ms < config.backoff_min_ms)
    return std::unexpected(std::string("valkey: backoff needs 0 < min <= max"));
  if (!(config.backoff_jitter >= 0.0 && config.backoff_jitter <= 1.0))
    return std::unexpected(std::string("valkey: backoff jitter must be within 0..1"));
  if (config.max_queued_commands == 0 || config.max_queued_bytes == 0)
    return std::unexpected(std::string("valkey: queue bounds must be positive"));
  if (config.username.size() > 0 && config.password.empty())
    return std::unexpected(std::string("valkey: a username needs a password"));
  for (const std::string& script : config.scripts)
    if (script.empty()) return std::unexpected(std::string("valkey: an empty script"));
  std::unique_ptr<Client> client(new Client(reactor, config, handlers, *address));
  for (const std::string& script : config.scripts) {
    // EVALSHA names a script by its SHA-1 (a name, not a security property:
    // common/base/sha1.h).
    const Sha1Digest digest = sha1(script);
    std::string hex;
    for (size_t i = 0; i < digest.size(); ++i) {
      hex.push_back("0123456789abcdef"[digest[i] >> 4]);
      hex.push_back("0123456789abcdef"[digest[i] & 15]);
    }
    client->script_shas_.push_back(std::move(hex));
  }
  client->connect(client->command_);
  return client;
}

Client::Client(Reactor& reactor, const Config& config, const Handlers& handlers, const SocketAddress& address)
    : reactor_(reactor),
      config_(config),
      handlers_(handlers),
      address_(address),
      random_(static_cast<std::minstd_rand::result_type>(config.random_seed ^ (config.random_seed >> 32))),
      command_(Role::command, config.reader),
      subscriber_(Role::subscriber, config.reader),
      self_(std::make_shared<Client*>(this)) {
  std::shared_ptr<Client*> cell = self_;
  reactor_.add_periodic(config_.tick_ms, [cell] {
    if (*cell != nullptr) (*cell)->tick();
  });
}

Client::~Client() {
  // The reactor would call a destroyed service for these sockets.
  if (live_sockets_ != 0) std::abort();
  *self_ = nullptr;
  backlog_.clear(reactor_.pool());
}

Client::Link* Client::link_of(SocketHandle socket) {
  if (command_.socket.valid() && command_.socket == socket) return &command_;
  if (subscriber_.socket.valid() && subscriber_.socket == socket) return &subscriber_;
  return nullptr;
}

LinkState Client::state(Role role) const {
  const Link& link = role == Role::command ? command_ : subscriber_;
  if (link.phase == Phase::ready) return LinkState::ready;
  if (link.phase == Phase::connecting || link.phase == Phase::handshake) return LinkState::connecting;
  return LinkState::disconnected;
}

Reason Client::last_reason(Role role) const { return role == Role::command ? command_.last_reason : subscriber_.last_reason; }

const std::string& Client::last_detail(Role role) const {
  return role == Role::command ? command_.last_detail : subscriber_.last_detail;
}

void Client::emit(Link& link, LinkState state) {
  if (handlers_.on_state == nullptr) return;
  StateEvent event{link.role, state, state == LinkState::disconnected ? link.last_reason : Reason::none,
                   state == LinkState::disconnected ? std::string_view(link.last_detail) : std::string_view()};
  handlers_.on_state(handlers_.context, event);
}

uint64_t Client::backoff_ms(uint32_t failures) {
  uint64_t delay = config_.backoff_min_ms;
  for (uint32_t i = 0; i < failures && delay < config_.backoff_max_ms; ++i) delay *= 2;
  delay = std::min<uint64_t>(delay, config_.backoff_max_ms);
  // Many edges (and shards) losing the same Valkey must not come back in
  // lockstep: take a random part of the delay away.
  uint64_t spread = static_cast<uint64_t>(static_cast<double>(delay) * config_.backoff_jitter);
  if (spread > 0) delay = delay - spread + random_() % (spread + 1);
  return std::max<uint64_t>(delay, 1);
}

void Client::connect(Link& link) {
  if (link.ever_attempted) ++counters_.reconnects;
  link.ever_attempted = true;
  ++counters_.connects;
  link.phase = Phase::connecting;
  link.deadline_ms = reactor_.now_ms() + config_.connect_timeout_ms;
  link.handshake_replies = 0;
  link.outstanding = 0;
  emit(link, LinkState::connecting);
  if (link.phase != Phase::connecting) return;  // stopped from the callback
  const int family = address_.storage.ss_family;
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ++counters_.connect_failures;
    fail(link, Reason::connect_failed, errno_text(errno));
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int syn_retries = syn_retries_for(config_.connect_timeout_ms);
  setsockopt(fd, IPPROTO_TCP, TCP_SYNCNT, &syn_retries, sizeof syn_retries);
  auto handle = reactor_.connect_adopted(fd, reinterpret_cast<const sockaddr*>(&address_.storage), address_.length, this);
  if (!handle) {
    ++counters_.connect_failures;
    fail(link, Reason::connect_failed, errno_text(-handle.error()));
    return;
  }
  ++live_sockets_;
  link.socket = *handle;
}

void Client::on_connected(SocketHandle socket, int error) {
  Link* link = link_of(socket);
  if (link == nullptr) return;
  if (error != 0) {
    ++counters_.connect_failures;
    fail(*link, Reason::connect_failed, errno_text(-error));
    return;
  }
  link->phase = Phase::handshake;
  link->reader.reset();
  link->last_received_ms = reactor_.now_ms();
  // The first reply proves a live server. AUTH when configured (its error
  // is the clearest diagnosis of a bad password), else PING.
  scratch_.clear();
  if (!config_.password.empty()) {
    if (config_.username.empty()) {
      std::array<std::string_view, 2> argv{"AUTH", config_.password};
      resp::append_command(scratch_, argv);
    } else {
      std::array<std::string_view, 3> argv{"AUTH", config_.username, config_.password};
      resp::append_command(scratch_, argv);
    }
  } else {
    std::array<std::string_view, 1> argv{"PING"};
    resp::append_command(scratch_, argv);
  }
  link->handshake_replies = 1;
  // Every connection of the command link loads the scripts first: EVALSHA
  // then finds them (a server restarted, or another node, has none).
  if (link->role == Role::command) {
    for (const std::string& script : config_.scripts) {
      std::array<std::string_view, 3> argv{"SCRIPT", "LOAD", script};
      resp::append_command(scratch_, argv);
      ++link->handshake_replies;
    }
  }
  if (!reactor_.send(socket, std::span(reinterpret_cast<const uint8_t*>(scratch_.data()), scratch_.size()))) {
    fail(*link, Reason::send_failed, "pool exhausted");
    return;
  }
  counters_.bytes_out += scratch_.size();
}

void Client::on_received(SocketHandle socket, std::span<uint8_t> bytes) {
  Link* link = link_of(socket);
  if (link == nullptr) return;
  counters_.bytes_in += bytes.size();
  link->last_received_ms = reactor_.now_ms();
  if (auto fed = link->reader.feed(bytes); !fed) {
    ++counters_.protocol_errors;
    fail(*link, Reason::protocol_error, resp::reply_error_name(fed.error()));
    return;
  }
  for (;;) {
    auto reply = link->reader.next();
    if (!reply) {
      ++counters_.protocol_errors;
      std::string detail(resp::reply_error_name(reply.error()));
      if (!link->reader.error_text().empty()) detail.append(": ").append(link->reader.error_text());
      fail(*link, Reason::protocol_error, detail);
      return;
    }
    if (!reply->has_value()) break;
    on_reply(*link, **reply);
    // A callback may have failed or stopped the link: its socket is gone.
    if (!(link->socket == socket)) return;
  }
  if (link->role == Role::command) pump();
}

void Client::on_reply(Link& link, const resp::ReplyView& reply) {
  if (link.handshake_replies > 0) {
    --link.handshake_replies;
    if (reply.is_error()) {
      bool auth = !config_.password.empty();
      if (auth) ++counters_.auth_failures;
      fail(link, auth ? Reason::auth_failed : Reason::handshake_failed, reply.text());
      return;
    }
    if (link.handshake_replies == 0) become_ready(link);
    return;
  }
  if (link.role == Role::command) {
    on_command_reply(link, reply);
  } else {
    on_pubsub_reply(link, reply);
  }
}

void Client::become_ready(Link& link) {
  link.phase = Phase::ready;
  link.failures = 0;
  link.last_reply_ms = reactor_.now_ms();
  emit(link, LinkState::ready);
  if (link.phase != Phase::ready) return;
  if (link.role == Role::command) {
    pump();
  } else {
    resubscribe();
  }
}

void Client::on_command_reply(Link& link, const resp::ReplyView& reply) {
  if (handed_ == 0) {
    // A reply to nothing (or to a command not wholly sent): the stream and
    // our queue disagree, nothing after this can be matched.
    ++counters_.protocol_errors;
    fail(link, Reason::protocol_error, "reply without a command");
    return;
  }
  Pending p = pending_.front();
  pending_.pop_front();
  --handed_;
  pending_bytes_ -= p.bytes;
  ++counters_.replies;
  link.last_reply_ms = reactor_.now_ms();
  if (p.script != no_script && reply.is_error() && reply.text().starts_with("NOSCRIPT")) return resend_as_eval(p);
  if (reply.is_error()) ++counters_.error_replies;
  release_script_args(p);
  if (p.done.fn != nullptr) p.done.fn(p.done.context, p.done.cookie, CommandStatus::reply, &reply);
}

void Client::on_pubsub_reply(Link& link, const resp::ReplyView& reply) {
  link.last_reply_ms = reactor_.now_ms();
  // +PONG answers a PING when no channel is subscribed; -ERR answers a
  // command the server refused (counted as the answer it is).
  if (reply.type() == resp::ReplyType::status || reply.is_error()) {
    if (reply.is_error()) {
      ++counters_.error_replies;
      MF_LOG_WARN("valkey subscriber: {}", reply.text());
    }
    if (link.outstanding > 0) --link.outstanding;
    // A cluster node refused a sharded subscription (its slot is elsewhere):
    // which channel is not said. Every channel of this link goes back to
    // the caller, which subscribes them where its slot map says.
    if (config_.sharded_pubsub && reply.is_error() && reply.text().starts_with("MOVED")) drop_all_channels();
    return;
  }
  if (reply.type() != resp::ReplyType::array || reply.size() < 2 || reply[0].type() != resp::ReplyType::string) {
    ++counters_.protocol_errors;
    fail(link, Reason::protocol_error, "unexpected reply on the subscriber connection");
    return;
  }
  std::string_view kind = reply[0].text();
  if ((kind == "message" || kind == "smessage") && reply.size() == 3) {
    ++counters_.messages;
    if (handlers_.on_message != nullptr) handlers_.on_message(handlers_.context, reply[1].text(), reply[2].text());
    return;
  }
  if (kind == "sunsubscribe" && reply.size() == 3 && reply[1].type() == resp::ReplyType::string) {
    // Asked for (the channel was forgotten at once), or the server ended it
    // by itself: its slot moved to another node.
    auto it = channels_.find(reply[1].text());
    if (it == channels_.end()) {
      if (link.outstanding > 0) --link.outstanding;
      return;
    }
    channels_.erase(it);
    if (handlers_.on_channel_dropped != nullptr) handlers_.on_channel_dropped(handlers_.context, reply[1].text());
    return;
  }
  if (kind == "subscribe" || kind == "unsubscribe" || kind == "ssubscribe" || kind == "pong") {
    if (link.outstanding > 0) --link.outstanding;
    return;
  }
  ++counters_.protocol_errors;
  fail(link, Reason::protocol_error, "unexpected push on the subscriber connection");
}

std::expected<void, SubmitError> Client::command(std::span<const std::string_view> argv, Completion done) {
  MF_ASSERT_ON_SHARD(reactor_.shard_id());
  if (stop_requested_) return std::unexpected(SubmitError::stopped);
  if (argv.empty()) return std::unexpected(SubmitError::invalid);
  return submit(argv, Pending{done, 0, 0});
}

std::expected<void, SubmitError> Client::script(size_t index, std::span<const std::string_view> args, Completion done) {
  MF_ASSERT_ON_SHARD(reactor_.shard_id());
  if (stop_requested_) return std::unexpected(SubmitError::stopped);
  if (index >= script_shas_.size() || args.empty()) return std::unexpected(SubmitError::invalid);
  argv_scratch_.assign({"EVALSHA", script_shas_[index]});
  argv_scratch_.insert(argv_scratch_.end(), args.begin(), args.end());
  const size_t before = script_args_.size();
  resp::append_command(script_args_, args);
  Pending pending{done, 0, 0, static_cast<uint32_t>(index), static_cast<uint32_t>(script_args_.size() - before)};
  auto submitted = submit(argv_scratch_, pending);
  if (!submitted) script_args_.resize(before);
  return submitted;
}

std::expected<void, SubmitError> Client::submit(std::span<const std::string_view> argv, const Pending& pending) {
  const size_t size = resp::command_size(argv);
  if (pending_.size() >= config_.max_queued_commands || pending_bytes_ + size > config_.max_queued_bytes ||
      size > UINT32_MAX) {
    ++counters_.dropped;
    return std::unexpected(SubmitError::dropped);
  }
  BlockPool& pool = reactor_.pool();
  const size_t room_cap = reactor_.options().max_queued_bytes_per_socket;
  const bool direct = command_.phase == Phase::ready && backlog_.empty() &&
                      reactor_.queued_bytes(command_.socket) + size <= room_cap;
  bool queued = false;
  if (!direct && size <= Block::capacity) {
    // Formatted in place in the backlog's tail block: one copy in all.
    if (uint8_t* at = backlog_.reserve(pool, size)) {
      resp::write_command(std::span<char>(reinterpret_cast<char*>(at), size), argv);
      backlog_.commit(size);
      queued = true;
    }
  } else {
    scratch_.clear();
    resp::append_command(scratch_, argv);
    std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(scratch_.data()), scratch_.size());
    if (direct && reactor_.send(command_.socket, bytes)) {
      Pending p = pending;
      p.bytes = static_cast<uint32_t>(size);
      pending_.push_back(p);
      pending_bytes_ += size;
      counters_.bytes_out += size;
      mark_handed(size);
      return {};
    }
    queued = backlog_.append(pool, bytes);
  }
  if (!queued) {
    ++counters_.dropped;  // the shard's pool is exhausted
    return std::unexpected(SubmitError::dropped);
  }
  Pending p = pending;
  p.bytes = static_cast<uint32_t>(size);
  pending_.push_back(p);
  pending_bytes_ += size;
  pump();
  return {};
}

void Client::release_script_args(const Pending& p) {
  if (p.script == no_script) return;
  script_args_head_ += p.args_bytes;
  if (script_args_head_ >= script_args_.size()) {
    script_args_.clear();
    script_args_head_ = 0;
  } else if (script_args_head_ > 4096 && script_args_head_ * 2 > script_args_.size()) {
    // Under a steady pipeline the copy never drains: compact it now and then
    // (amortized: at most as many bytes moved as were consumed).
    script_args_.erase(0, script_args_head_);
    script_args_head_ = 0;
  }
}

void Client::resend_as_eval(const Pending& p) {
  ++counters_.script_fallbacks;
  // The copy is a RESP array of bulk strings (written by script()): read
  // its elements back as views.
  std::string_view copy(script_args_.data() + script_args_head_, p.args_bytes);
  script_argv_.assign({"EVAL", config_.scripts[p.script]});
  size_t at = copy.find("\r\n") + 2;
  while (at < copy.size() && copy[at] == '$') {
    size_t end = copy.find("\r\n", at);
    size_t length = 0;
    std::from_chars(copy.data() + at + 1, copy.data() + end, length);
    script_argv_.push_back(copy.substr(end + 2, length));
    at = end + 2 + length + 2;
  }
  // Submitted before the copy is released: the views point into it.
  auto resent = submit(script_argv_, Pending{p.done, 0, 0});
  release_script_args(p);
  if (!resent && p.done.fn != nullptr) p.done.fn(p.done.context, p.done.cookie, CommandStatus::disconnected, nullptr);
}

void Client::mark_handed(size_t bytes) {
  const uint64_t now = reactor_.now_ms();
  while (bytes > 0) {
    Pending& p = pending_[handed_];
    if (partial_ == 0) {
      p.handed_ms = now;
      ++counters_.commands_sent;
    }
    size_t take = std::min(bytes, p.bytes - partial_);
    partial_ += take;
    bytes -= take;
    if (partial_ == p.bytes) {
      ++handed_;
      partial_ = 0;
    }
  }
}

void Client::pump() {
  if (command_.phase != Phase::ready) return;
  const size_t cap = reactor_.options().max_queued_bytes_per_socket;
  BlockPool& pool = reactor_.pool();
  // Bounded by the socket's send queue: the rest waits here and moves as
  // replies (hence sends) progress, or at the next tick.
  while (!backlog_.empty()) {
    size_t queued = reactor_.queued_bytes(command_.socket);
    if (queued >= cap) break;
    std::span<uint8_t> chunk = backlog_.front();
    size_t n = std::min(chunk.size(), cap - queued);
    if (!reactor_.send(command_.socket, chunk.first(n))) {
      fail(command_, Reason::send_failed, "pool exhausted");
      return;
    }
    backlog_.consume(pool, n);
    counters_.bytes_out += n;
    mark_handed(n);
  }
}

void Client::fail_in_flight(CommandStatus status, bool everything) {
  // A partly sent command lost its tail with the socket: its remaining
  // bytes leave the backlog and it fails with the ones wholly sent.
  size_t count = handed_;
  if (partial_ > 0) {
    backlog_.consume(reactor_.pool(), pending_[handed_].bytes - partial_);
    ++count;
  }
  if (everything) {
    count = pending_.size();
    backlog_.clear(reactor_.pool());
  }
  handed_ = 0;
  partial_ = 0;
  // Callbacks may queue new commands (at the back) or stop the client
  // (which empties the queue): pop only what failed here.
  while (count-- > 0 && !pending_.empty()) {
    Pending p = pending_.front();
    pending_.pop_front();
    pending_bytes_ -= p.bytes;
    release_script_args(p);
    if (status == CommandStatus::disconnected) ++counters_.failed_disconnected;
    if (p.done.fn != nullptr) p.done.fn(p.done.context, p.done.cookie, status, nullptr);
  }
}

void Client::fail(Link& link, Reason reason, std::string_view detail) {
  if (link.socket.valid()) {
    reactor_.close(link.socket, CloseMode::abort);
    link.socket = SocketHandle{};
  }
  const bool was_ready = link.phase == Phase::ready;
  link.phase = Phase::backoff;
  link.deadline_ms = reactor_.now_ms() + backoff_ms(link.failures);
  if (!was_ready) ++link.failures;
  link.outstanding = 0;
  link.handshake_replies = 0;
  link.last_reason = reason;
  link.last_detail.assign(detail);
  // One line per outage, then one per doubling of its failures: a Valkey
  // that stays down does not flood the journal from every shard.
  if (was_ready || std::has_single_bit(link.failures))
    MF_LOG_WARN("valkey {} link to {}: {}{}{} (failures in a row: {})", role_name(link.role), address_.text,
                reason_name(reason), detail.empty() ? "" : ": ", detail, link.failures);
  if (link.role == Role::command) fail_in_flight(CommandStatus::disconnected, false);
  emit(link, LinkState::disconnected);
}

void Client::on_peer_closed(SocketHandle socket, int error) {
  Link* link = link_of(socket);
  if (link == nullptr) return;
  fail(*link, Reason::peer_closed, error == 0 ? std::string_view("end of stream") : errno_text(-error));
}

void Client::on_accepted(SocketHandle, const sockaddr_storage*) {
  // The client never listens.
  std::abort();
}

void Client::on_timer(SocketHandle) {}  // deadlines are checked by tick()

void Client::on_released(SocketHandle) { --live_sockets_; }

bool Client::send_subscriber(std::span<const std::string_view> argv) {
  scratch_.clear();
  resp::append_command(scratch_, argv);
  if (!reactor_.send(subscriber_.socket, std::span(reinterpret_cast<const uint8_t*>(scratch_.data()), scratch_.size()))) {
    fail(subscriber_, Reason::send_failed, "send queue full or pool exhausted");
    return false;
  }
  counters_.bytes_out += scratch_.size();
  ++counters_.commands_sent;
  if (subscriber_.outstanding == 0) subscriber_.last_reply_ms = reactor_.now_ms();
  // One confirmation per channel; PING answers once.
  subscriber_.outstanding += argv.size() > 1 ? static_cast<uint32_t>(argv.size() - 1) : 1;
  return true;
}

void Client::drop_all_channels() {
  std::vector<std::string> dropped;
  dropped.reserve(channels_.size());
  for (const std::string& channel : channels_) dropped.push_back(channel);
  for (const std::string& channel : dropped) unsubscribe(channel);
  if (handlers_.on_channel_dropped != nullptr) handlers_.on_channel_dropped(handlers_.context, {});
}

void Client::resubscribe() {
  if (channels_.empty()) return;
  argv_scratch_.clear();
  argv_scratch_.push_back(config_.sharded_pubsub ? "SSUBSCRIBE" : "SUBSCRIBE");
  // Sharded: one channel per command (a cluster refuses channels of
  // several slots in one).
  const size_t per_command = config_.sharded_pubsub ? 1 : channels_per_subscribe;
  for (const std::string& channel : channels_) {
    argv_scratch_.push_back(channel);
    if (argv_scratch_.size() > per_command) {
      if (!send_subscriber(argv_scratch_)) return;
      argv_scratch_.resize(1);
    }
  }
  if (argv_scratch_.size() > 1) send_subscriber(argv_scratch_);
}

bool Client::subscribe(std::string_view channel) {
  MF_ASSERT_ON_SHARD(reactor_.shard_id());
  if (stop_requested_ || channel.empty()) return false;
  if (channels_.contains(channel)) return true;
  channels_.emplace(channel);
  if (subscriber_.phase == Phase::idle) {
    connect(subscriber_);
  } else if (subscriber_.phase == Phase::ready) {
    std::array<std::string_view, 2> argv{config_.sharded_pubsub ? "SSUBSCRIBE" : "SUBSCRIBE", channel};
    send_subscriber(argv);
  }
  return true;
}

bool Client::unsubscribe(std::string_view channel) {
  MF_ASSERT_ON_SHARD(reactor_.shard_id());
  if (stop_requested_ || channel.empty()) return false;
  auto it = channels_.find(channel);
  if (it == channels_.end()) return true;
  if (subscriber_.phase == Phase::ready) {
    std::array<std::string_view, 2> argv{config_.sharded_pubsub ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", channel};
    send_subscriber(argv);
  }
  channels_.erase(it);
  return true;
}

void Client::stop() {
  MF_ASSERT_ON_SHARD(reactor_.shard_id());
  if (stop_requested_) return;
  stop_requested_ = true;
  for (Link* link : {&command_, &subscriber_}) {
    if (link->socket.valid()) {
      reactor_.close(link->socket, CloseMode::graceful);
      link->socket = SocketHandle{};
    }
    const bool was_active = link->phase != Phase::idle;
    link->phase = Phase::idle;
    link->last_reason = Reason::stopped;
    link->last_detail.clear();
    if (link->role == Role::command) fail_in_flight(CommandStatus::stopped, true);
    if (was_active) emit(*link, LinkState::disconnected);
  }
}

void Client::tick() {
  const uint64_t now = reactor_.now_ms();
  for (Link* link : {&command_, &subscriber_}) {
    switch (link->phase) {
      case Phase::idle:
        break;
      case Phase::backoff:
        if (now >= link->deadline_ms) connect(*link);
        break;
      case Phase::connecting:
      case Phase::handshake:
        if (now >= link->deadline_ms) {
          ++counters_.timeouts;
          fail(*link, Reason::connect_timeout,
               link->phase == Phase::connecting ? "no TCP connection" : "no answer to AUTH/PING");
        }
        break;
      case Phase::ready: {
        // Waiting for a reply: the oldest command on the socket, or the
        // subscriber's confirmations. Any reply counts as progress.
        bool waiting = link->role == Role::command ? (handed_ > 0 || partial_ > 0) : link->outstanding > 0;
        if (waiting) {
          uint64_t since = link->last_reply_ms;
          if (link->role == Role::command) since = std::max(since, pending_.front().handed_ms);
          if (now >= since + config_.command_timeout_ms) {
            ++counters_.timeouts;
            fail(*link, Reason::command_timeout, "no reply");
            break;
          }
        } else if (config_.health_check_ms != 0 && now >= link->last_received_ms + config_.health_check_ms) {
          std::array<std::string_view, 1> ping{"PING"};
          if (link->role == Role::command) {
            (void)command(ping);  // a full queue drops it: commands are waiting anyway
          } else {
            send_subscriber(ping);
          }
          // Counted from now: one PING per period of silence.
          link->last_received_ms = now;
        }
        if (link->role == Role::command) pump();
        break;
      }
    }
  }
}

}  // namespace mf::valkey
