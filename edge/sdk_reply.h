#pragma once
// Edge-to-client messages of docs/protocol.md section 4, written into a caller-owned
// buffer (no allocation). Values the edge forwards (a ping's `t`, a signal's
// `data`, a request's `id` as `ref`) are copied as the sender's raw JSON text;
// the policy and topology objects arrive already rendered.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/base/json_writer.h"
#include "edge/sdk_message.h"
#include "edge/swarm.h"

namespace mf::edge {

struct JoinedReply {
  std::string_view peer_id, stream_id, rendition, edge_id, session;
  uint32_t heartbeat_ms = 0;
  std::string_view policy_json;  // the effective policy object
  std::string_view ref_raw;
};

struct PeerCandidate {
  std::string_view peer_id, rendition;
  std::string_view topology_json;  // "{}" when none was declared
};

struct ErrorReply {
  SdkErrorCode code = SdkErrorCode::bad_request;
  std::string_view message;
  std::string_view detail;  // appended to message as ": detail"
  std::string_view ref_raw;
  std::string_view to;          // signal errors: the target
  int64_t retry_after_ms = -1;  // stream-full
};

// The longest `peers` write_peers can produce from candidates the edge
// holds: max_peers_limit of them, every peerId and rendition at
// max_identifier_bytes with every byte escaped to 6 (\u00XX: identifiers
// never need it, but candidates read from Valkey are bounded, not trusted),
// each topology at max_topology_json_bytes, plus a raw `ref` of `ref_bytes`.
// A buffer this large never refuses a `peers`.
constexpr size_t max_peers_reply_bytes(size_t ref_bytes) {
  constexpr size_t escaped_string = 2 + 6 * max_identifier_bytes;
  constexpr size_t candidate = sizeof(R"(,{"peerId":)") + escaped_string + sizeof(R"(,"rendition":)") + escaped_string +
                               sizeof(R"(,"topology":)") + max_topology_json_bytes + 1;
  return sizeof(R"({"type":"peers","peers":[])") + max_peers_limit * candidate + sizeof(R"(,"ref":)") + ref_bytes + 2;
}

// Each returns the message text (a view into `out`), or an empty view when
// `out` is too small.
std::string_view write_joined(std::span<char> out, const JoinedReply& reply);
std::string_view write_peers(std::span<char> out, std::span<const PeerCandidate> peers, std::string_view ref_raw);
// What every signal relayed from one peer starts with: `{"type":"signal",
// "from":` and its peerId as a JSON string without the closing quote (a
// compact signal's own text goes on from there: SignalFields::kind_to_end).
// Rendered once, when the peer joins, and kept with its session
// (docs/architecture.md, "The relay path").
std::string signal_head(std::string_view from);
// The most that write_signal() adds to the head and `data`.
inline constexpr size_t signal_tail_bytes = sizeof(R"(","kind":"candidate","data":})") - 1;
// A signal relayed from the peer whose head (signal_head()) is `head`: the
// pieces it is made of, in order, for a sender that seals them as they are.
// The compact signal's own kind_to_end when it has one, else the kind and
// `data` as the sender wrote it.
struct SignalText {
  std::array<std::string_view, 4> pieces;
  size_t count = 0;
  std::span<const std::string_view> view() const { return {pieces.data(), count}; }
};
// From `from`'s closing quote up to `data`'s value, one piece per kind.
inline std::string_view kind_and_data_key(SignalKind kind) {
  switch (kind) {
    case SignalKind::offer: return R"(","kind":"offer","data":)";
    case SignalKind::answer: return R"(","kind":"answer","data":)";
    case SignalKind::candidate: return R"(","kind":"candidate","data":)";
    case SignalKind::bye: return R"(","kind":"bye","data":)";
  }
  return R"(","kind":"offer","data":)";
}
// Inline: the relay builds one per signal.
inline SignalText signal_text(std::string_view head, const SignalFields& signal) {
  if (!signal.kind_to_end.empty()) return {{head, signal.kind_to_end}, 2};
  return {{head, kind_and_data_key(signal.kind), signal.data_raw, "}"}, 4};
}
// The same text copied into `out`.
std::string_view write_signal(std::span<char> out, std::string_view head, const SignalFields& signal);
std::string_view write_left(std::span<char> out, std::string_view ref_raw);
std::string_view write_pong(std::span<char> out, std::string_view t_raw, std::string_view ref_raw);
std::string_view write_policy(std::span<char> out, std::string_view policy_json);
std::string_view write_reconnect(std::span<char> out, uint32_t after_ms);
std::string_view write_error(std::span<char> out, const ErrorReply& reply);

}  // namespace mf::edge
