#pragma once

#include <cstdint>
#include <span>

namespace mf::tls {

// The connection's send queue, where TLS output goes. Returns false when over
// its cap: the session then fails with "sink full" and the connection is
// being closed.
struct CiphertextSink {
  virtual bool append_ciphertext(std::span<const uint8_t> bytes) = 0;

 protected:
  ~CiphertextSink() = default;
};

}  // namespace mf::tls
