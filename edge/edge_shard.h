#pragma once
// One shard of mf-edge: its listener, its WebSocket server and the SDK
// protocol for the connections it accepted.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/listen_socket.h"
#include "common/shard_group.h"
#include "common/tls_context.h"
#include "common/websocket_server.h"
#include "edge/edge_config.h"
#include "edge/sdk_message.h"

namespace mf::edge {

// What every shard shares read-only, built once at start-up.
struct EdgeShared {
  EdgeConfig config;
  SocketAddress listen_address;
  tls::ServerContextConfig tls;  // certificates empty: plain
};

class EdgeShard final : public ShardService, public WebSocketApp {
 public:
  static std::expected<std::unique_ptr<ShardService>, std::string> create(Shard& shard, const EdgeShared& shared);
  ~EdgeShard() override;

  // ShardService
  void on_stop_requested() override;
  bool stopped() const override;

  // WebSocketApp
  Admission admit(SocketHandle connection, const http::RequestHead& head) override;
  void on_open(SocketHandle connection) override;
  void on_message(SocketHandle connection, std::string_view text) override;
  void on_closed(SocketHandle connection) override;
  bool healthy() const override { return !stopping_; }

 private:
  EdgeShard(Shard& shard, const EdgeShared& shared) : shard_(shard), shared_(shared) {}
  void send_error(SocketHandle connection, SdkErrorCode code, std::string_view message,
                  std::string_view detail, std::string_view id_raw);

  Shard& shard_;
  const EdgeShared& shared_;
  int listen_fd_ = -1;
  std::optional<tls::Context> tls_;
  std::unique_ptr<WebSocketServer> server_;
  SdkMessageParser parser_;
  std::vector<char> reply_;  // one outgoing message; sized to the message limit
  bool stopping_ = false;
  uint64_t stop_deadline_ms_ = 0;
};

}  // namespace mf::edge
