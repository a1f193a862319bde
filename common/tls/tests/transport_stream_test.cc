#include "common/tls/transport_stream.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <string_view>
#include <vector>

#include "common/tls/tests/transport_stream_pair.h"

namespace mf {
namespace {

using test::as_bytes;
using test::random_bytes;
using test::StreamEnd;

// One lives beside each connection, tens of thousands per shard: the session
// (tls_session_test bounds it), the socket's send queue handle, the wire.
static_assert(sizeof(TransportStream) <= 88);



void start_plain(StreamEnd& a, StreamEnd& b) {
  a.stream.start_plain(a.wire);
  b.stream.start_plain(b.wire);
}

// ---- plain ----

TEST(TransportStreamPlain, BytesPassUnchangedBothWaysInAnyReadSize) {
  StreamEnd a, b;
  start_plain(a, b);
  EXPECT_FALSE(a.stream.secure());
  EXPECT_TRUE(a.stream.handshake_done());
  EXPECT_FALSE(a.stream.resumed());
  EXPECT_EQ(a.stream.alpn(), "");
  const std::vector<uint8_t> message = random_bytes(40000);
  ASSERT_TRUE(a.stream.write(message).has_value());
  EXPECT_EQ(a.wire.bytes, message) << "plain writes reach the wire as they are";
  test::deliver(a, b, 7);
  EXPECT_EQ(b.received, message);
  ASSERT_TRUE(b.stream.write(as_bytes("back")).has_value());
  test::deliver(b, a, 1);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(a.received.data()), a.received.size()), "back");
  EXPECT_EQ(a.handshakes + b.handshakes, 0) << "plain reports no handshake";
}

TEST(TransportStreamPlain, VectoredWriteAppendsEachPieceAndSkipsEmptyOnes) {
  StreamEnd a;
  a.stream.start_plain(a.wire);
  const std::span<const uint8_t> pieces[3] = {as_bytes("head"), {}, as_bytes("-body")};
  ASSERT_TRUE(a.stream.write_vectored(pieces, {}).has_value());
  EXPECT_EQ(std::string(a.wire.bytes.begin(), a.wire.bytes.end()), "head-body");
}

TEST(TransportStreamPlain, AFullWireIsAnErrorValue) {
  StreamEnd a;
  a.stream.start_plain(a.wire);
  a.wire.cap = 3;
  auto written = a.stream.write(as_bytes("four"));
  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().reason, "send queue full");
  const std::span<const uint8_t> pieces[2] = {as_bytes("ab"), as_bytes("cd")};
  EXPECT_FALSE(a.stream.write_vectored(pieces, {}).has_value());
}

TEST(TransportStreamPlain, CloseNotifyWritesNothingAndEmptyReadsDeliverNothing) {
  StreamEnd a;
  a.stream.start_plain(a.wire);
  a.stream.send_close_notify();
  EXPECT_TRUE(a.wire.bytes.empty());
  int calls = 0;
  test::read_into(a, {}, [&](std::span<uint8_t>) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(TransportStream, UnstartedOrResetRefusesWrites) {
  StreamEnd a;
  EXPECT_FALSE(a.stream.started());
  EXPECT_FALSE(a.stream.handshake_done());
  EXPECT_FALSE(a.stream.write(as_bytes("x")).has_value());
  a.stream.start_plain(a.wire);
  EXPECT_TRUE(a.stream.started());
  a.stream.reset();
  EXPECT_FALSE(a.stream.started());
  EXPECT_FALSE(a.stream.write(as_bytes("x")).has_value());
  EXPECT_TRUE(a.wire.bytes.empty());
}

// ---- TLS ----

struct TlsCase {
  int max_version;
  size_t chunk;  // bytes per read: 1 makes every record a run of short reads
};

class TransportStreamTls : public ::testing::TestWithParam<TlsCase> {};

TEST_P(TransportStreamTls, HandshakesAndCarriesDataBothWays) {
  const auto [max_version, chunk] = GetParam();
  StreamEnd client, server;
  test::TlsContexts& contexts = test::TlsContexts::get();
  ASSERT_TRUE(client.stream.start_tls(contexts.client(), tls::Role::client, client.wire, "localhost").has_value());
  ASSERT_TRUE(server.stream.start_tls(contexts.server(), tls::Role::server, server.wire, {}, &contexts.record_pool())
                  .has_value());
  ASSERT_EQ(SSL_set_max_proto_version(client.stream.session().native(), max_version), 1);
  EXPECT_TRUE(client.stream.secure());
  EXPECT_FALSE(client.stream.handshake_done());
  EXPECT_FALSE(client.stream.write(as_bytes("too early")).has_value()) << "no plaintext before the handshake";
  ASSERT_TRUE(client.stream.start_client_handshake().has_value());
  EXPECT_FALSE(client.wire.bytes.empty()) << "no ClientHello";
  test::pump(client, server, chunk);
  ASSERT_FALSE(client.failure) << client.failure->reason;
  ASSERT_FALSE(server.failure) << server.failure->reason;
  EXPECT_EQ(client.handshakes, 1);
  EXPECT_EQ(server.handshakes, 1);
  EXPECT_EQ(client.stream.alpn(), "http/1.1");
  EXPECT_EQ(server.stream.server_name(), "localhost");
  EXPECT_FALSE(server.stream.resumed());
  if (max_version == TLS1_3_VERSION) {
    EXPECT_TRUE(server.stream.session().record_layer_active());
  }

  const std::vector<uint8_t> large = random_bytes(70000);  // several records
  ASSERT_TRUE(client.stream.write(large).has_value());
  EXPECT_NE(client.wire.bytes, large) << "TLS wire bytes are not the plaintext";
  test::deliver(client, server, chunk);
  ASSERT_FALSE(server.failure) << server.failure->reason;
  EXPECT_EQ(server.received, large);

  // A frame's header and payload as one write: gathered into one record.
  std::vector<uint8_t> scratch(16 * 1024);
  const std::span<const uint8_t> pieces[2] = {as_bytes("HEAD"), std::span<const uint8_t>(large).first(1000)};
  ASSERT_TRUE(server.stream.write_vectored(pieces, scratch).has_value());
  test::deliver(server, client, chunk);
  ASSERT_FALSE(client.failure) << client.failure->reason;
  ASSERT_EQ(client.received.size(), 1004u);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(client.received.data()), 4), "HEAD");
  EXPECT_TRUE(std::equal(client.received.begin() + 4, client.received.end(), large.begin()));

  // close_notify: the peer's read says so.
  server.stream.send_close_notify();
  EXPECT_FALSE(server.wire.bytes.empty());
  test::deliver(server, client, chunk);
  EXPECT_TRUE(client.peer_closed);
}

INSTANTIATE_TEST_SUITE_P(Versions, TransportStreamTls,
                         ::testing::Values(TlsCase{TLS1_3_VERSION, test::unlimited}, TlsCase{TLS1_3_VERSION, 1},
                                           TlsCase{TLS1_2_VERSION, test::unlimited}, TlsCase{TLS1_2_VERSION, 1}));

TEST(TransportStreamTlsFailures, GarbageIsAFailureValueAndTheAlertGoesToTheWire) {
  StreamEnd server;
  test::TlsContexts& contexts = test::TlsContexts::get();
  ASSERT_TRUE(server.stream.start_tls(contexts.server(), tls::Role::server, server.wire, {}, &contexts.record_pool())
                  .has_value());
  std::string garbage = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  test::read_into(server, {reinterpret_cast<uint8_t*>(garbage.data()), garbage.size()});
  ASSERT_TRUE(server.failure.has_value());
  EXPECT_FALSE(server.failure->reason.empty());
  EXPECT_FALSE(server.stream.handshake_done());
}

TEST(TransportStreamTlsFailures, AFullWireFailsTheWrite) {
  StreamEnd client, server;
  test::connect_tls(client, server);
  server.wire.cap = 100;
  const std::vector<uint8_t> large = random_bytes(5000);
  EXPECT_FALSE(server.stream.write(large).has_value());
}

TEST(TransportStreamTlsFailures, ResetFreesTheSessionAndAllowsAFreshStart) {
  StreamEnd client, server;
  test::connect_tls(client, server);
  server.stream.reset();
  EXPECT_FALSE(server.stream.secure());
  EXPECT_FALSE(server.stream.started());
  StreamEnd client2;
  server.wire.bytes.clear();
  test::connect_tls(client2, server);
  ASSERT_TRUE(client2.stream.write(as_bytes("again")).has_value());
  server.received.clear();
  test::deliver(client2, server);
  EXPECT_EQ(std::string(server.received.begin(), server.received.end()), "again");
}

}  // namespace
}  // namespace mf
