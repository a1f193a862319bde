// mf-echo: the raw baseline for perf/compare. The edge's runtime (ShardGroup,
// Reactor, WebSocketServer, optional TLS) with an app that sends every text
// message back unchanged: no JSON, no routing, no admission policy. What
// mf-load's `echo` scenario measures against it is the limit of this machine
// for our stack; mf-edge's `relay` figures are read against it.
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/net/descriptor_limit.h"
#include "common/runtime/io_uring_ring.h"
#include "common/net/listen_socket.h"
#include "common/base/log.h"
#include "common/runtime/shard_group.h"
#include "common/tls/tls_context.h"
#include "common/tls/tls_record_layer_self_test.h"
#include "common/tls/tls_ticket_keys.h"
#include "common/http/websocket_server.h"

namespace {

using namespace mf;

constexpr std::string_view usage_text = R"(usage: mf-echo [options]

Echoes every WebSocket text message back unchanged (the raw baseline of
perf/compare). The WebSocket path is /ws; /healthz answers 200.

Options (defaults in brackets):
  --listen HOST:PORT      listening address                      [127.0.0.1:9300]
  --tls-cert FILE         PEM certificate chain: serve wss (with --tls-key)
  --tls-key FILE          PEM private key
  --shards N              shards, shard i pinned to the i-th CPU the process may
                          use, modulo their count (taskset narrows the set;
                          0 = one per core)                      [1]
  --max-message-bytes N   largest message accepted                [65536]
  --help                  this text
)";

struct EchoConfig {
  std::string listen = "127.0.0.1:9300";
  std::string tls_cert;
  std::string tls_key;
  uint32_t shards = 1;
  uint32_t max_message_bytes = 65536;
};

// Read-only after start; shared by every shard.
struct EchoShared {
  SocketAddress address;
  tls::ServerContextConfig tls;  // no certificates: plain ws
  uint32_t max_message_bytes = 65536;
};

// One per shard: a listener, a WebSocketServer and the echo app.
class EchoShard final : public ShardService, public WebSocketApp {
 public:
  static std::expected<std::unique_ptr<ShardService>, std::string> create(Shard& shard, const EchoShared& shared) {
    std::unique_ptr<EchoShard> self(new EchoShard(shard));
    WebSocketServerConfig ws;
    ws.routes.websocket_path = "/ws";
    ws.decoder.max_message_bytes = shared.max_message_bytes;
    if (!shared.tls.certificates.empty()) {
      auto context = tls::Context::make_server(shared.tls);
      if (!context) return std::unexpected(context.error());
      self->tls_.emplace(std::move(*context));
      ws.tls = &*self->tls_;
    }
    self->server_ = std::make_unique<WebSocketServer>(shard.reactor(), ws, *self);
    auto fd = open_listener(shared.address, 4096);
    if (!fd) return std::unexpected("--listen: " + fd.error());
    self->listen_fd_ = *fd;
    shard.reactor().add_listener(*fd, self->server_.get());
    return std::unique_ptr<ShardService>(std::move(self));
  }

  ~EchoShard() override {
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  // WebSocketApp (ShardService's on_message, for cross-shard messages, stays
  // visible beside it: this shard posts none).
  using ShardService::on_message;
  Admission admit(SocketHandle, const http::RequestHead&) override { return {}; }
  void on_open(SocketHandle) override {}
  void on_message(SocketHandle connection, std::string_view text) override { server_->send_text(connection, text); }
  void on_closed(SocketHandle) override {}
  bool healthy() const override { return !stopping_; }

  // ShardService
  void on_stop_requested() override {
    stopping_ = true;
    stop_deadline_ms_ = shard_.reactor().now_ms() + stop_grace_ms;
    shard_.reactor().stop_accepting();
    server_->close_all(ws::close_code::going_away, "shutting down");
  }
  bool stopped() const override {
    const Reactor& reactor = shard_.reactor();
    return stopping_ && (reactor.live_sockets() == 0 || reactor.now_ms() >= stop_deadline_ms_);
  }

 private:
  // Peers that do not finish the close handshake are not waited for longer.
  static constexpr uint64_t stop_grace_ms = 2000;

  explicit EchoShard(Shard& shard) : shard_(shard) {}

  Shard& shard_;
  std::optional<tls::Context> tls_;
  std::unique_ptr<WebSocketServer> server_;
  int listen_fd_ = -1;
  bool stopping_ = false;
  uint64_t stop_deadline_ms_ = 0;
};

template <class T>
bool parse_number(std::string_view text, T& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

// Empty on success; "help" for --help; else one line.
std::string parse_arguments(int argc, char** argv, EchoConfig& c) {
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    std::string_view value;
    if (flag == "--help" || flag == "-h") return "help";
    if (size_t eq = flag.find('='); eq != std::string_view::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else {
      if (i + 1 >= argc) return std::string(flag) + " needs a value";
      value = argv[++i];
    }
    if (flag == "--listen") {
      c.listen = std::string(value);
    } else if (flag == "--tls-cert") {
      c.tls_cert = std::string(value);
    } else if (flag == "--tls-key") {
      c.tls_key = std::string(value);
    } else if (flag == "--shards") {
      if (!parse_number(value, c.shards) || c.shards > 256) return "--shards: must be 0..256";
    } else if (flag == "--max-message-bytes") {
      if (!parse_number(value, c.max_message_bytes) || c.max_message_bytes < 125 || c.max_message_bytes > (64u << 20))
        return "--max-message-bytes: must be 125..67108864";
    } else {
      return "unknown option " + std::string(flag) + " (see --help)";
    }
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) return "--tls-cert and --tls-key go together";
  return {};
}

int fail_start(const std::string& line, int code = 1) {
  std::fprintf(stderr, "mf-echo: %s\n", line.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  EchoConfig config;
  std::string error = parse_arguments(argc, argv, config);
  if (error == "help") {
    std::fputs(usage_text.data(), stdout);
    return 0;
  }
  if (!error.empty()) return fail_start(error, 2);

  EchoShared shared;
  shared.max_message_bytes = config.max_message_bytes;
  auto address = parse_socket_address(config.listen);
  if (!address) return fail_start("--listen: " + address.error(), 2);
  shared.address = *address;
  if (auto probe = probe_io_uring_support(); !probe) return fail_start(probe.error());
  if (!config.tls_cert.empty()) {
    auto keys = TicketKeys::generate();
    if (!keys) return fail_start(keys.error());
    shared.tls.certificates.push_back({config.tls_cert, config.tls_key});
    shared.tls.ticket_keys = *keys;
    // Validate once here so a bad certificate fails before any thread starts.
    auto context = tls::Context::make_server(shared.tls);
    if (!context) return fail_start(context.error());
    (void)tls::prove_record_layer(shared.tls);  // as mf-edge: logs its verdict
  }

  ShardGroupOptions options;
  options.shard_count = config.shards != 0 ? config.shards : std::max(1u, std::thread::hardware_concurrency());
  options.reactor.max_sockets = raise_descriptor_limit();

  ShardGroup::block_process_signals();
  ShardGroup group;
  auto result = group.run(
      options, [&](Shard& shard) { return EchoShard::create(shard, shared); },
      [&] {
        MF_LOG_NOTICE("mf-echo serving {} on {} with {} shards", config.tls_cert.empty() ? "ws" : "wss", config.listen,
                      options.shard_count);
      });
  if (!result) return fail_start(result.error());
  MF_LOG_NOTICE("mf-echo stopped");
  return 0;
}
