#pragma once
// The start-up proof that the RecordLayer may take a TLS 1.3 connection's
// records over from OpenSSL (docs/security.md, "The TLS 1.3 record layer").
//
// The hand-over counts the first write sequence number from the records
// OpenSSL wrote after it logged the server's traffic secret: an OpenSSL
// internal no API promises. A count too low repeats AES-GCM and ChaCha20
// nonces. So before serving, each process runs in memory, against OpenSSL's
// own client, a TLS 1.3 handshake and exchange for every supported suite
// with 0, 1 and 2 session tickets: data both ways, a KeyUpdate both ways,
// close_notify. Any mismatch leaves the hand-over off for the process, and
// OpenSSL keeps every connection's records.
#include <expected>
#include <string>

#include "common/tls/tls_context.h"

namespace mf::tls {

// Runs the self-test with `config`'s certificates (fresh ticket keys of its
// own) and enables the hand-over process-wide when it passes; on failure the
// hand-over is off and the error names the case that failed. Logs its
// verdict in one line naming the OpenSSL version. Call once at start-up,
// before any shard serves.
std::expected<void, std::string> prove_record_layer(const ServerContextConfig& config);

}  // namespace mf::tls
