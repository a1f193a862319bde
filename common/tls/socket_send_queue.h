#pragma once
// The wire of a reactor socket: where a TransportStream puts the bytes it
// produces (plaintext as is, or TLS records) so the reactor sends them.
// `send` fails when the socket's queue is over its cap
// (ReactorOptions::max_queued_bytes_per_socket): the connection is then a
// slow consumer and its owner closes it.
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/runtime/reactor.h"
#include "common/tls/tls_ciphertext_sink.h"

namespace mf {

class SocketSendQueue final : public tls::CiphertextSink {
 public:
  SocketSendQueue() = default;
  SocketSendQueue(const SocketSendQueue&) = delete;
  SocketSendQueue& operator=(const SocketSendQueue&) = delete;

  void bind(Reactor& reactor, SocketHandle socket) {
    reactor_ = &reactor;
    socket_ = socket;
  }

  bool append_ciphertext(std::span<const uint8_t> bytes) override { return reactor_->send(socket_, bytes); }
  // Records sealed in place in the send queue (docs/architecture.md, "The relay path").
  uint8_t* reserve_ciphertext(size_t n) override { return reactor_->reserve_send(socket_, n); }
  void commit_ciphertext(size_t n) override { reactor_->commit_send(socket_, n); }

 private:
  Reactor* reactor_ = nullptr;
  SocketHandle socket_;
};

}  // namespace mf
