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

  // Makes a fresh random current key; the old current key becomes the previous
  // one and the old previous key stops decrypting.
  std::expected<void, std::string> rotate();

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
  std::mutex rotate_mutex_;
  std::vector<std::unique_ptr<const KeySet>> published_;
};

}  // namespace mf
