#pragma once

#include <openssl/ssl.h>

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/tls/tls_ciphertext_sink.h"
#include "common/tls/tls_context.h"
#include "common/tls/tls_record_layer.h"

namespace mf::tls {

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
//
// A TLS 1.3 server session whose context captures traffic secrets
// (capture_traffic_secrets(), which Context::make_server installs) hands its
// records to a RecordLayer when the handshake completes and frees its SSL:
// about 300 bytes per established connection instead of OpenSSL's ~14 KB.
// TLS 1.2, clients, and suites the layer does not support stay on OpenSSL.
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
  // the server certificate against it. A server's records move to the
  // RecordLayer only with `partial_records`, the shard's capped pool that
  // holds a record split across reads (it must outlive the session).
  std::expected<void, std::string> init(const Context& context, Role role, CiphertextSink* sink,
                                        std::string_view sni_for_client = {}, BlockPool* partial_records = nullptr);

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
  // Null once the records moved to the RecordLayer.
  SSL* native() const { return ssl_; }

  // True once the SSL has been freed and records go through the RecordLayer.
  bool record_layer_active() const { return ssl_ == nullptr && offload_ != nullptr; }

 private:
  friend struct SessionBio;
  friend struct SecretCapture;
  struct Offload;
  struct OffloadDeleter {
    void operator()(Offload* offload) const;
  };

  enum class ReadStatus : uint8_t { plaintext, needs_input, peer_closed };
  struct ReadResult {
    ReadStatus status;
    size_t size;
  };

  // True when the handshake completed in this call.
  std::expected<bool, Failure> advance_handshake();
  std::expected<ReadResult, Failure> read_plaintext(std::span<uint8_t> scratch);
  std::expected<void, Failure> write_record_data(const uint8_t* data, size_t size);
  std::expected<void, Failure> seal(std::span<const std::span<const uint8_t>> pieces);
  Failure take_failure();
  // Moves the records to the RecordLayer if this session qualifies.
  void try_offload();
  std::expected<RecordLayer::Step, Failure> open_next_record(std::span<const uint8_t>& input,
                                                             std::span<uint8_t> scratch);
  template <class OnPlaintext>
  std::expected<Progress, Failure> feed_records(std::span<const uint8_t> ciphertext, std::span<uint8_t> scratch,
                                                Progress progress, OnPlaintext& on_plaintext);

  SSL* ssl_ = nullptr;
  // Traffic secrets captured during the handshake; the RecordLayer after it.
  std::unique_ptr<Offload, OffloadDeleter> offload_;
  CiphertextSink* sink_ = nullptr;
  BlockPool* pool_ = nullptr;  // for the RecordLayer's partial records
  // Ciphertext of the feed() in progress, served to OpenSSL by the BIO.
  const uint8_t* input_ = nullptr;
  uint32_t input_size_ = 0;  // one read's worth
  bool handshake_done_ = false;
  bool sink_failed_ = false;
  // Past its EncryptedExtensions: its handshake steps log keys (SecretCapture).
  bool key_log_armed_ = false;
};

template <class OnPlaintext>
std::expected<Progress, Failure> Session::feed(std::span<const uint8_t> ciphertext, std::span<uint8_t> scratch,
                                               OnPlaintext&& on_plaintext) {
  static_assert(std::is_invocable_v<OnPlaintext&, std::span<uint8_t>>,
                "on_plaintext must accept std::span<uint8_t>");
  assert(!scratch.empty());
  if (ssl_ == nullptr) return feed_records(ciphertext, scratch, Progress::ok, on_plaintext);
  input_ = ciphertext.data();
  assert(ciphertext.size() <= UINT32_MAX);
  input_size_ = static_cast<uint32_t>(ciphertext.size());

  Progress progress = Progress::ok;
  if (!handshake_done_) {
    auto completed = advance_handshake();
    if (!completed) return std::unexpected(completed.error());
    if (!*completed) return Progress::ok;
    progress = Progress::handshake_completed;
    if (ssl_ == nullptr) {
      // What OpenSSL did not read (the client's first request, often) is
      // whole records under the new keys.
      const std::span<const uint8_t> rest(input_, input_size_);
      input_ = nullptr;
      input_size_ = 0;
      return feed_records(rest, scratch, progress, on_plaintext);
    }
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

template <class OnPlaintext>
std::expected<Progress, Failure> Session::feed_records(std::span<const uint8_t> ciphertext, std::span<uint8_t> scratch,
                                                       Progress progress, OnPlaintext& on_plaintext) {
  for (;;) {
    auto step = open_next_record(ciphertext, scratch);
    if (!step) return std::unexpected(step.error());
    switch (step->opened) {
      case RecordLayer::Opened::need_more:
        return progress;
      case RecordLayer::Opened::handled:
        break;
      case RecordLayer::Opened::peer_closed:
        return Progress::peer_closed;
      case RecordLayer::Opened::plaintext:
        if (step->plaintext.data() == scratch.data()) {
          on_plaintext(step->plaintext);
        } else {
          // Larger than the caller's scratch: opened (and authenticated)
          // aside, handed over in scratch-sized chunks.
          for (std::span<uint8_t> rest = step->plaintext; !rest.empty();) {
            const size_t n = std::min(rest.size(), scratch.size());
            std::copy_n(rest.data(), n, scratch.data());
            on_plaintext(scratch.first(n));
            rest = rest.subspan(n);
          }
        }
        break;
    }
  }
}

// Installs the hook (an info callback, which switches the key log on for
// the steps that derive the application traffic secrets) that lets TLS 1.3
// server sessions on `context` move to the RecordLayer after their
// handshake. The context's sessions must all run on one thread.
void capture_traffic_secrets(SSL_CTX* context);

// Process-wide switch of the hand-over to the RecordLayer. Off until the
// start-up self-test passes (prove_record_layer() in
// tls_record_layer_self_test.h): a session whose handshake completes while
// it is off keeps its records on OpenSSL for its whole life.
void set_record_layer_enabled(bool enabled);
bool record_layer_enabled();

#if defined(MF_TEST_HOOKS)
// Added to the first write sequence number of every hand-over, to prove the
// self-test catches a miscount. Compiled only with -Dtest_hooks=true.
void set_record_layer_sequence_skew_for_tests(int64_t skew);
#endif

}  // namespace mf::tls
