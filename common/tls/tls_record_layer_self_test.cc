#include "common/tls/tls_record_layer_self_test.h"

#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "common/runtime/block_pool.h"
#include "common/base/log.h"
#include "common/tls/aes_gcm.h"
#include "common/tls/tls_record_layer.h"
#include "common/tls/tls_session.h"

namespace mf::tls {
namespace {

struct BufferSink final : CiphertextSink {
  bool append_ciphertext(std::span<const uint8_t> bytes) override {
    pending.insert(pending.end(), bytes.begin(), bytes.end());
    return true;
  }
  std::vector<uint8_t> pending;
};

// One end of the in-memory connection.
struct End {
  BufferSink sink;
  Session session;
  std::vector<uint8_t> received;
  bool closed = false;
  std::string_view failure;
};

// Delivers what `from` produced to `to`; false when `to` failed.
bool deliver(End& from, End& to) {
  static thread_local std::array<uint8_t, 16384> scratch;
  std::vector<uint8_t> bytes = std::exchange(from.sink.pending, {});
  if (bytes.empty()) return true;
  auto progress = to.session.feed(bytes, scratch, [&to](std::span<uint8_t> plain) {
    to.received.insert(to.received.end(), plain.begin(), plain.end());
  });
  if (!progress) {
    to.failure = progress.error().reason;
    return false;
  }
  if (*progress == Progress::peer_closed) to.closed = true;
  return true;
}

bool pump(End& client, End& server) {
  while (!client.sink.pending.empty() || !server.sink.pending.empty()) {
    if (!deliver(client, server) || !deliver(server, client)) return false;
  }
  return true;
}

// `message` written by `from` must arrive at `to` unaltered.
std::expected<void, std::string> carry(End& from, End& to, std::span<const uint8_t> message, std::string_view what) {
  to.received.clear();
  if (auto written = from.session.write(message); !written) {
    return std::unexpected(std::string(what) + ": write failed: " + std::string(written.error().reason));
  }
  if (!deliver(from, to)) return std::unexpected(std::string(what) + ": " + std::string(to.failure));
  if (to.received.size() != message.size() ||
      CRYPTO_memcmp(to.received.data(), message.data(), message.size()) != 0) {
    return std::unexpected(std::string(what) + ": received bytes differ from the sent ones");
  }
  return {};
}

std::expected<void, std::string> one_case(const Context& server_context, const Context& client_context,
                                          const char* suite, int tickets) {
  BlockPool pool(64, 0);  // outlives the sessions; a few partial records at most
  End client, server;
  if (auto ok = client.session.init(client_context, Role::client, &client.sink, "self-test.invalid"); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = server.session.init(server_context, Role::server, &server.sink, {}, &pool); !ok) {
    return std::unexpected(ok.error());
  }
  if (SSL_set_ciphersuites(client.session.native(), suite) != 1 ||
      SSL_set_min_proto_version(client.session.native(), TLS1_3_VERSION) != 1 ||
      SSL_set_num_tickets(server.session.native(), static_cast<size_t>(tickets)) != 1) {
    ERR_clear_error();
    return std::unexpected("cannot configure the in-memory client");
  }
  if (auto started = client.session.start_client_handshake(); !started) {
    return std::unexpected(std::string("client: ") + std::string(started.error().reason));
  }
  if (!pump(client, server)) {
    return std::unexpected(std::string("handshake: ") +
                           std::string(client.failure.empty() ? server.failure : client.failure));
  }
  if (!client.session.handshake_done() || !server.session.handshake_done()) {
    return std::unexpected("handshake did not complete");
  }
  if (!server.session.record_layer_active()) return std::unexpected("the record layer did not take the records");

  // A signal-sized record each way (the AES-GCM suites' small records go
  // through aes_gcm.h, large ones through EVP), then more than one record
  // both ways, so sequence numbers move within a flight; then a KeyUpdate
  // each way (the client's asks for the server's).
  std::vector<uint8_t> message(40000);
  for (size_t i = 0; i < message.size(); ++i) message[i] = static_cast<uint8_t>(i * 131 + tickets);
  const std::span<const uint8_t> small(message.data(), 300);
  if (auto ok = carry(client, server, small, "client to server, a small record"); !ok) return ok;
  if (auto ok = carry(server, client, small, "server to client, a small record"); !ok) return ok;
  if (auto ok = carry(client, server, message, "client to server"); !ok) return ok;
  if (auto ok = carry(server, client, message, "server to client"); !ok) return ok;
  if (SSL_key_update(client.session.native(), SSL_KEY_UPDATE_REQUESTED) != 1) {
    ERR_clear_error();
    return std::unexpected("client KeyUpdate refused");
  }
  if (auto ok = carry(client, server, message, "client to server after KeyUpdate"); !ok) return ok;
  if (auto ok = carry(server, client, message, "server to client after KeyUpdate"); !ok) return ok;
  if (auto ok = carry(server, client, small, "server to client after KeyUpdate, a small record"); !ok) return ok;
  server.session.send_close_notify();
  if (!deliver(server, client) || !client.closed) return std::unexpected("close_notify did not reach the client");
  return {};
}

}  // namespace

std::expected<void, std::string> prove_record_layer(const ServerContextConfig& config) {
#if defined(MF_TEST_HOOKS)
  // MF_TEST_TLS_SEQUENCE_SKEW=N miscounts every hand-over by N records: the
  // self-test must then fail (tests/system/test_tls_record_layer.py).
  if (const char* skew = std::getenv("MF_TEST_TLS_SEQUENCE_SKEW")) {
    set_record_layer_sequence_skew_for_tests(std::strtoll(skew, nullptr, 10));
  }
#endif
  set_record_layer_enabled(true);
  auto verdict = [&]() -> std::expected<void, std::string> {
    auto keys = TicketKeys::generate();
    if (!keys) return std::unexpected(keys.error());
    ServerContextConfig server_config = config;
    server_config.ticket_keys = *keys;
    server_config.alpn = {};
    auto server_context = Context::make_server(server_config);
    if (!server_context) return std::unexpected(server_context.error());
    ClientContextConfig client_config;
    client_config.verify_peer = false;  // its own server, in memory
    client_config.alpn = {};
    auto client_context = Context::make_client(client_config);
    if (!client_context) return std::unexpected(client_context.error());
    for (const char* suite : {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}) {
      for (int tickets = 0; tickets <= 2; ++tickets) {
        if (auto ok = one_case(*server_context, *client_context, suite, tickets); !ok) {
          return std::unexpected(std::string(suite) + " with " + std::to_string(tickets) +
                                 " session ticket(s): " + ok.error());
        }
      }
    }
    return {};
  }();
  ERR_clear_error();
  set_record_layer_enabled(verdict.has_value());
  if (verdict) {
    MF_LOG_INFO("tls: record layer self-test passed with {}: established TLS 1.3 connections leave OpenSSL; "
                "{}",
                OpenSSL_version(OPENSSL_VERSION),
                aes_gcm_supported() ? "AES-GCM records up to 2 KiB on AES-NI and PCLMULQDQ"
                                    : "AES-GCM through EVP (no AES-NI or PCLMULQDQ, or the known answers failed)");
  } else {
    MF_LOG_WARN("tls: record layer self-test failed with {} ({}): OpenSSL keeps every connection's records",
                OpenSSL_version(OPENSSL_VERSION), verdict.error());
  }
  return verdict;
}

}  // namespace mf::tls
