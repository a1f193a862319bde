#pragma once
// TLS 1.3 record protection after the handshake (RFC 8446 section 5), in user
// space: what kernel TLS would do if this machine had it.
//
// Why: an idle OpenSSL 3.0 server session holds about 14 KB of heap (SSL_new
// alone is 8.7 KB) for as long as the connection lives, though after the
// handshake a TLS 1.3 connection needs only two traffic secrets, two keys,
// two IVs and two sequence numbers. Session hands its records to a
// RecordLayer once the handshake is over and frees the SSL: about 300 bytes
// per connection instead.
//
// Pure: bytes in, events out through the caller's CiphertextSink, no IO. The
// AEAD keys live in a per-thread cache, direct-mapped by key, not in the
// connection (a key schedule costs tens of nanoseconds; one per direction per
// connection would cost hundreds of bytes each). AES-GCM records are sealed
// and opened by aes_gcm.h on the CPU's AES and carry-less multiply
// instructions; ChaCha20-Poly1305, and AES-GCM on a CPU without them, by
// OpenSSL's EVP interface.
//
// What it carries after the handshake:
//   - application_data both ways, in records of at most 16 KiB of plaintext;
//   - alerts: close_notify ends the connection gracefully, any other alert
//     fails it;
//   - KeyUpdate (both ways: a peer's request is answered with our own
//     update), at most 32 in a row without application data, each the last
//     message of its record (RFC 8446 section 5.1);
//   - empty application data records, at most 32 in a row (as OpenSSL).
// It is the server's side of a connection: anything else (NewSessionTicket
// or any other handshake message from the client, change_cipher_spec,
// plaintext records, empty handshake or alert records, records over
// 2^14 + 256 bytes, a bad tag) fails the connection, after sending the fatal
// alert RFC 8446 names. docs/security.md ("The TLS 1.3 record layer") has
// the safety argument.
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string_view>

#include "common/runtime/block_pool.h"
#include "common/tls/tls_ciphertext_sink.h"

namespace mf::tls {

// TLS 1.3 cipher suite code points (RFC 8446 appendix B.4) the layer supports.
inline constexpr uint16_t kTlsAes128GcmSha256 = 0x1301;
inline constexpr uint16_t kTlsAes256GcmSha384 = 0x1302;
inline constexpr uint16_t kTlsChaCha20Poly1305Sha256 = 0x1303;

// Largest plaintext in one record, and largest record body (ciphertext,
// inner content type, padding and tag) a peer may send.
inline constexpr size_t kMaxRecordPlaintext = size_t{1} << 14;
inline constexpr size_t kMaxRecordBody = kMaxRecordPlaintext + 256;
inline constexpr size_t kRecordHeaderBytes = 5;

// The body length a record header announces (RFC 8446 section 5.1: type,
// legacy version, then a 16-bit length); `header` holds kRecordHeaderBytes.
inline size_t record_body_length(const uint8_t* header) { return size_t{header[3]} << 8 | header[4]; }

struct RecordFailure {
  std::string_view reason;  // static text, fit for a metrics label
};

// Keyed AEAD contexts each thread keeps for the keys it used last
// (tls_record_layer.cc, CipherWorkspace), made as used: an EVP context of
// about 1.2 KB, or an expanded AES-GCM key of 320 bytes (aes_gcm.h).
inline constexpr size_t kDefaultCipherContextsPerThread = 4096;
// Replaces the calling thread's cache with `slots` empty ones (a power of
// two), before its first record or between records: for tests that make
// keys collide.
void set_cipher_contexts_per_thread(size_t slots);
// Process-wide: AES-GCM records through aes_gcm.h when the CPU allows (on,
// the default) or through EVP (off): for tests that hold both to the same
// records.
void set_aes_gcm_engine_enabled(bool enabled);

// One direction's keys. The secret is kept for KeyUpdate.
struct TrafficKeys {
  uint8_t secret[48];
  uint8_t key[32];
  uint8_t iv[12];
  uint64_t sequence;
  uint64_t key_id;  // unique per installed key in the process: the per-thread cipher cache's tag
};

class RecordLayer {
 public:
  enum class Opened : uint8_t {
    need_more,    // every byte consumed; a partial record is kept
    plaintext,    // `plaintext` holds application data (consumed from input)
    handled,      // a control record was processed (KeyUpdate, ticket); continue
    peer_closed,  // close_notify: the rest of the input is ignored
  };
  struct Step {
    Opened opened;
    std::span<uint8_t> plaintext;
  };

  RecordLayer() = default;
  RecordLayer(const RecordLayer&) = delete;
  RecordLayer& operator=(const RecordLayer&) = delete;
  ~RecordLayer();

  static bool supports(uint16_t cipher_suite);

  // Derives keys and IVs from the current traffic secrets (hash length of
  // the suite: 32 or 48 bytes). `write_sequence` is the number of records
  // already sent under `write_secret` (session tickets, for a server).
  // A record split across reads waits in blocks of `pool` (the shard's
  // capped pool), which must outlive the layer.
  std::expected<void, RecordFailure> install(uint16_t cipher_suite, std::span<const uint8_t> read_secret,
                                             std::span<const uint8_t> write_secret, uint64_t write_sequence,
                                             BlockPool& pool);

  // Consumes bytes from the front of `input` up to the end of the next whole
  // record and opens it. Application data is decrypted into `scratch` when it
  // fits, else into a per-thread buffer (the span is valid until the next
  // call on this thread). A partial record is copied aside into blocks of
  // the pool (at most one record, held only while partial) and completed by
  // later calls; when the pool is exhausted the layer fails (internal_error).
  // A KeyUpdate asking for ours writes it to `sink`. On failure the fatal
  // alert has been written to `sink` and the layer is dead.
  std::expected<Step, RecordFailure> open_next(std::span<const uint8_t>& input, std::span<uint8_t> scratch,
                                               CiphertextSink& sink);

  // Encrypts the concatenation of `pieces` as application_data records of
  // at most 16 KiB plaintext each, into `sink`.
  std::expected<void, RecordFailure> seal(std::span<const std::span<const uint8_t>> pieces, CiphertextSink& sink);

  // Sends a close_notify alert; later seals fail.
  void seal_close_notify(CiphertextSink& sink);

  // For tests and the fuzz target only, to play a hostile peer: seals
  // `content` as one record of any inner content type followed by
  // `zero_padding` zero bytes (RFC 8446 section 5.2), up to the largest
  // body a receiver accepts before decrypting. The server never sends
  // anything but what seal(), seal_close_notify() and its own alerts and
  // KeyUpdates send.
  std::expected<void, RecordFailure> seal_inner_for_tests(uint8_t inner_type, std::span<const uint8_t> content,
                                                          size_t zero_padding, CiphertextSink& sink);
  // For tests: moves the write side to the next traffic secret, as a peer
  // does after sending a KeyUpdate (sealed with seal_inner_for_tests).
  std::expected<void, RecordFailure> next_write_key_for_tests();

  bool installed() const { return suite_ != 0; }
  size_t partial_bytes() const { return partial_.size(); }

 private:
  std::expected<Step, RecordFailure> open_record(std::span<const uint8_t> header, std::span<const uint8_t> body,
                                                 std::span<uint8_t> scratch, CiphertextSink& sink);
  std::expected<void, RecordFailure> seal_record(uint8_t content_type,
                                                 std::span<const std::span<const uint8_t>> pieces,
                                                 size_t first_offset, size_t length, size_t zero_padding,
                                                 CiphertextSink& sink);
  std::expected<Step, RecordFailure> on_handshake_message(std::span<const uint8_t> message, CiphertextSink& sink);
  RecordFailure fail(uint8_t alert, std::string_view reason, CiphertextSink& sink);
  bool derive(TrafficKeys& keys, std::span<const uint8_t> secret);
  bool update(TrafficKeys& keys);
  void release_partial();

  TrafficKeys read_{};
  TrafficKeys write_{};
  uint16_t suite_ = 0;
  uint8_t hash_bytes_ = 0;
  uint8_t key_bytes_ = 0;
  bool dead_ = false;
  bool write_closed_ = false;
  // Records that cost work and carry nothing, since the last application
  // data: each bounded (see kMaxEmptyRecords, kMaxKeyUpdates).
  uint8_t empty_records_ = 0;
  uint8_t key_updates_ = 0;
  // A record split across reads, header included, as it fills: in the
  // shard's capped pool, like partial HTTP heads and WebSocket messages.
  BlockPool* pool_ = nullptr;
  ByteQueue partial_;
  uint32_t partial_need_ = 0;  // header + body of the partial record, once its header is whole
};

}  // namespace mf::tls
