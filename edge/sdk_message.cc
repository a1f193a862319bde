#include "edge/sdk_message.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "common/codec/utf8_validator.h"
#include "edge/json_reader.h"
#include "edge/json_string_scan.h"

namespace mf::edge {
namespace {

SdkRejection reject(SdkErrorCode code, std::string_view message, std::string_view detail = {},
                    std::string_view id_raw = {}) {
  return SdkRejection{code, message, detail, id_raw};
}

}  // namespace

std::string_view error_code_text(SdkErrorCode code) {
  switch (code) {
    case SdkErrorCode::bad_json: return "bad-json";
    case SdkErrorCode::bad_request: return "bad-request";
    case SdkErrorCode::unknown_type: return "unknown-type";
    case SdkErrorCode::not_joined: return "not-joined";
    case SdkErrorCode::peer_not_found: return "peer-not-found";
    case SdkErrorCode::peer_id_taken: return "peer-id-taken";
    case SdkErrorCode::stream_full: return "stream-full";
    case SdkErrorCode::mesh_disabled: return "mesh-disabled";
    case SdkErrorCode::rate_limited: return "rate-limited";
  }
  return "internal";
}

std::string_view signal_kind_text(SignalKind kind) {
  switch (kind) {
    case SignalKind::offer: return "offer";
    case SignalKind::answer: return "answer";
    case SignalKind::candidate: return "candidate";
    case SignalKind::bye: return "bye";
  }
  return "offer";
}

namespace {

template <class Word>
inline Word load(const char* p) {
  Word w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

// `text` is `literal`: a size test, then two loads of the text (the first
// and the last bytes, overlapping when shorter than both) against the
// literal's, which the compiler folds; a literal longer than 16 bytes, a
// load of 8 bytes at a time and one of the last 8. string_view's
// operator==, and memcmp of an odd constant length, were calls.
template <size_t N>
inline bool is_text(std::string_view text, const char (&literal)[N]) {
  constexpr size_t n = N - 1;
  if (text.size() != n) return false;
  const char* p = text.data();
  if constexpr (n == 0) {
    return true;
  } else if constexpr (n == 1) {
    return p[0] == literal[0];
  } else if constexpr (n <= 3) {
    return load<uint16_t>(p) == load<uint16_t>(literal) && load<uint16_t>(p + n - 2) == load<uint16_t>(literal + n - 2);
  } else if constexpr (n <= 8) {
    return load<uint32_t>(p) == load<uint32_t>(literal) && load<uint32_t>(p + n - 4) == load<uint32_t>(literal + n - 4);
  } else if constexpr (n <= 16) {
    return load<uint64_t>(p) == load<uint64_t>(literal) && load<uint64_t>(p + n - 8) == load<uint64_t>(literal + n - 8);
  } else {
    bool same = load<uint64_t>(p + n - 8) == load<uint64_t>(literal + n - 8);
    for (size_t k = 0; k + 8 < n; k += 8) same &= load<uint64_t>(p + k) == load<uint64_t>(literal + k);
    return same;
  }
}

}  // namespace

bool is_valid_identifier(std::string_view text) {
  if (text.empty() || text.size() > max_identifier_bytes) return false;
  bool ok = true;
  for (char c : text) ok &= json_scan::is_identifier_byte(c);
  return ok;
}

bool UnescapedStrings::unescape(const JsonString& string, std::string_view& out) {
  // Unescaped text is never longer than the body, so room for the whole
  // message holds every string of it.
  if (capacity_ < text_size_) {
    buffer_.reset(new (std::nothrow) char[text_size_]);
    capacity_ = buffer_ ? text_size_ : 0;
    used_ = 0;
    if (!buffer_) {
      out_of_memory_ = true;
      return false;
    }
  }
  char* start = buffer_.get() + used_;
  const size_t size = unescape_json_string(string.body, start);
  used_ += size;
  out = std::string_view(start, size);
  return true;
}

namespace {

// The first problem found while reading fields; reported after the walk so
// that an `id` anywhere in the message is still echoed as `ref`.
struct FieldProblem {
  SdkErrorCode code = SdkErrorCode::bad_request;
  std::string_view message;
  bool set = false;
  void note(std::string_view text, SdkErrorCode c = SdkErrorCode::bad_request) {
    if (set) return;
    set = true;
    code = c;
    message = text;
  }
};

// The longest key the parser looks for ("connectedProposals"); an escape
// is at most 6 bytes for one byte of text, so a longer escaped key cannot
// be one of them.
constexpr size_t longest_key = 18;

// The text of a key, unescaped into `scratch` when it has escapes; empty
// when it is longer than any key the parser reads.
std::string_view key_text(const JsonString& key, char (&scratch)[6 * longest_key]) {
  if (!key.escaped) return key.body;
  if (key.body.size() > sizeof scratch) return {};
  return std::string_view(scratch, unescape_json_string(key.body, scratch));
}

enum class Field : uint8_t {
  other, type, id, t, stream_id, rendition, peer_id, session, caps, topology, to, kind, data, count, exclude,
  p2p_bytes, cdn_bytes, uploaded_bytes, connected_proposals,
};

Field field_named(std::string_view key) {
  switch (key.size()) {
    case 1: return is_text(key, "t") ? Field::t : Field::other;
    case 2: return is_text(key, "id") ? Field::id : is_text(key, "to") ? Field::to : Field::other;
    case 4:
      return is_text(key, "type")   ? Field::type
             : is_text(key, "kind") ? Field::kind
             : is_text(key, "data") ? Field::data
             : is_text(key, "caps") ? Field::caps
                             : Field::other;
    case 5: return is_text(key, "count") ? Field::count : Field::other;
    case 6: return is_text(key, "peerId") ? Field::peer_id : Field::other;
    case 7: return is_text(key, "session") ? Field::session : is_text(key, "exclude") ? Field::exclude : Field::other;
    case 8:
      return is_text(key, "streamId")   ? Field::stream_id
             : is_text(key, "topology") ? Field::topology
             : is_text(key, "p2pBytes") ? Field::p2p_bytes
             : is_text(key, "cdnBytes") ? Field::cdn_bytes
                                 : Field::other;
    case 9: return is_text(key, "rendition") ? Field::rendition : Field::other;
    case 13: return is_text(key, "uploadedBytes") ? Field::uploaded_bytes : Field::other;
    case 18: return is_text(key, "connectedProposals") ? Field::connected_proposals : Field::other;
    default: return Field::other;
  }
}

// A non-negative integer that fits in uint64 ("-0" is 0; 1.0 and 1e3 are
// refused: counters and sizes are integers).
bool unsigned_value(const JsonValue& value, uint64_t& out) {
  bool negative = false;
  uint64_t magnitude = 0;
  if (value.type != JsonType::number || !json_integer(value.text, negative, magnitude)) return false;
  if (negative && magnitude != 0) return false;
  out = magnitude;
  return true;
}

// An integer that fits in int64.
bool signed_value(const JsonValue& value, int64_t& out) {
  bool negative = false;
  uint64_t magnitude = 0;
  if (value.type != JsonType::number || !json_integer(value.text, negative, magnitude)) return false;
  constexpr uint64_t int64_max = static_cast<uint64_t>(INT64_MAX);
  if (magnitude > int64_max + (negative ? 1 : 0)) return false;
  out = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
  return true;
}

// Reads a value the caller does not look into (validating it); false when
// the message is not valid JSON.
bool skip_value(JsonReader& in) {
  JsonValue ignored;
  return in.read_value(ignored);
}

void read_caps(JsonReader& in, CapsFields& caps, FieldProblem& problem) {
  if (in.peek() != '{') {
    skip_value(in);
    return problem.note("caps: must be an object");
  }
  in.enter_object();
  JsonString key;
  char scratch[6 * longest_key];
  while (in.next_member(key)) {
    JsonValue v;
    if (!in.read_value(v)) return;
    // After a problem the message is refused: what follows is only validated.
    if (problem.set) continue;
    const std::string_view name = key_text(key, scratch);
    if (is_text(name, "maxPeers")) {
      uint64_t n;
      if (!unsigned_value(v, n) || n > max_peers_limit) {
        problem.note("caps.maxPeers: must be an integer 0..64");
        continue;
      }
      caps.has_max_peers = true;
      caps.max_peers = static_cast<uint32_t>(n);
    } else if (is_text(name, "uploadKbps")) {
      uint64_t n;
      if (!unsigned_value(v, n)) {
        problem.note("caps.uploadKbps: must be an integer >= 0");
        continue;
      }
      caps.has_upload_kbps = true;
      caps.upload_kbps = n;
    } else if (is_text(name, "acceptingPeers")) {
      if (v.type != JsonType::boolean) {
        problem.note("caps.acceptingPeers: must be a boolean");
        continue;
      }
      caps.has_accepting_peers = true;
      caps.accepting_peers = v.boolean;
    }
  }
}

void read_topology_string(UnescapedStrings& strings, const JsonValue& v, std::string_view& out,
                          std::string_view error, FieldProblem& problem) {
  if (!strings.read(v, out) || out.empty() || out.size() > max_topology_string_bytes) {
    out = {};
    problem.note(error);
  }
}

void read_topology(JsonReader& in, UnescapedStrings& strings, TopologyFields& topology, FieldProblem& problem) {
  if (in.peek() != '{') {
    skip_value(in);
    return problem.note("topology: must be an object");
  }
  in.enter_object();
  topology.present = true;
  JsonString key;
  char scratch[6 * longest_key];
  while (in.next_member(key)) {
    JsonValue v;
    if (!in.read_value(v)) return;
    if (problem.set) continue;
    const std::string_view name = key_text(key, scratch);
    if (is_text(name, "region")) {
      read_topology_string(strings, v, topology.region, "topology.region: must be a string of 1..64 bytes", problem);
    } else if (is_text(name, "country")) {
      read_topology_string(strings, v, topology.country, "topology.country: must be a string of 1..64 bytes", problem);
    } else if (is_text(name, "network")) {
      read_topology_string(strings, v, topology.network, "topology.network: must be a string of 1..64 bytes", problem);
    } else if (is_text(name, "asn")) {
      int64_t n;
      if (!signed_value(v, n) || n < 0 || n > 4294967295LL) {
        problem.note("topology.asn: must be an integer 0..4294967295");
        continue;
      }
      topology.has_asn = true;
      topology.asn = n;
    }
  }
}

// Fills `storage` and points request.exclude at the items read.
void read_exclude(JsonReader& in, UnescapedStrings& strings, std::span<std::string_view, max_exclude> storage,
                  SdkRequest& request, FieldProblem& problem) {
  if (in.peek() != '[') {
    skip_value(in);
    return problem.note("exclude: must be an array of peerIds");
  }
  in.enter_array();
  size_t count = request.exclude.size();  // a repeated "exclude" adds to the list, as before
  bool refused = false;  // the first bad item, or one too many, ends the list
  while (in.next_element()) {
    JsonValue item;
    if (!in.read_value(item)) return;
    if (refused) continue;
    std::string_view peer;
    if (!strings.read(item, peer) || !is_valid_identifier(peer)) {
      problem.note("exclude: must be an array of peerIds");
      refused = true;
    } else if (count == max_exclude) {
      problem.note("exclude: at most 64 peerIds");
      refused = true;
    } else {
      storage[count++] = peer;
    }
  }
  request.exclude = std::span<const std::string_view>(storage.data(), count);
}

void read_identifier(UnescapedStrings& strings, const JsonValue& value, std::string_view& out, std::string_view error,
                     FieldProblem& problem) {
  if (!strings.read(value, out) || !is_valid_identifier(out)) {
    out = {};
    problem.note(error);
  }
}

struct Presence {
  bool stream_id = false, rendition = false, peer_id = false, to = false, kind = false, data = false;
};

// simdjson's first pass over the whole text, which decided between "not
// valid JSON" and the other two bad-json messages before any value was
// read: valid UTF-8 throughout, every string closed, no control character
// inside one. A backslash escapes the next byte wherever it is. Only a
// refused message (not an object, trailing data) is checked this way.
bool strings_and_encoding_are_sound(std::string_view text) {
  if (!is_valid_utf8(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size())))
    return false;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<uint8_t>(text[i]);
    if (c == '\\') {
      if (++i == text.size()) break;
      if (in_string && static_cast<uint8_t>(text[i]) < 0x20) return false;
    } else if (c == '"') {
      in_string = !in_string;
    } else if (in_string && c < 0x20) {
      return false;
    }
  }
  return !in_string;
}

// By length first: one comparison for any type (a signal, the most
// frequent, is one of the two names of six bytes).
std::optional<MessageType> message_type_named(std::string_view name) {
  switch (name.size()) {
    case 4:
      if (is_text(name, "join")) return MessageType::join;
      if (is_text(name, "ping")) return MessageType::ping;
      return std::nullopt;
    case 5:
      if (is_text(name, "leave")) return MessageType::leave;
      if (is_text(name, "stats")) return MessageType::stats;
      return std::nullopt;
    case 6:
      if (is_text(name, "signal")) return MessageType::signal;
      if (is_text(name, "update")) return MessageType::update;
      return std::nullopt;
    case 10:
      if (is_text(name, "need-peers")) return MessageType::need_peers;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

// A JSON value that is not an object starts with one of these.
bool starts_other_value(char c) {
  return c == '[' || c == '"' || c == 'n' || c == 't' || c == 'f' || c == '-' || (c >= '0' && c <= '9');
}

}  // namespace

bool read_compact_signal(std::string_view text, SignalFields& signal) {
  constexpr char head[] = R"({"type":"signal","to":")";
  constexpr char kind_key[] = R"(","kind":")";
  constexpr char offer[] = R"(offer","data":)";
  constexpr char answer[] = R"(answer","data":)";
  constexpr char candidate[] = R"(candidate","data":)";
  constexpr char bye[] = R"(bye","data":)";
  if (text.size() > max_sdk_message_text_bytes) return false;
  const char* p = text.data();
  const char* const end = p + text.size();
  const auto left = [&p, end] { return static_cast<size_t>(end - p); };
  // Steps over `piece` when the text goes on with it.
  const auto take = [&](const auto& piece) {
    constexpr size_t n = sizeof piece - 1;
    if (left() < n || !is_text(std::string_view(p, n), piece)) return false;
    p += n;
    return true;
  };
  if (!take(head)) return false;
  // `to`: a peerId's bytes up to its closing quote (any other byte, an
  // escape included, stops the scan: the walk decides those).
  const char* const to = p;
  for (;;) {
    const size_t run = json_scan::identifier_run(p);
    p += run;
    if (p >= end || static_cast<size_t>(p - to) > max_identifier_bytes) return false;
    if (run < json_scan::string_block) break;
  }
  if (*p != '"' || p == to) return false;
  const std::string_view to_text(to, static_cast<size_t>(p - to));
  const char* const kind_start = p;
  if (!take(kind_key)) return false;
  SignalKind kind;
  if (take(offer)) kind = SignalKind::offer;
  else if (take(answer)) kind = SignalKind::answer;
  else if (take(candidate)) kind = SignalKind::candidate;
  else if (take(bye)) kind = SignalKind::bye;
  else return false;
  // `data`, validated whole by the walk's reader at the walk's depth (a
  // member of the root object), then the root's closing brace, last.
  JsonReader in(std::string_view(p, left()), 1);
  JsonValue data;
  if (!in.read_value(data) || in.rest() != "}") return false;
  signal = SignalFields{to_text, kind, data.text, std::string_view(kind_start, static_cast<size_t>(end - kind_start))};
  return true;
}

bool same_parse(const std::expected<SdkRequest, SdkRejection>& a, const std::expected<SdkRequest, SdkRejection>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) {
    const SdkRejection &x = a.error(), &y = b.error();
    return x.code == y.code && x.message == y.message && x.detail == y.detail && x.id_raw == y.id_raw;
  }
  // Every field of SdkRequest is compared here: a field added to it
  // changes its size, and this assertion asks for the field's comparison.
  static_assert(sizeof(SdkRequest) == 320, "compare the new field of SdkRequest in same_parse()");
  const SdkRequest &x = *a, &y = *b;
  return x.type == y.type && x.id_raw == y.id_raw && x.t_raw == y.t_raw && x.stream_id == y.stream_id &&
         x.rendition == y.rendition && x.peer_id == y.peer_id && x.session == y.session &&
         x.has_session == y.has_session && x.has_caps == y.has_caps && x.caps == y.caps && x.topology == y.topology &&
         x.signal.to == y.signal.to && x.signal.kind == y.signal.kind && x.signal.data_raw == y.signal.data_raw &&
         x.has_count == y.has_count && x.count == y.count && std::ranges::equal(x.exclude, y.exclude) && x.has_p2p_bytes == y.has_p2p_bytes &&
         x.has_cdn_bytes == y.has_cdn_bytes && x.has_uploaded_bytes == y.has_uploaded_bytes &&
         x.has_connected_proposals == y.has_connected_proposals && x.p2p_bytes == y.p2p_bytes &&
         x.cdn_bytes == y.cdn_bytes && x.uploaded_bytes == y.uploaded_bytes &&
         x.connected_proposals == y.connected_proposals;
}

std::expected<SdkRequest, SdkRejection> SdkMessageParser::parse(std::string_view text) {
  std::expected<SdkRequest, SdkRejection> result;
  if (SignalFields signal; read_compact_signal(text, signal)) {
    result->type = MessageType::signal;
    result->signal = signal;
    return result;
  }
  if (std::optional<SdkRejection> refused = read(text, *result)) result = std::unexpected(*refused);
  return result;
}

std::expected<SdkRequest, SdkRejection> SdkMessageParser::parse_by_walk(std::string_view text) {
  std::expected<SdkRequest, SdkRejection> result;
  if (std::optional<SdkRejection> refused = read(text, *result)) result = std::unexpected(*refused);
  return result;
}

std::optional<SdkRejection> SdkMessageParser::read(std::string_view text, SdkRequest& request) {
  const auto bad_json = [](std::string_view message) { return reject(SdkErrorCode::bad_json, message); };
  constexpr std::string_view not_json = "not valid JSON";
  if (text.size() > max_sdk_message_text_bytes) return bad_json(not_json);
  strings_.reset(text.size());
  JsonReader in(text);
  if (in.at_end()) return bad_json(not_json);
  if (const char first = in.peek(); first != '{')
    return bad_json(starts_other_value(first) && strings_and_encoding_are_sound(text) ? "not a JSON object" : not_json);
  in.enter_object();

  FieldProblem problem;
  Presence present;
  std::string_view type_name;
  bool have_type = false;
  bool type_is_string = true;
  JsonString key;
  char key_scratch[6 * longest_key];
  while (in.next_member(key)) {
    const Field field = field_named(key_text(key, key_scratch));
    // Objects and arrays the edge looks into are read member by member.
    if (field == Field::caps) {
      request.has_caps = true;
      read_caps(in, request.caps, problem);
      continue;
    }
    if (field == Field::topology) {
      read_topology(in, strings_, request.topology, problem);
      continue;
    }
    if (field == Field::exclude) {
      read_exclude(in, strings_, exclude_, request, problem);
      continue;
    }
    JsonValue value;
    if (!in.read_value(value)) break;
    switch (field) {
      case Field::type:
        have_type = true;
        if (!strings_.read(value, type_name)) type_is_string = false;
        break;
      case Field::id:
        // Echoed as `ref` byte for byte: the value's own text.
        if (value.type == JsonType::string) {
          std::string_view id;
          strings_.read(value, id);
          if (id.size() > 64) problem.note("id: string longer than 64 bytes");
          else request.id_raw = value.text;
        } else if (value.type == JsonType::number) {
          request.id_raw = value.text;
        } else {
          problem.note("id: must be a string or a number");
        }
        break;
      case Field::t:
        request.t_raw = value.text;
        break;
      case Field::stream_id:
        present.stream_id = true;
        read_identifier(strings_, value, request.stream_id, "streamId: must be 1..128 bytes of [A-Za-z0-9._:-]", problem);
        break;
      case Field::rendition:
        present.rendition = true;
        read_identifier(strings_, value, request.rendition, "rendition: must be 1..128 bytes of [A-Za-z0-9._:-]", problem);
        break;
      case Field::peer_id:
        present.peer_id = true;
        read_identifier(strings_, value, request.peer_id, "peerId: must be 1..128 bytes of [A-Za-z0-9._:-]", problem);
        break;
      case Field::session:
        if (!strings_.read(value, request.session) || request.session.size() > max_session_bytes) {
          request.session = {};
          problem.note("session: must be a string of at most 128 bytes");
        } else {
          request.has_session = true;
        }
        break;
      case Field::to:
        present.to = true;
        read_identifier(strings_, value, request.signal.to, "to: must be a peerId (1..128 bytes of [A-Za-z0-9._:-])",
                        problem);
        break;
      case Field::kind: {
        present.kind = true;
        std::string_view kind;
        if (!strings_.read(value, kind)) problem.note("kind: must be offer, answer, candidate or bye");
        else if (is_text(kind, "offer")) request.signal.kind = SignalKind::offer;
        else if (is_text(kind, "answer")) request.signal.kind = SignalKind::answer;
        else if (is_text(kind, "candidate")) request.signal.kind = SignalKind::candidate;
        else if (is_text(kind, "bye")) request.signal.kind = SignalKind::bye;
        else problem.note("kind: must be offer, answer, candidate or bye");
        break;
      }
      case Field::data:
        present.data = true;
        request.signal.data_raw = value.text;
        break;
      case Field::count: {
        uint64_t n;
        if (!unsigned_value(value, n) || n < 1 || n > max_peers_limit) {
          problem.note("count: must be an integer 1..64");
        } else {
          request.has_count = true;
          request.count = static_cast<uint32_t>(n);
        }
        break;
      }
      // connectedProposals is this edge's extension to `stats` (an optional
      // counter like the others; docs/protocol.md): another edge ignores it.
      case Field::p2p_bytes:
        if (!unsigned_value(value, request.p2p_bytes)) problem.note("p2pBytes: must be an integer >= 0");
        else request.has_p2p_bytes = true;
        break;
      case Field::cdn_bytes:
        if (!unsigned_value(value, request.cdn_bytes)) problem.note("cdnBytes: must be an integer >= 0");
        else request.has_cdn_bytes = true;
        break;
      case Field::uploaded_bytes:
        if (!unsigned_value(value, request.uploaded_bytes)) problem.note("uploadedBytes: must be an integer >= 0");
        else request.has_uploaded_bytes = true;
        break;
      case Field::connected_proposals:
        if (!unsigned_value(value, request.connected_proposals)) problem.note("connectedProposals: must be an integer >= 0");
        else request.has_connected_proposals = true;
        break;
      case Field::caps:
      case Field::topology:
      case Field::exclude:
      case Field::other:
        // Unknown extra fields are ignored (docs/protocol.md section 3).
        break;
    }
  }
  if (in.failed() || strings_.out_of_memory()) return bad_json(not_json);
  if (!in.at_end())
    return bad_json(strings_and_encoding_are_sound(in.rest()) ? "trailing data after the JSON object" : not_json);

  auto fail = [&](SdkErrorCode code, std::string_view message, std::string_view detail = {}) {
    return reject(code, message, detail, request.id_raw);
  };
  if (!have_type) return fail(SdkErrorCode::bad_request, "type: missing");
  if (!type_is_string) return fail(SdkErrorCode::bad_request, "type: must be a string");
  if (std::optional<MessageType> type = message_type_named(type_name)) request.type = *type;
  else return fail(SdkErrorCode::unknown_type, "unknown type", utf8_prefix(type_name, 64));
  if (problem.set) return fail(problem.code, problem.message);
  switch (request.type) {
    case MessageType::join:
      if (!present.stream_id) return fail(SdkErrorCode::bad_request, "streamId: missing");
      if (!present.rendition) return fail(SdkErrorCode::bad_request, "rendition: missing");
      if (!present.peer_id) return fail(SdkErrorCode::bad_request, "peerId: missing");
      break;
    case MessageType::signal:
      if (!present.to) return fail(SdkErrorCode::bad_request, "to: missing");
      if (!present.kind) return fail(SdkErrorCode::bad_request, "kind: missing");
      if (!present.data) return fail(SdkErrorCode::bad_request, "data: missing");
      break;
    default:
      break;
  }
  return std::nullopt;
}

}  // namespace mf::edge
