#include "edge/sdk_reply.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <array>
#include <string>
#include <vector>

namespace mf::edge {
namespace {

bool valid_json(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::dom::element element;
  return parser.parse(text.data(), text.size(), true).get(element) == simdjson::SUCCESS;
}

// A signal as the walk reads it: kind and `data`, no text of its own to end with.
SignalFields walked(SignalKind kind, std::string_view data) { return SignalFields{"to", kind, data, {}}; }

TEST(SdkReply, Joined) {
  std::array<char, 1024> out;
  JoinedReply r{"p1", "s1", "720p", "edge-a", "0123abcd", 15000, R"({"meshEnabled":true})", R"("q")"};
  auto text = write_joined(out, r);
  EXPECT_EQ(text, R"({"type":"joined","peerId":"p1","streamId":"s1","rendition":"720p","edge":"edge-a",)"
                  R"("session":"0123abcd","heartbeatMs":15000,"policy":{"meshEnabled":true},"ref":"q"})");
  EXPECT_TRUE(valid_json(text));
}

TEST(SdkReply, PeersEmptyAndSeveral) {
  std::array<char, 1024> out;
  EXPECT_EQ(write_peers(out, {}, {}), R"({"type":"peers","peers":[]})");
  PeerCandidate peers[] = {{"a", "720p", R"({"region":"eu"})"}, {"b", "720p", ""}};
  auto text = write_peers(out, peers, "7");
  EXPECT_EQ(text, R"({"type":"peers","peers":[{"peerId":"a","rendition":"720p","topology":{"region":"eu"}},)"
                  R"({"peerId":"b","rendition":"720p","topology":{}}],"ref":7})");
  EXPECT_TRUE(valid_json(text));
}

TEST(SdkReply, SignalCarriesRawData) {
  std::array<char, 256> out;
  auto text = write_signal(out, signal_head("p9"), walked(SignalKind::candidate, R"({"c" : "x\u0041"})"));
  EXPECT_EQ(text, R"({"type":"signal","from":"p9","kind":"candidate","data":{"c" : "x\u0041"}})");
  EXPECT_TRUE(valid_json(text));
}

TEST(SdkReply, SignalHeadEscapesThePeerId) {
  // Up to the peerId's closing quote, which the rest of the signal brings.
  EXPECT_EQ(signal_head("L1a2b3c4d-123"), R"({"type":"signal","from":"L1a2b3c4d-123)");
  EXPECT_EQ(signal_head("a\"b"), R"({"type":"signal","from":"a\"b)");
  EXPECT_EQ(signal_head(""), R"({"type":"signal","from":")");
  // The relay reserves the head, signal_tail_bytes and `data`: exactly
  // what the longest kind needs.
  const std::string longest = signal_head(std::string(128, '\x01'));
  std::vector<char> out(longest.size() + signal_tail_bytes + 1);
  const std::string_view text = write_signal(out, longest, walked(SignalKind::candidate, "1"));
  EXPECT_EQ(text.size(), out.size());
  EXPECT_TRUE(valid_json(text));
  EXPECT_EQ(write_signal(std::span<char>(out.data(), out.size() - 1), longest, walked(SignalKind::candidate, "1")), "");
}

TEST(SdkReply, SignalNamesEachKind) {
  std::array<char, 128> out;
  const auto signal_of = [&out](SignalKind kind) { return write_signal(out, signal_head("a"), walked(kind, "1")); };
  EXPECT_EQ(signal_of(SignalKind::offer), R"({"type":"signal","from":"a","kind":"offer","data":1})");
  EXPECT_EQ(signal_of(SignalKind::answer), R"({"type":"signal","from":"a","kind":"answer","data":1})");
  EXPECT_EQ(signal_of(SignalKind::candidate), R"({"type":"signal","from":"a","kind":"candidate","data":1})");
  EXPECT_EQ(signal_of(SignalKind::bye), R"({"type":"signal","from":"a","kind":"bye","data":1})");
  // Too small a buffer: no text rather than a cut one.
  EXPECT_EQ(write_signal(std::span<char>(out.data(), 40), signal_head("a"), walked(SignalKind::offer, "1")), "");
}

// A compact signal ends its relayed text with its own bytes from `to`'s
// closing quote: the same text as the walked signal's kind and `data`, in
// two pieces (head, the sender's own rest) instead of four.
TEST(SdkReply, ACompactSignalEndsWithItsOwnText) {
  struct Padded {
    std::string bytes;
    explicit Padded(std::string text) : bytes(std::move(text) + std::string(json_reader_padding, '\0')) {}
    std::string_view view() const { return {bytes.data(), bytes.size() - json_reader_padding}; }
  };
  const std::string head = signal_head("sender-1");
  for (const char* kind : {"offer", "answer", "candidate", "bye"}) {
    for (const char* data : {"1", R"({"sdp":"v=0\r\n","n":[1,2.5e3,true,null]})", R"("x")"}) {
      const Padded message(std::string(R"({"type":"signal","to":"peer-2","kind":")") + kind + R"(","data":)" + data + "}");
      SignalFields compact;
      ASSERT_TRUE(read_compact_signal(message.view(), compact)) << message.view();
      const SignalText pieces = signal_text(head, compact);
      ASSERT_EQ(pieces.count, 2u);
      EXPECT_EQ(pieces.pieces[0], head);
      std::array<char, 256> from_compact, from_walk;
      const std::string_view text = write_signal(from_compact, head, compact);
      EXPECT_EQ(text, write_signal(from_walk, head, walked(compact.kind, compact.data_raw)));
      EXPECT_EQ(text, std::string(R"({"type":"signal","from":"sender-1","kind":")") + kind + R"(","data":)" + data + "}");
      EXPECT_TRUE(valid_json(text));
    }
  }
}

TEST(SdkReply, SmallMessages) {
  std::array<char, 256> out;
  EXPECT_EQ(write_left(out, {}), R"({"type":"left"})");
  EXPECT_EQ(write_pong(out, "[1]", "\"r\""), R"({"type":"pong","t":[1],"ref":"r"})");
  EXPECT_EQ(write_pong(out, {}, {}), R"({"type":"pong"})");
  EXPECT_EQ(write_policy(out, R"({"maxPeers":4})"), R"({"type":"policy","policy":{"maxPeers":4}})");
  EXPECT_EQ(write_reconnect(out, 1234), R"({"type":"reconnect","afterMs":1234})");
}

TEST(SdkReply, Errors) {
  std::array<char, 512> out;
  ErrorReply r;
  r.code = SdkErrorCode::peer_not_found;
  r.message = "peer not found";
  r.ref_raw = "3";
  r.to = "p2";
  EXPECT_EQ(write_error(out, r), R"({"type":"error","code":"peer-not-found","message":"peer not found","ref":3,"to":"p2"})");
  ErrorReply full;
  full.code = SdkErrorCode::stream_full;
  full.message = "stream full";
  full.retry_after_ms = 5000;
  EXPECT_EQ(write_error(out, full), R"({"type":"error","code":"stream-full","message":"stream full","retryAfterMs":5000})");
  ErrorReply detailed;
  detailed.code = SdkErrorCode::unknown_type;
  detailed.message = "unknown type";
  detailed.detail = "a\"b";
  auto text = write_error(out, detailed);
  EXPECT_EQ(text, R"({"type":"error","code":"unknown-type","message":"unknown type: a\"b"})");
  EXPECT_TRUE(valid_json(text));
}

// 64 candidates with every string at its maximum and made of control
// characters (escaped to 6 bytes each): the largest `peers` there is fits
// max_peers_reply_bytes and is valid JSON.
TEST(SdkReply, WorstCasePeersFitsTheBound) {
  std::string id(max_identifier_bytes, '\x01');
  Topology topology;
  std::string field(topology_string_capacity, '\x1f');
  topology.region.assign(field);
  topology.country.assign(field);
  topology.network.assign(field);
  topology.asn = INT64_MAX;
  std::vector<char> topology_json(max_topology_json_bytes);
  size_t topology_len = write_topology_json(topology_json, topology);
  ASSERT_GT(topology_len, 3 * 6 * topology_string_capacity);
  std::vector<PeerCandidate> peers(max_peers_limit,
                                   PeerCandidate{id, id, std::string_view(topology_json.data(), topology_len)});
  std::string ref = "\"" + std::string(16 * 1024, 'r') + "\"";
  std::vector<char> out(max_peers_reply_bytes(ref.size()));
  auto text = write_peers(out, peers, ref);
  ASSERT_FALSE(text.empty());
  EXPECT_TRUE(valid_json(text));
  EXPECT_GT(text.size(), max_peers_limit * (2 * 6 * max_identifier_bytes));
}

TEST(SdkReply, TooSmallBufferGivesEmpty) {
  std::array<char, 10> out;
  EXPECT_TRUE(write_reconnect(out, 1).empty());
}

}  // namespace
}  // namespace mf::edge
