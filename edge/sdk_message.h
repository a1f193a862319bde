#pragma once
// Parsing of SDK messages (spec section 3): bytes in, a typed request or a
// protocol error out; no IO. The whole message is validated as JSON before
// any field is trusted (simdjson's On-Demand API checks only what it reads,
// so the validator walks every value first), then the fields are read.
// Values the edge forwards untouched (`t` of ping, `data` of signal, `id`)
// are kept as the sender's raw JSON text, never re-serialised.
#include <simdjson.h>

#include <cstdint>
#include <expected>
#include <string_view>

namespace mf::edge {

enum class SdkErrorCode : uint8_t {
  bad_json,
  bad_request,
  unknown_type,
  not_joined,
  peer_not_found,
  peer_id_taken,
  stream_full,
  mesh_disabled,
  rate_limited,
};
std::string_view error_code_text(SdkErrorCode code);

enum class MessageType : uint8_t { join, leave, signal, need_peers, update, stats, ping };

struct SdkRequest {
  MessageType type = MessageType::ping;
  std::string_view id_raw;  // raw JSON of "id" (string <= 64 bytes or number); empty if absent
  std::string_view t_raw;   // ping: raw JSON of "t"; empty if absent
};

struct SdkRejection {
  SdkErrorCode code = SdkErrorCode::bad_json;
  std::string_view message;  // static text
  std::string_view detail;   // e.g. the unknown type's name; may point into the parser
  std::string_view id_raw;   // echoed as `ref` when the message had a valid id
};

// Deepest nesting accepted in a client message (a ping's `t` or a signal's
// `data` may nest; nothing the SDK sends needs more).
inline constexpr size_t max_json_depth = 64;

class SdkMessageParser {
 public:
  SdkMessageParser();
  // `text` must be followed by simdjson::SIMDJSON_PADDING readable bytes.
  // Views in the result are valid until the next parse().
  std::expected<SdkRequest, SdkRejection> parse(std::string_view text);

 private:
  simdjson::ondemand::parser parser_;
};

}  // namespace mf::edge
