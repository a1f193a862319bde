#pragma once

#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <expected>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace mf {

// Session-ticket keys shared by every shard of a process: each shard owns its
// own SSL_CTX, yet a ticket issued by one shard must resume on any other, so
// all server contexts of the process install the same TicketKeys.
//
// Tickets are sealed with AES-256-CBC + HMAC-SHA256 (the only construction the
// OpenSSL 3.0 ticket callback supports) and carry the 16-byte key name in
// clear so the server can pick the key. One previous key keeps decrypting after
// rotate(); tickets it opens are renewed under the current key.
//
// Handshakes on any thread read the keys without locks; rotate() may run
// concurrently on another thread.
class TicketKeys {
 public:
  using KeyName = std::array<uint8_t, 16>;

  static std::expected<std::shared_ptr<TicketKeys>, std::string> generate();

  TicketKeys(const TicketKeys&) = delete;
  TicketKeys& operator=(const TicketKeys&) = delete;
  ~TicketKeys();  // erases every key still in memory

  // Makes a fresh random current key; the old current key becomes the previous
  // one and the old previous key stops decrypting. Key bytes no ticket can
  // still need are erased (OPENSSL_cleanse) one rotation later: see
  // published_.
  std::expected<void, std::string> rotate();

  // The names of the keys whose bytes are still in memory, current first
  // (for tests: a retired key's name is absent once its bytes are erased).
  std::vector<KeyName> key_names_in_memory();

  // Name of the key that seals new tickets (it prefixes every ticket).
  KeyName current_key_name() const;

  // Makes `ctx` seal and open tickets with `keys`; `ctx` keeps `keys` alive.
  static std::expected<void, std::string> install(std::shared_ptr<TicketKeys> keys, SSL_CTX* ctx);

 private:
  struct Key {
    KeyName name;
    std::array<uint8_t, 32> aes_key;
    std::array<uint8_t, 32> hmac_key;
  };
  // Immutable once published.
  struct KeySet {
    Key current;
    Key previous;
    bool has_previous;
  };
  friend struct TicketCallback;

  TicketKeys() = default;
  static std::expected<Key, std::string> random_key();

  std::atomic<const KeySet*> live_{nullptr};
  // Every set ever published, retired ones included, lives as long as this
  // object so a reader holding a stale pointer never sees freed memory. A set
  // is ~170 bytes: daily rotation costs ~60 KB a year.
  //
  // Erasure: the set published by rotation N holds keys N and N-1. After
  // rotation N+1, key N-1 opens no ticket; after rotation N+2 no reader can
  // still hold set N either (it loaded the pointer for one ticket callback,
  // a rotation period, at least 60 s, ago), so rotation N+2 erases set N:
  // a key's bytes leave memory one rotation after its last ticket stopped
  // resuming, and no reader ever sees a key change under it.
  std::mutex rotate_mutex_;
  std::vector<std::unique_ptr<KeySet>> published_;
  size_t erased_ = 0;  // published_[0, erased_) are erased
};

// Rotates a process's TicketKeys every `every_s` seconds (0: never), ticked
// by one shard's periodic timer. Both programs rotate this way; each
// rotation or failure is logged in one line.
class TicketKeyRotation {
 public:
  TicketKeyRotation(std::shared_ptr<TicketKeys> keys, uint64_t now_ms)
      : keys_(std::move(keys)), last_rotation_ms_(now_ms) {}

  // Rotates when `every_s` seconds passed since the last rotation (or the
  // start); true when it rotated.
  bool tick(uint64_t now_ms, uint32_t every_s);

 private:
  std::shared_ptr<TicketKeys> keys_;
  uint64_t last_rotation_ms_;
};

}  // namespace mf
