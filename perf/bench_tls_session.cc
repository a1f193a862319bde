// Server-side TLS costs through mf::tls::Session with in-memory BIOs:
// full and resumed TLS 1.3 handshakes (ECDSA P-256) and the record path,
// through OpenSSL and through the RecordLayer.
#include <benchmark/benchmark.h>

#include <array>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <vector>

#include "common/tls/aes_gcm.h"
#include "common/tls/tests/tls_test_certificates.h"
#include "common/tls/tls_record_layer_self_test.h"
#include "common/tls/tls_session.h"

namespace mf::tls {
namespace {

// Thread CPU time: the server's share stays meaningful on a loaded machine.
double thread_cpu_seconds() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

struct BenchSink final : CiphertextSink {
  bool append_ciphertext(std::span<const uint8_t> chunk) override {
    bytes.insert(bytes.end(), chunk.begin(), chunk.end());
    return true;
  }
  std::vector<uint8_t> bytes;
};

template <class T>
T must(std::expected<T, std::string> made) {
  if (!made) {
    std::fprintf(stderr, "bench set-up failed: %s\n", made.error().c_str());
    std::abort();
  }
  return std::move(*made);
}

std::array<uint8_t, 16384> scratch;

// The shard's pool, for partial records of the servers' RecordLayers.
BlockPool& record_pool() {
  static BlockPool pool(1024, 64);
  return pool;
}
auto discard = [](std::span<uint8_t>) {};

struct Contexts {
  test_certificates::TemporaryDirectory dir;
  Context server;          // established TLS 1.3 sessions move to the RecordLayer
  Context server_openssl;  // the same, with records left to OpenSSL
  Context client;

  static const Contexts& get() {
    static const Contexts contexts;
    return contexts;
  }

 private:
  Contexts() : server(make_server(dir)), server_openssl(make_server(dir)), client(make_client()) {
    SSL_CTX_set_info_callback(server_openssl.native(), nullptr);  // no capture: records stay on OpenSSL
  }

  static Context make_server(const test_certificates::TemporaryDirectory& dir) {
    ServerContextConfig config;
    config.certificates = {
        test_certificates::write_self_signed(dir, "ecdsa", test_certificates::KeyAlgorithm::ecdsa_p256)};
    config.ticket_keys = must(TicketKeys::generate());
    if (auto proven = prove_record_layer(config); !proven) {
      std::fprintf(stderr, "bench set-up failed: %s\n", proven.error().c_str());
      std::abort();
    }
    return must(Context::make_server(config));
  }
  static Context make_client() {
    ClientContextConfig config;
    config.verify_peer = false;
    return must(Context::make_client(config));
  }
};

// Feeds everything `from` produced to `to`; returns the CPU seconds it took.
double deliver(BenchSink& from, Session& to) {
  const double start = thread_cpu_seconds();
  auto progress = to.feed(from.bytes, scratch, discard);
  const double seconds = thread_cpu_seconds() - start;
  if (!progress) {
    std::fprintf(stderr, "handshake failed: %.*s\n", static_cast<int>(progress.error().reason.size()),
                 progress.error().reason.data());
    std::abort();
  }
  from.bytes.clear();
  return seconds;
}

// Runs one TLS 1.3 handshake and returns the server's share of the time
// (session set-up and every feed() on the server).
double handshake(const Contexts& contexts, SSL_SESSION* offered, SSL_SESSION** ticket_out) {
  BenchSink client_sink;
  BenchSink server_sink;
  Session client;
  Session server;
  (void)client.init(contexts.client, Role::client, &client_sink, "localhost");
  if (offered != nullptr) SSL_set_session(client.native(), offered);
  (void)client.start_client_handshake();

  const double start = thread_cpu_seconds();
  (void)server.init(contexts.server, Role::server, &server_sink, {}, &record_pool());
  double server_seconds = thread_cpu_seconds() - start;
  server_seconds += deliver(client_sink, server);  // ClientHello -> ServerHello..Finished
  deliver(server_sink, client);                    // -> client Finished
  server_seconds += deliver(client_sink, server);  // -> NewSessionTicket
  deliver(server_sink, client);
  if (!server.handshake_done() || !client.handshake_done() || (offered != nullptr) != server.resumed()) {
    std::fprintf(stderr, "unexpected handshake outcome\n");
    std::abort();
  }
  if (ticket_out != nullptr) *ticket_out = SSL_get1_session(client.native());
  client.send_close_notify();
  return server_seconds;
}

void BM_ServerFullHandshake(benchmark::State& state) {
  const Contexts& contexts = Contexts::get();
  for (auto _ : state) state.SetIterationTime(handshake(contexts, nullptr, nullptr));
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("TLS 1.3, ECDSA P-256, server CPU only");
}
BENCHMARK(BM_ServerFullHandshake)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_ServerResumedHandshake(benchmark::State& state) {
  const Contexts& contexts = Contexts::get();
  SSL_SESSION* ticket = nullptr;
  handshake(contexts, nullptr, &ticket);
  for (auto _ : state) {
    // TLS 1.3 tickets are single-use on the client: offer a fresh copy.
    SSL_SESSION* offered = SSL_SESSION_dup(ticket);
    state.SetIterationTime(handshake(contexts, offered, nullptr));
    SSL_SESSION_free(offered);
  }
  SSL_SESSION_free(ticket);
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("TLS 1.3 psk_dhe_ke, server CPU only");
}
BENCHMARK(BM_ServerResumedHandshake)->UseManualTime()->Unit(benchmark::kMicrosecond);

// Both sides together, wall time: what one core pays to set up an in-memory pair.
void BM_PairFullHandshake(benchmark::State& state) {
  const Contexts& contexts = Contexts::get();
  for (auto _ : state) benchmark::DoNotOptimize(handshake(contexts, nullptr, nullptr));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PairFullHandshake)->Unit(benchmark::kMicrosecond);

// An established TLS 1.3 pair (AES-128-GCM) on `server_context`.
void connect_pair(const Context& server_context, Session& client, BenchSink& client_sink, Session& server,
                  BenchSink& server_sink) {
  const Contexts& contexts = Contexts::get();
  (void)client.init(contexts.client, Role::client, &client_sink, "localhost");
  SSL_set_ciphersuites(client.native(), "TLS_AES_128_GCM_SHA256");
  (void)server.init(server_context, Role::server, &server_sink, {}, &record_pool());
  (void)client.start_client_handshake();
  for (int i = 0; i < 3; ++i) {
    deliver(client_sink, server);
    deliver(server_sink, client);
  }
  if (std::string_view(SSL_get_cipher_name(client.native())) != "TLS_AES_128_GCM_SHA256") std::abort();
  client_sink.bytes.reserve(64 * 1024);
  server_sink.bytes.reserve(64 * 1024);
}

// One message each way: the server seals, the client opens, the client
// seals, the server opens. range(0) bytes per message; range(1): the server
// side's record path (0 OpenSSL with SSL_MODE_RELEASE_BUFFERS, as before the
// RecordLayer; 1 OpenSSL with its buffers kept; 2 the RecordLayer, what
// servers use). The client is OpenSSL in every case.
void BM_RecordRoundTrip(benchmark::State& state) {
  const Contexts& contexts = Contexts::get();
  const int mode = static_cast<int>(state.range(1));
  BenchSink client_sink;
  BenchSink server_sink;
  Session client;
  Session server;
  connect_pair(mode == 2 ? contexts.server : contexts.server_openssl, client, client_sink, server, server_sink);
  if (server.record_layer_active() != (mode == 2)) std::abort();
  if (mode == 1) {
    SSL_clear_mode(server.native(), SSL_MODE_RELEASE_BUFFERS);
    SSL_clear_mode(client.native(), SSL_MODE_RELEASE_BUFFERS);
  }
  std::vector<uint8_t> message(static_cast<size_t>(state.range(0)), 0x5a);
  size_t received = 0;
  auto count = [&](std::span<uint8_t> plaintext) { received += plaintext.size(); };
  for (auto _ : state) {
    if (!server.write(message)) std::abort();
    if (!client.feed(server_sink.bytes, scratch, count)) std::abort();
    server_sink.bytes.clear();
    if (!client.write(message)) std::abort();
    if (!server.feed(client_sink.bytes, scratch, count)) std::abort();
    client_sink.bytes.clear();
  }
  if (received != 2 * message.size() * state.iterations()) std::abort();
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(2 * state.iterations() * state.range(0));
  state.SetLabel(mode == 2 ? "server: RecordLayer" : mode == 1 ? "server: OpenSSL, buffers kept"
                                                               : "server: OpenSSL, RELEASE_BUFFERS");
}
BENCHMARK(BM_RecordRoundTrip)->ArgsProduct({{200, 1400, 16384}, {0, 1, 2}});

// The RecordLayer alone, both ends: range(1) records of range(0) bytes sealed
// on one, then opened on its mirror. With a batch of 1 the per-thread cipher
// context is re-keyed for every record, as when relaying between
// connections; with 64, twice per batch, which shows what a re-key costs.
// range(2): AES-GCM through aes_gcm.h (1, the default) or OpenSSL's EVP (0).
void BM_RecordLayerSealOpen(benchmark::State& state) {
  set_aes_gcm_engine_enabled(state.range(2) != 0);
  const std::vector<uint8_t> secret_a(32, 0x11), secret_b(32, 0x22);
  RecordLayer sender, receiver;
  if (!sender.install(kTlsAes128GcmSha256, secret_a, secret_b, 0, record_pool()) ||
      !receiver.install(kTlsAes128GcmSha256, secret_b, secret_a, 0, record_pool())) {
    std::abort();
  }
  const int64_t batch = state.range(1);
  BenchSink wire, back;
  wire.bytes.reserve(static_cast<size_t>(batch) * 17 * 1024);
  const std::vector<uint8_t> message(static_cast<size_t>(state.range(0)), 0x5a);
  const std::span<const uint8_t> pieces[] = {message};
  size_t received = 0;
  for (auto _ : state) {
    for (int64_t i = 0; i < batch; ++i) {
      if (!sender.seal(pieces, wire)) std::abort();
    }
    std::span<const uint8_t> in(wire.bytes);
    while (!in.empty()) {
      auto step = receiver.open_next(in, scratch, back);
      if (!step) std::abort();
      received += step->plaintext.size();
    }
    wire.bytes.clear();
  }
  if (received != message.size() * static_cast<size_t>(batch * state.iterations())) std::abort();
  state.SetItemsProcessed(batch * state.iterations());
  state.SetBytesProcessed(batch * state.iterations() * state.range(0));
  set_aes_gcm_engine_enabled(true);
}
BENCHMARK(BM_RecordLayerSealOpen)->ArgsProduct({{200, 1024, 1400, 2048, 4096, 16384}, {1, 64}, {1, 0}});

// aes_gcm.h alone: one record's body of range(0) bytes sealed in place with
// TLS's 5-byte additional data, then opened.
void BM_AesGcmSealOpen(benchmark::State& state) {
  if (!aes_gcm_supported()) {
    state.SkipWithError("no AES-NI/PCLMULQDQ on this CPU");
    return;
  }
  const std::vector<uint8_t> key_bytes(16, 0x33);
  AesGcmKey key;
  if (!aes_gcm_set_key(key, key_bytes)) std::abort();
  const uint8_t nonce[kAesGcmNonceBytes] = {1, 2, 3};
  const uint8_t aad[5] = {23, 3, 3, 1, 0};
  std::vector<uint8_t> body(static_cast<size_t>(state.range(0)), 0x5a);
  uint8_t tag[kAesGcmTagBytes];
  for (auto _ : state) {
    aes_gcm_seal(key, nonce, aad, body.data(), body.data(), body.size(), tag);
    if (!aes_gcm_open(key, nonce, aad, body.data(), body.data(), body.size(), tag)) std::abort();
    benchmark::DoNotOptimize(body.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_AesGcmSealOpen)->Arg(200)->Arg(1024)->Arg(1400)->Arg(2048)->Arg(4096)->Arg(16384);

// What a peer's KeyUpdate costs the receiver besides opening its record: one
// step of the key schedule (RFC 8446 section 7.2) for the suite range(0)
// (0x1301..0x1303). docs/security.md bounds how many a peer gets.
void BM_RecordLayerKeyUpdate(benchmark::State& state) {
  const uint16_t suite = static_cast<uint16_t>(state.range(0));
  const std::vector<uint8_t> secret(suite == kTlsAes256GcmSha384 ? 48 : 32, 0x11);
  RecordLayer layer;
  if (!layer.install(suite, secret, secret, 0, record_pool())) std::abort();
  for (auto _ : state) {
    if (!layer.next_write_key_for_tests()) std::abort();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordLayerKeyUpdate)->Arg(kTlsAes128GcmSha256)->Arg(kTlsAes256GcmSha384)->Arg(kTlsChaCha20Poly1305Sha256);

// A 2-byte WebSocket header plus a 200-byte payload as one record, sealed by
// the server's RecordLayer and opened by an OpenSSL client.
void BM_RecordRoundTripVectored(benchmark::State& state) {
  BenchSink client_sink;
  BenchSink server_sink;
  Session client;
  Session server;
  connect_pair(Contexts::get().server, client, client_sink, server, server_sink);
  const std::array<uint8_t, 2> header = {0x82, 200};
  const std::vector<uint8_t> payload(200, 0x5a);
  const std::span<const uint8_t> frame[] = {header, payload};
  std::array<uint8_t, 16384> gather;
  for (auto _ : state) {
    if (!server.write_vectored(frame, gather)) std::abort();
    if (!client.feed(server_sink.bytes, scratch, discard)) std::abort();
    server_sink.bytes.clear();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * 202);
}
BENCHMARK(BM_RecordRoundTripVectored);

}  // namespace
}  // namespace mf::tls
