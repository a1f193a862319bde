#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace mf::tls {

// The connection's send queue, where TLS output goes. Returns false when over
// its cap: the session then fails with "sink full" and the connection is
// being closed.
struct CiphertextSink {
  virtual bool append_ciphertext(std::span<const uint8_t> bytes) = 0;
  // Room for `n` bytes of ciphertext written in place, in the queue itself,
  // or nullptr (then the writer seals elsewhere and appends). Nothing is
  // queued until commit_ciphertext(n) with the bytes written; a reservation
  // not committed is abandoned by the next one.
  virtual uint8_t* reserve_ciphertext(size_t n) {
    (void)n;
    return nullptr;
  }
  virtual void commit_ciphertext(size_t n) { (void)n; }

 protected:
  ~CiphertextSink() = default;
};

}  // namespace mf::tls
