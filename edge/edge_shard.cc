#include "edge/edge_shard.h"

#include <unistd.h>

#include "common/json_writer.h"
#include "common/listen_socket.h"
#include "common/log.h"

namespace mf::edge {
namespace {
// How long a stopping shard waits for its peers' close handshakes.
constexpr uint64_t stop_grace_ms = 3000;
}

std::expected<std::unique_ptr<ShardService>, std::string> EdgeShard::create(Shard& shard, const EdgeShared& shared) {
  std::unique_ptr<EdgeShard> self(new EdgeShard(shard, shared));
  self->reply_.resize(shared.config.max_message_bytes + 1024);
  WebSocketServerConfig ws;
  ws.routes.websocket_path = shared.config.websocket_path;
  ws.decoder.max_message_bytes = shared.config.max_message_bytes;
  ws.heartbeat_ms = shared.config.heartbeat_ms;
  ws.handshake_timeout_ms = shared.config.handshake_timeout_ms;
  if (!shared.tls.certificates.empty()) {
    // One context per shard: nothing in OpenSSL is shared between shards but
    // the ticket keys, so a resumed session works on any shard.
    auto context = tls::Context::make_server(shared.tls);
    if (!context) return std::unexpected(context.error());
    self->tls_.emplace(std::move(*context));
    ws.tls = &*self->tls_;
  }
  self->server_ = std::make_unique<WebSocketServer>(shard.reactor(), ws, *self);
  auto fd = open_listener(shared.listen_address, 4096);
  if (!fd) return std::unexpected(fd.error());
  self->listen_fd_ = *fd;
  shard.reactor().add_listener(*fd, self->server_.get());
  return std::unique_ptr<ShardService>(std::move(self));
}

EdgeShard::~EdgeShard() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void EdgeShard::on_stop_requested() {
  stopping_ = true;
  stop_deadline_ms_ = shard_.reactor().now_ms() + stop_grace_ms;
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
  server_->close_all(ws::close_code::going_away, "edge shutting down");
}

bool EdgeShard::stopped() const {
  return stopping_ && (shard_.reactor().live_sockets() == 0 || shard_.reactor().now_ms() >= stop_deadline_ms_);
}

Admission EdgeShard::admit(SocketHandle, const http::RequestHead&) {
  if (stopping_) return Admission{503, "draining\n", "Retry-After: 1\r\n"};
  return Admission{};
}

void EdgeShard::on_open(SocketHandle) {}

void EdgeShard::on_closed(SocketHandle) {}

void EdgeShard::send_error(SocketHandle connection, SdkErrorCode code, std::string_view message,
                           std::string_view detail, std::string_view id_raw) {
  JsonWriter out(reply_);
  out.raw(R"({"type":"error","code":")");
  out.raw(error_code_text(code));
  out.raw(R"(","message":)");
  if (detail.empty()) {
    out.string(message);
  } else {
    char text[256];
    JsonWriter composed(text);
    composed.raw(message);
    composed.raw(": ");
    composed.raw(detail.substr(0, 128));
    out.string(composed.text());
  }
  if (!id_raw.empty()) {
    out.raw(R"(,"ref":)");
    out.raw(id_raw);
  }
  out.raw("}");
  server_->send_text(connection, out.text());
}

void EdgeShard::on_message(SocketHandle connection, std::string_view text) {
  auto request = parser_.parse(text);
  if (!request) {
    const SdkRejection& r = request.error();
    send_error(connection, r.code, r.message, r.detail, r.id_raw);
    return;
  }
  switch (request->type) {
    case MessageType::ping: {
      JsonWriter out(reply_);
      out.raw(R"({"type":"pong")");
      if (!request->t_raw.empty()) {
        out.raw(R"(,"t":)");
        out.raw(request->t_raw);
      }
      if (!request->id_raw.empty()) {
        out.raw(R"(,"ref":)");
        out.raw(request->id_raw);
      }
      out.raw("}");
      if (!out.ok()) {
        send_error(connection, SdkErrorCode::bad_request, "t: too large to echo", {}, request->id_raw);
        return;
      }
      server_->send_text(connection, out.text());
      return;
    }
    default:
      send_error(connection, SdkErrorCode::unknown_type, "unknown type", {}, request->id_raw);
      return;
  }
}

}  // namespace mf::edge
