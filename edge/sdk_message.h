#pragma once
// Parsing of SDK messages (docs/protocol.md section 3): bytes in, a typed request or a
// protocol error out; no IO. One walk over the bytes (edge/json_reader.h)
// validates the whole message as JSON and reads the fields as it passes
// them; a field's value counts only if the whole message turns out valid
// (docs/architecture.md, "The relay path"). Values the edge forwards
// untouched (`t` of ping, `data` of signal, `id`) are kept as the sender's
// raw JSON text, never re-serialised.
//
// Callers pad the text with simdjson::SIMDJSON_PADDING readable bytes (the
// WebSocket workspace's zeroed tail), which covers what the reader needs.
#include <simdjson.h>

#include "edge/json_reader.h"

#include <array>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <span>
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

enum class SignalKind : uint8_t { offer, answer, candidate, bye };
std::string_view signal_kind_text(SignalKind kind);

// Upper bounds the edge enforces beyond docs/protocol.md section 2 (documented in
// docs/protocol.md): declared topology strings and `session`.
inline constexpr size_t max_identifier_bytes = 128;
inline constexpr size_t max_topology_string_bytes = 64;
inline constexpr size_t max_session_bytes = 128;
inline constexpr size_t max_exclude = 64;
inline constexpr uint32_t max_peers_limit = 64;
// A longer text is bad-json whatever it holds (the limit of the simdjson
// parser the edge used before, kept so that nothing accepted changes;
// max_message_bytes, docs/protocol.md section 1, is 16 KiB by default).
inline constexpr size_t max_sdk_message_text_bytes = 1'000'000;

// Optional fields carry a presence flag; views point into the message or the
// parser's string buffer and live until the next parse().
struct CapsFields {
  bool has_max_peers = false;
  bool has_upload_kbps = false;
  bool has_accepting_peers = false;
  uint32_t max_peers = 0;
  uint64_t upload_kbps = 0;
  bool accepting_peers = true;
  bool operator==(const CapsFields&) const = default;
};

struct TopologyFields {
  bool present = false;  // the object was given (possibly empty)
  bool has_asn = false;
  int64_t asn = 0;
  std::string_view region, country, network;  // empty: absent
  bool operator==(const TopologyFields&) const = default;
};

// A signal's members, views into the message: what the relay needs of it,
// whether read_compact_signal() or the walk read it.
struct SignalFields {
  std::string_view to;
  SignalKind kind = SignalKind::offer;
  std::string_view data_raw;
  // read_compact_signal() only: the message's own text from `to`'s closing
  // quote to its end, `","kind":"…","data":…}`, byte for byte what a
  // relayed signal ends with after its sender's peerId (edge/sdk_reply.h,
  // signal_text()); empty when the signal was walked.
  std::string_view kind_to_end;
};

struct SdkRequest {
  MessageType type = MessageType::ping;
  std::string_view id_raw;  // raw JSON of "id" (string <= 64 bytes or number); empty if absent
  std::string_view t_raw;   // ping: raw JSON of "t"; empty if absent

  // join
  std::string_view stream_id, rendition, peer_id, session;
  bool has_session = false;
  bool has_caps = false;
  CapsFields caps;
  TopologyFields topology;

  // signal: `to`, `kind` and `data` (the sender's exact JSON text)
  SignalFields signal;

  // need-peers
  bool has_count = false;
  uint32_t count = 0;
  // At most max_exclude peerIds, held by the parser (SdkMessageParser):
  // the request stays small enough to build on the stack per message.
  std::span<const std::string_view> exclude;

  // stats (connectedProposals: this edge's extension, docs/protocol.md)
  bool has_p2p_bytes = false, has_cdn_bytes = false, has_uploaded_bytes = false, has_connected_proposals = false;
  uint64_t p2p_bytes = 0, cdn_bytes = 0, uploaded_bytes = 0, connected_proposals = 0;
};

struct SdkRejection {
  SdkErrorCode code = SdkErrorCode::bad_json;
  std::string_view message;  // static text; for bad-request it names the field
  std::string_view detail;   // e.g. the unknown type's name; may point into the parser
  std::string_view id_raw;   // echoed as `ref` when the message had a valid id
};

// docs/protocol.md section 2: 1 to 128 bytes of [A-Za-z0-9._:-].
bool is_valid_identifier(std::string_view text);

// The string values of one message, escapes resolved: a value without
// escapes is a view into the message; one with escapes is unescaped into a
// buffer that grows to the largest message that had one and is kept (no
// allocation once that message has been seen).
class UnescapedStrings {
 public:
  void reset(size_t text_size) {
    text_size_ = text_size;
    used_ = 0;
    out_of_memory_ = false;
  }
  // False when `value` is not a string, or (out_of_memory()) no room could be had.
  bool read(const JsonValue& value, std::string_view& out) {
    if (value.type != JsonType::string) return false;
    if (!value.string.escaped) {
      out = value.string.body;
      return true;
    }
    return unescape(value.string, out);
  }
  bool out_of_memory() const { return out_of_memory_; }

 private:
  bool unescape(const JsonString& string, std::string_view& out);

  std::unique_ptr<char[]> buffer_;
  size_t capacity_ = 0;
  size_t used_ = 0;
  size_t text_size_ = 0;
  bool out_of_memory_ = false;
};

// The signal as the SDK writes it (JSON.stringify of {type, to, kind,
// data}): compact, its four members in that order, `to` without escapes.
// When `text` is exactly that, with `to` a valid peerId and `data` valid
// JSON, fills `signal` with what the general walk would find (and
// `kind_to_end`) and returns true; for anything else returns false having
// decided nothing (the caller walks). Matching the fixed pieces whole costs a
// fraction of reading four members one by one; `data` is validated by the
// same reader as in the walk. `text` must be followed by json_reader_padding
// readable bytes.
bool read_compact_signal(std::string_view text, SignalFields& signal);

// Two results are the same: the same outcome, every field equal, texts
// equal by content (views into different buffers may be the same text);
// a signal's kind_to_end, which only the compact read fills, is not compared.
// parse() and parse_by_walk() must give the same result for every text.
bool same_parse(const std::expected<SdkRequest, SdkRejection>& a, const std::expected<SdkRequest, SdkRejection>& b);

class SdkMessageParser {
 public:
  // `text` must be followed by simdjson::SIMDJSON_PADDING readable bytes.
  // Views in the result are valid until the next parse().
  std::expected<SdkRequest, SdkRejection> parse(std::string_view text);
  // The general walk alone. parse() first tries the compact signal
  // (read_compact_signal() above) and walks only when that does not match;
  // both must give the same result for every text, which the tests and the
  // fuzz target check with this.
  std::expected<SdkRequest, SdkRejection> parse_by_walk(std::string_view text);

 private:
  static_assert(simdjson::SIMDJSON_PADDING >= json_reader_padding);
  // Fills `request` (value-initialised); the rejection when there is one.
  std::optional<SdkRejection> read(std::string_view text, SdkRequest& request);

  UnescapedStrings strings_;
  std::array<std::string_view, max_exclude> exclude_{};  // SdkRequest::exclude's items
};

}  // namespace mf::edge
