#pragma once
// One connection's byte stream as its owner sees it, plain or TLS behind the
// same calls (docs/architecture.md, "The transport stream"): what the socket
// received goes in through read() and comes out as plaintext; plaintext goes
// in through write() and leaves as wire bytes (records under TLS, the same
// bytes when plain) into the connection's wire: the reactor socket's send
// queue (the stream keeps the SocketSendQueue that reaches it), or any
// CiphertextSink (a vector in tests). The owner keeps
// its protocol (HTTP head, WebSocket frames, a tunnel's bytes) and its
// phases; the stream keeps only the handshake state and the close alert.
//
// It makes no syscall, throws nothing, and allocates nothing after start
// (what the TLS session allocates is said in tls_session.h). Errors are
// values: a read or write that fails leaves the stream dead, and its owner
// closes the connection (graceful after a TLS failure, so the fatal alert
// the session queued leaves before the FIN).
#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "common/runtime/block_pool.h"
#include "common/runtime/reactor.h"
#include "common/tls/socket_send_queue.h"
#include "common/tls/tls_ciphertext_sink.h"
#include "common/tls/tls_context.h"
#include "common/tls/tls_session.h"

namespace mf {

class TransportStream {
 public:
  TransportStream() = default;
  TransportStream(const TransportStream&) = delete;
  TransportStream& operator=(const TransportStream&) = delete;

  // Plain: bytes pass through unchanged; the "handshake" is done at once.
  // The wire is `socket`'s send queue in `reactor`.
  void start_plain(Reactor& reactor, SocketHandle socket);
  // TLS in `role` over `socket`; see tls::Session::init for
  // `sni_for_client` and `partial_records`.
  std::expected<void, std::string> start_tls(Reactor& reactor, SocketHandle socket, const tls::Context& context,
                                             tls::Role role, std::string_view sni_for_client = {},
                                             BlockPool* partial_records = nullptr);
  // The same over any wire, which must outlive the stream (tests).
  void start_plain(tls::CiphertextSink& wire);
  std::expected<void, std::string> start_tls(const tls::Context& context, tls::Role role, tls::CiphertextSink& wire,
                                             std::string_view sni_for_client = {},
                                             BlockPool* partial_records = nullptr);
  // A TLS client's first flight (the ClientHello) into the wire; plain: nothing.
  std::expected<void, tls::Failure> start_client_handshake();
  // Back to unstarted; frees the TLS session (the slot's next connection
  // starts afresh).
  void reset();

  // Consumes all of `received`: plain, hands it over as is; TLS, advances the
  // handshake and decrypts into `scratch`, calling on_plaintext(std::span<uint8_t>)
  // per chunk of at most scratch.size() bytes (mutable: the owner may unmask
  // in place). Progress says whether the handshake completed in this call or
  // the peer sent close_notify (then nothing more will come).
  template <class OnPlaintext>
  std::expected<tls::Progress, tls::Failure> read(std::span<uint8_t> received, std::span<uint8_t> scratch,
                                                  OnPlaintext&& on_plaintext);

  // All of `plaintext` to the wire (TLS: requires a completed handshake).
  // An error when the wire refused (over its cap) or TLS failed.
  std::expected<void, tls::Failure> write(std::span<const uint8_t> plaintext);
  // The concatenation of `pieces` as one write: plain, each piece is appended
  // (nothing is assembled); TLS, sealed together into records, gathered in
  // `scratch` only where OpenSSL's own record layer needs one buffer.
  std::expected<void, tls::Failure> write_vectored(std::span<const std::span<const uint8_t>> pieces,
                                                   std::span<uint8_t> scratch);
  // TLS: close_notify into the wire (no-op before the handshake completes).
  // Plain: nothing; the FIN says it.
  void send_close_notify();

  bool secure() const { return secure_; }
  bool started() const { return wire_ != nullptr; }
  // Plain: true once started.
  bool handshake_done() const { return secure_ ? session_.handshake_done() : wire_ != nullptr; }
  bool resumed() const { return secure_ && session_.resumed(); }
  std::string_view alpn() const { return secure_ ? session_.alpn() : std::string_view{}; }
  std::string_view server_name() const { return secure_ ? session_.server_name() : std::string_view{}; }
  // The TLS session itself (tests, SSL_set_session for clients).
  tls::Session& session() { return session_; }
  const tls::Session& session() const { return session_; }

 private:
  tls::Session session_;
  SocketSendQueue socket_wire_;
  tls::CiphertextSink* wire_ = nullptr;
  bool secure_ = false;
};

template <class OnPlaintext>
std::expected<tls::Progress, tls::Failure> TransportStream::read(std::span<uint8_t> received,
                                                                 std::span<uint8_t> scratch,
                                                                 OnPlaintext&& on_plaintext) {
  if (!secure_) {
    if (!received.empty()) on_plaintext(received);
    return tls::Progress::ok;
  }
  return session_.feed(received, scratch, std::forward<OnPlaintext>(on_plaintext));
}

}  // namespace mf
