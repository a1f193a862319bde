#pragma once
// The WebSocket framing path of one connection, for either role
// (docs/architecture.md, "The WebSocket framing path"): plaintext from the
// TransportStream is decoded (ws::Decoder, RFC 6455) and its data frames are
// assembled into whole messages for the owner; outgoing messages are framed
// (masked by a client, never by a server) and written to the TransportStream.
// The server (WebSocketServer) and the client (mf-load) both use it; what a
// message means, and what a close or an error costs, stays theirs.
//
// Steady state allocates nothing: a message inside one read is handed over
// in place; a message split across reads borrows blocks from the shard's
// pool only until it is complete, then is copied once into the shard's
// MessageWorkspace. Frames are written as header and payload pieces
// (server) or built once in the workspace (client: the mask needs a copy).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <expected>
#include <span>
#include <string_view>
#include <vector>

#include "common/runtime/block_pool.h"
#include "common/tls/tls_session.h"
#include "common/tls/transport_stream.h"
#include "common/codec/websocket_codec.h"

namespace mf::ws {

// Readable bytes after every message handed to on_message (simdjson reads
// up to 64 bytes past the end of its input).
inline constexpr size_t message_tail_padding = 64;

// The failure reason of send() and send_pieces() when a client frame does not fit the workspace.
inline constexpr std::string_view frame_too_large = "frame larger than the workspace";

// One per shard (or per client engine): the buffers every MessageStream of
// it shares, sized once at start.
class MessageWorkspace {
 public:
  // `message_bytes`: the largest message assembled (at least the decoder's
  // max_message_bytes); `frame_bytes`: room to build one outgoing frame
  // (client: header and the largest payload) or to gather one TLS record
  // (server, OpenSSL's own record layer only).
  MessageWorkspace(BlockPool& pool, size_t message_bytes, size_t frame_bytes)
      : pool_(&pool), message_(message_bytes + message_tail_padding), frame_(frame_bytes) {}

  BlockPool& pool() { return *pool_; }
  // Room for one assembled message (or any other reassembly of the owner's,
  // such as an HTTP head), message_tail_padding bytes excluded.
  std::span<uint8_t> message() { return {message_.data(), message_.size() - message_tail_padding}; }
  std::span<uint8_t> frame() { return frame_; }

 private:
  BlockPool* pool_;
  std::vector<uint8_t> message_;
  std::vector<uint8_t> frame_;
};

// Handler of feed(), with these members:
//   void on_message(std::string_view payload, bool is_text);
//       One whole data message (text: valid UTF-8), followed by at least
//       message_tail_padding readable bytes, valid during the call.
//   void on_ping(std::span<const uint8_t> payload);
//   void on_pong(std::span<const uint8_t> payload);
//   void on_close(uint16_t code, std::string_view reason);
//   void on_error(uint16_t close_code, std::string_view why);   (see ws::Decoder)
//   void on_out_of_buffers();
//       The shard's pool could not hold a message split across reads: the
//       stream has halted; the owner sheds the connection.
//   void on_frame_complete();   (optional, see ws::Decoder)
// Any callback may halt() the stream; feed() then returns at once.
class MessageStream {
 public:
  MessageStream() = default;
  MessageStream(const MessageStream&) = delete;
  MessageStream& operator=(const MessageStream&) = delete;

  // A new connection in `role` (server: reads masked frames, sends
  // unmasked ones). `config` is shared and outlives the stream.
  void start(Role role, const DecoderConfig* config) {
    decoder_ = Decoder(role, config);
    role_ = role;
  }
  // Before the first frame: see Decoder::set_config.
  void set_decoder_config(const DecoderConfig* config) { decoder_.set_config(config); }
  // Drops a message in assembly (the connection is gone).
  void release(BlockPool& pool) { partial_.clear(pool); }
  void halt() { decoder_.halt(); }
  bool failed() const { return decoder_.failed(); }
  bool in_message() const { return decoder_.in_message(); }
  Role role() const { return role_; }

  // Decodes `plaintext` (unmasking in place) and reports to `handler`.
  template <class Handler>
  void feed(std::span<uint8_t> plaintext, Handler& handler, MessageWorkspace& workspace);

  // One whole frame (FIN set) to `transport`. A client passes the frame's
  // 4-byte masking key (RFC 6455 5.3: fresh and unpredictable per frame);
  // a server passes nullptr. An error when the transport refused (its
  // queue is over the cap: a slow consumer) or the frame does not fit the
  // workspace (client).
  std::expected<void, tls::Failure> send(TransportStream& transport, Opcode opcode, std::span<const uint8_t> payload,
                                         MessageWorkspace& workspace, const uint8_t* mask_key = nullptr) {
    std::span<const uint8_t> frame[2] = {{}, payload};
    return send_pieces(transport, opcode, frame, workspace, mask_key);
  }
  // The same with the payload as the concatenation of frame[1..] (any may
  // be empty); frame[0] is the header's place, written here. A server's
  // pieces go to the transport as they are (the payload is never
  // assembled), a client's are masked into the workspace behind the header.
  std::expected<void, tls::Failure> send_pieces(TransportStream& transport, Opcode opcode,
                                                std::span<std::span<const uint8_t>> frame, MessageWorkspace& workspace,
                                                const uint8_t* mask_key = nullptr);

 private:
  template <class Handler>
  struct Assembly;

  Decoder decoder_{Role::server, nullptr};
  ByteQueue partial_;  // a data message split across reads
  Role role_ = Role::server;
  bool partial_is_text_ = false;
};

template <class Handler>
struct MessageStream::Assembly {
  MessageStream& stream;
  Handler& handler;
  MessageWorkspace& workspace;

  void on_frame_complete() {
    if constexpr (requires { handler.on_frame_complete(); }) handler.on_frame_complete();
  }
  void on_message_data(std::span<const uint8_t> chunk, bool is_text, bool first, bool last) {
    if (first && last) {
      // The common case: a whole message inside one read, handed over in place.
      handler.on_message(std::string_view(reinterpret_cast<const char*>(chunk.data()), chunk.size()), is_text);
      return;
    }
    if (first) stream.partial_is_text_ = is_text;
    if (!stream.partial_.append(workspace.pool(), chunk)) {
      stream.partial_.clear(workspace.pool());
      stream.decoder_.halt();
      handler.on_out_of_buffers();
      return;
    }
    if (!last) return;
    const size_t size = stream.partial_.size();
    std::span<uint8_t> room = workspace.message();
    if (size > room.size()) {
      // The decoder bounds a message by max_message_bytes; a workspace
      // smaller than that is a set-up error, shed like exhaustion.
      stream.partial_.clear(workspace.pool());
      stream.decoder_.halt();
      handler.on_out_of_buffers();
      return;
    }
    stream.partial_.copy_to(room);
    std::memset(room.data() + size, 0, message_tail_padding);
    stream.partial_.clear(workspace.pool());
    handler.on_message(std::string_view(reinterpret_cast<const char*>(room.data()), size), stream.partial_is_text_);
  }
  void on_ping(std::span<const uint8_t> payload) { handler.on_ping(payload); }
  void on_pong(std::span<const uint8_t> payload) { handler.on_pong(payload); }
  void on_close(uint16_t code, std::string_view reason) { handler.on_close(code, reason); }
  void on_error(uint16_t code, std::string_view why) { handler.on_error(code, why); }
};

template <class Handler>
void MessageStream::feed(std::span<uint8_t> plaintext, Handler& handler, MessageWorkspace& workspace) {
  Assembly<Handler> assembly{*this, handler, workspace};
  decoder_.feed(plaintext, assembly);
}

}  // namespace mf::ws
