#pragma once
// Two TransportStreams joined in memory, for unit tests of the stream and of
// what runs on it: each side's wire is a vector (with an optional cap, to
// play a send queue that is full), and pump() carries the bytes across in
// chunks of a chosen size, so every short read is exercised. TLS uses
// certificates made at test time (tls_test_certificates.h).
#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/runtime/block_pool.h"
#include "common/tls/tests/tls_test_certificates.h"
#include "common/tls/tls_record_layer_self_test.h"
#include "common/tls/transport_stream.h"

namespace mf::test {

inline constexpr size_t unlimited = std::numeric_limits<size_t>::max();

inline std::span<const uint8_t> as_bytes(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

inline std::vector<uint8_t> random_bytes(size_t size) {
  std::vector<uint8_t> bytes(size);
  EXPECT_EQ(RAND_bytes(bytes.data(), static_cast<int>(size)), 1);
  return bytes;
}

struct VectorWire final : tls::CiphertextSink {
  bool append_ciphertext(std::span<const uint8_t> chunk) override {
    if (bytes.size() + chunk.size() > cap) return false;
    bytes.insert(bytes.end(), chunk.begin(), chunk.end());
    return true;
  }
  std::vector<uint8_t> bytes;  // produced, not yet delivered
  size_t cap = unlimited;
};

// What one end of a test connection has read so far.
struct ReadLog {
  std::vector<uint8_t> received;
  int handshakes = 0;  // Progress::handshake_completed reports
  bool peer_closed = false;
  std::optional<tls::Failure> failure;
};

// One end: its wire, its stream, and what it read.
struct StreamEnd : ReadLog {
  StreamEnd() = default;
  StreamEnd(const StreamEnd&) = delete;
  StreamEnd& operator=(const StreamEnd&) = delete;

  VectorWire wire;
  TransportStream stream;
};

// Reads `bytes` into `to`: plaintext collects in `received`, unless
// `on_plaintext` takes it.
template <class OnPlaintext>
void read_into(StreamEnd& to, std::span<uint8_t> bytes, OnPlaintext&& on_plaintext) {
  static std::vector<uint8_t> scratch(16 * 1024);
  auto progress = to.stream.read(bytes, scratch, on_plaintext);
  if (!progress) to.failure = progress.error();
  else if (*progress == tls::Progress::handshake_completed) ++to.handshakes;
  else if (*progress == tls::Progress::peer_closed) to.peer_closed = true;
}
inline void read_into(StreamEnd& to, std::span<uint8_t> bytes) {
  read_into(to, bytes, [&](std::span<uint8_t> plain) { to.received.insert(to.received.end(), plain.begin(), plain.end()); });
}

// Moves what `from` wrote into `to`, `chunk` bytes per read. Returns whether
// anything was in flight.
template <class OnPlaintext>
bool deliver(StreamEnd& from, StreamEnd& to, size_t chunk, OnPlaintext&& on_plaintext) {
  std::vector<uint8_t> bytes = std::exchange(from.wire.bytes, {});
  for (size_t offset = 0; offset < bytes.size() && !to.failure; offset += std::min(chunk, bytes.size())) {
    read_into(to, std::span(bytes).subspan(offset, std::min(chunk, bytes.size() - offset)), on_plaintext);
  }
  return !bytes.empty();
}
inline bool deliver(StreamEnd& from, StreamEnd& to, size_t chunk = unlimited) {
  return deliver(from, to, chunk, [&](std::span<uint8_t> plain) {
    to.received.insert(to.received.end(), plain.begin(), plain.end());
  });
}

inline void pump(StreamEnd& client, StreamEnd& server, size_t chunk = unlimited) {
  for (;;) {
    const bool to_server = deliver(client, server, chunk);
    const bool to_client = deliver(server, client, chunk);
    if (!to_server && !to_client) return;
  }
}

// A server and a client context trusting each other, made once per process
// with the hand-over to the RecordLayer proven first, as at start-up.
class TlsContexts {
 public:
  static TlsContexts& get() {
    static TlsContexts contexts;
    return contexts;
  }
  const tls::Context& server() const { return *server_; }
  const tls::Context& client() const { return *client_; }
  BlockPool& record_pool() { return record_pool_; }

 private:
  TlsContexts() {
    using namespace tls::test_certificates;
    const tls::CertificateKeyPair pair = write_self_signed(dir_, "server", KeyAlgorithm::ecdsa_p256);
    tls::ServerContextConfig server_config;
    server_config.certificates = {pair};
    if (auto proven = tls::prove_record_layer(server_config); !proven) die(proven.error());
    auto server = tls::Context::make_server(server_config);
    if (!server) die(server.error());
    server_.emplace(std::move(*server));
    tls::ClientContextConfig client_config;
    client_config.ca_file = pair.certificate_chain_path;
    auto client = tls::Context::make_client(client_config);
    if (!client) die(client.error());
    client_.emplace(std::move(*client));
  }
  [[noreturn]] static void die(const std::string& why) {
    std::fprintf(stderr, "test set-up failed: %s\n", why.c_str());
    std::abort();
  }

  tls::test_certificates::TemporaryDirectory dir_;
  std::optional<tls::Context> server_;
  std::optional<tls::Context> client_;
  BlockPool record_pool_{1024, 64};
};

// Starts both ends over TLS and runs the handshake in `chunk`-byte reads.
inline void connect_tls(StreamEnd& client, StreamEnd& server, size_t chunk = unlimited) {
  TlsContexts& contexts = TlsContexts::get();
  ASSERT_TRUE(client.stream.start_tls(contexts.client(), tls::Role::client, client.wire, "localhost").has_value());
  ASSERT_TRUE(
      server.stream.start_tls(contexts.server(), tls::Role::server, server.wire, {}, &contexts.record_pool()).has_value());
  ASSERT_TRUE(client.stream.start_client_handshake().has_value());
  pump(client, server, chunk);
  ASSERT_FALSE(client.failure) << client.failure->reason;
  ASSERT_FALSE(server.failure) << server.failure->reason;
  ASSERT_TRUE(client.stream.handshake_done());
  ASSERT_TRUE(server.stream.handshake_done());
}

}  // namespace mf::test
