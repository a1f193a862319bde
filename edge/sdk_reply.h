#pragma once
// Edge-to-client messages of spec section 4, written into a caller-owned
// buffer (no allocation). Values the edge forwards (a ping's `t`, a signal's
// `data`, a request's `id` as `ref`) are copied as the sender's raw JSON text;
// the policy and topology objects arrive already rendered.
#include <cstdint>
#include <span>
#include <string_view>

#include "common/json_writer.h"
#include "edge/sdk_message.h"

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

// Each returns the message text (a view into `out`), or an empty view when
// `out` is too small.
std::string_view write_joined(std::span<char> out, const JoinedReply& reply);
std::string_view write_peers(std::span<char> out, std::span<const PeerCandidate> peers, std::string_view ref_raw);
std::string_view write_signal(std::span<char> out, std::string_view from, SignalKind kind, std::string_view data_raw);
std::string_view write_left(std::span<char> out, std::string_view ref_raw);
std::string_view write_pong(std::span<char> out, std::string_view t_raw, std::string_view ref_raw);
std::string_view write_policy(std::span<char> out, std::string_view policy_json);
std::string_view write_reconnect(std::span<char> out, uint32_t after_ms);
std::string_view write_error(std::span<char> out, const ErrorReply& reply);

}  // namespace mf::edge
