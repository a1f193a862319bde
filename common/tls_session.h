#pragma once

#include <openssl/ssl.h>

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/tls_context.h"

namespace mf::tls {

// The connection's send queue. Returns false when over its cap: the session
// then fails with "sink full" and the connection is being closed.
struct CiphertextSink {
  virtual bool append_ciphertext(std::span<const uint8_t> bytes) = 0;

 protected:
  ~CiphertextSink() = default;
};

enum class Role : uint8_t { server, client };

enum class Progress : uint8_t {
  ok,
  handshake_completed,  // just now, in this call
  peer_closed,          // close_notify received; takes precedence over handshake_completed
};

struct Failure {
  std::string_view reason;    // static text, fit for a metrics label
  unsigned long ssl_error;    // first OpenSSL error code (ERR_get_error), 0 if none
};

// One TLS connection whose IO belongs to the reactor: received ciphertext goes
// in through feed(), produced ciphertext leaves through the CiphertextSink
// during feed(), write(), start_client_handshake() and send_close_notify().
// The session makes no syscalls and allocates nothing itself after init()
// (OpenSSL, with SSL_MODE_RELEASE_BUFFERS, allocates its record buffers while
// records are in flight and frees them when idle).
//
// Every call leaves the thread's OpenSSL error queue empty, so one
// connection's errors never show up in another's on the same shard.
// After any Failure the session is dead: destroy it and close the connection.
class Session {
 public:
  Session() = default;
  Session(Session&& other) noexcept;
  Session& operator=(Session&& other) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  // `sink` must outlive the session. A client sends `sni_for_client` as SNI
  // (unless it is an IP literal) and, when the context verifies peers, checks
  // the server certificate against it.
  std::expected<void, std::string> init(const Context& context, Role role, CiphertextSink* sink,
                                        std::string_view sni_for_client = {});

  // Client only: emits the ClientHello into the sink.
  std::expected<void, Failure> start_client_handshake();

  // Consumes all of `ciphertext`: advances the handshake, then decrypts into
  // `scratch` and calls on_plaintext(std::span<uint8_t>) for each chunk (at
  // most scratch.size() bytes; 16 KiB holds a whole record). Chunks are
  // mutable so the caller can unmask in place. on_plaintext may call write()
  // or send_close_notify(). Partial records are kept by OpenSSL until the
  // rest arrives.
  template <class OnPlaintext>
  std::expected<Progress, Failure> feed(std::span<const uint8_t> ciphertext, std::span<uint8_t> scratch,
                                        OnPlaintext&& on_plaintext);

  // Encrypts all of `plaintext` (one record per 16 KiB) into the sink.
  // Requires a completed handshake.
  std::expected<void, Failure> write(std::span<const uint8_t> plaintext);

  // Encrypts the concatenation of `pieces` as if written at once, so a frame
  // header and its payload share one record: pieces are gathered into
  // `scratch` (which must not overlap them) and written per scratch-full.
  std::expected<void, Failure> write_vectored(std::span<const std::span<const uint8_t>> pieces,
                                              std::span<uint8_t> scratch);

  // Sends close_notify without waiting for the peer's. No-op before the
  // handshake completes.
  void send_close_notify();

  bool handshake_done() const { return handshake_done_; }
  std::string_view alpn() const;         // empty when none was negotiated
  std::string_view server_name() const;  // SNI the client sent (server) or set (client)
  bool resumed() const;
  int protocol_version() const;          // TLS1_2_VERSION, TLS1_3_VERSION

  // For tests and advanced use, e.g. SSL_set_session() before a client
  // starts, SSL_get1_session() after it. OpenSSL marks a client's session
  // unresumable if the connection is destroyed without send_close_notify().
  SSL* native() const { return ssl_; }

 private:
  friend struct SessionBio;

  enum class ReadStatus : uint8_t { plaintext, needs_input, peer_closed };
  struct ReadResult {
    ReadStatus status;
    size_t size;
  };

  // True when the handshake completed in this call.
  std::expected<bool, Failure> advance_handshake();
  std::expected<ReadResult, Failure> read_plaintext(std::span<uint8_t> scratch);
  std::expected<void, Failure> write_record_data(const uint8_t* data, size_t size);
  Failure take_failure();

  SSL* ssl_ = nullptr;
  CiphertextSink* sink_ = nullptr;
  // Ciphertext of the feed() in progress, served to OpenSSL by the BIO.
  const uint8_t* input_ = nullptr;
  size_t input_size_ = 0;
  bool handshake_done_ = false;
  bool sink_failed_ = false;
};

template <class OnPlaintext>
std::expected<Progress, Failure> Session::feed(std::span<const uint8_t> ciphertext, std::span<uint8_t> scratch,
                                               OnPlaintext&& on_plaintext) {
  static_assert(std::is_invocable_v<OnPlaintext&, std::span<uint8_t>>,
                "on_plaintext must accept std::span<uint8_t>");
  assert(ssl_ != nullptr && !scratch.empty());
  input_ = ciphertext.data();
  input_size_ = ciphertext.size();

  Progress progress = Progress::ok;
  if (!handshake_done_) {
    auto completed = advance_handshake();
    if (!completed) return std::unexpected(completed.error());
    if (!*completed) return Progress::ok;
    progress = Progress::handshake_completed;
  }
  for (;;) {
    auto read = read_plaintext(scratch);
    if (!read) return std::unexpected(read.error());
    switch (read->status) {
      case ReadStatus::plaintext:
        on_plaintext(scratch.first(read->size));
        break;
      case ReadStatus::needs_input:
        return progress;
      case ReadStatus::peer_closed:
        return Progress::peer_closed;
    }
  }
}

}  // namespace mf::tls
