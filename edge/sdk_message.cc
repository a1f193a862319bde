#include "edge/sdk_message.h"

#include "common/codec/utf8_validator.h"
#include "edge/json_document.h"

namespace mf::edge {
namespace {

using simdjson::ondemand::json_type;

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

bool is_valid_identifier(std::string_view text) {
  if (text.empty() || text.size() > max_identifier_bytes) return false;
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

// The first problem found while reading fields; reported after the loop so
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

using ondemand_value = simdjson::ondemand::value;

bool read_string(ondemand_value& value, std::string_view& out) { return read_json_string(value, out); }
bool read_unsigned(ondemand_value& value, uint64_t& out) { return read_json_unsigned(value, out); }
bool read_signed(ondemand_value& value, int64_t& out) { return read_json_signed(value, out); }

void read_caps(ondemand_value& value, CapsFields& caps, FieldProblem& problem) {
  simdjson::ondemand::object object;
  if (value.get_object().get(object)) return problem.note("caps: must be an object");
  for (auto field : object) {
    std::string_view key;
    ondemand_value v;
    if (field.unescaped_key().get(key) || field.value().get(v)) return problem.note("not valid JSON", SdkErrorCode::bad_json);
    if (key == "maxPeers") {
      uint64_t n;
      if (!read_unsigned(v, n) || n > max_peers_limit) return problem.note("caps.maxPeers: must be an integer 0..64");
      caps.has_max_peers = true;
      caps.max_peers = static_cast<uint32_t>(n);
    } else if (key == "uploadKbps") {
      uint64_t n;
      if (!read_unsigned(v, n)) return problem.note("caps.uploadKbps: must be an integer >= 0");
      caps.has_upload_kbps = true;
      caps.upload_kbps = n;
    } else if (key == "acceptingPeers") {
      bool b;
      if (v.get_bool().get(b)) return problem.note("caps.acceptingPeers: must be a boolean");
      caps.has_accepting_peers = true;
      caps.accepting_peers = b;
    }
  }
}

void read_topology_string(ondemand_value& v, std::string_view& out, std::string_view error, FieldProblem& problem) {
  if (!read_string(v, out) || out.empty() || out.size() > max_topology_string_bytes) {
    out = {};
    problem.note(error);
  }
}

void read_topology(ondemand_value& value, TopologyFields& topology, FieldProblem& problem) {
  simdjson::ondemand::object object;
  if (value.get_object().get(object)) return problem.note("topology: must be an object");
  topology.present = true;
  for (auto field : object) {
    std::string_view key;
    ondemand_value v;
    if (field.unescaped_key().get(key) || field.value().get(v)) return problem.note("not valid JSON", SdkErrorCode::bad_json);
    if (key == "region") {
      read_topology_string(v, topology.region, "topology.region: must be a string of 1..64 bytes", problem);
    } else if (key == "country") {
      read_topology_string(v, topology.country, "topology.country: must be a string of 1..64 bytes", problem);
    } else if (key == "network") {
      read_topology_string(v, topology.network, "topology.network: must be a string of 1..64 bytes", problem);
    } else if (key == "asn") {
      int64_t n;
      if (!read_signed(v, n) || n < 0 || n > 4294967295LL) return problem.note("topology.asn: must be an integer 0..4294967295");
      topology.has_asn = true;
      topology.asn = n;
    }
  }
}

void read_identifier(ondemand_value& value, std::string_view& out, std::string_view error, FieldProblem& problem) {
  if (!read_string(value, out) || !is_valid_identifier(out)) {
    out = {};
    problem.note(error);
  }
}

struct Presence {
  bool stream_id = false, rendition = false, peer_id = false, to = false, kind = false, data = false;
};

}  // namespace

SdkMessageParser::SdkMessageParser() : parser_(simdjson::ondemand::DEFAULT_BATCH_SIZE) {}

std::expected<SdkRequest, SdkRejection> SdkMessageParser::parse(std::string_view text) {
  simdjson::padded_string_view input(text.data(), text.size(), text.size() + simdjson::SIMDJSON_PADDING);
  simdjson::ondemand::document doc;
  if (parser_.iterate(input).get(doc)) return std::unexpected(reject(SdkErrorCode::bad_json, "not valid JSON"));
  switch (check_object_document(doc)) {
    case DocumentCheck::object: break;
    case DocumentCheck::not_json: return std::unexpected(reject(SdkErrorCode::bad_json, "not valid JSON"));
    case DocumentCheck::not_object: return std::unexpected(reject(SdkErrorCode::bad_json, "not a JSON object"));
    case DocumentCheck::trailing_data:
      return std::unexpected(reject(SdkErrorCode::bad_json, "trailing data after the JSON object"));
  }
  simdjson::ondemand::object object;
  if (doc.get_object().get(object)) return std::unexpected(reject(SdkErrorCode::bad_json, "not a JSON object"));

  SdkRequest request;
  FieldProblem problem;
  Presence present;
  std::string_view type_name;
  bool have_type = false;
  bool type_is_string = true;
  for (auto field : object) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return std::unexpected(reject(SdkErrorCode::bad_json, "not valid JSON"));
    simdjson::ondemand::value value;
    if (field.value().get(value)) return std::unexpected(reject(SdkErrorCode::bad_json, "not valid JSON"));
    if (key == "type") {
      have_type = true;
      if (!read_string(value, type_name)) type_is_string = false;
    } else if (key == "id") {
      // The raw token (echoed as `ref`) is read before the value is consumed.
      std::string_view raw = trim_json_whitespace(value.raw_json_token());
      json_type type;
      if (value.type().get(type)) return std::unexpected(reject(SdkErrorCode::bad_json, "not valid JSON"));
      if (type == json_type::string) {
        std::string_view id;
        if (!read_string(value, id)) return std::unexpected(reject(SdkErrorCode::bad_json, "not valid JSON"));
        if (id.size() > 64) problem.note("id: string longer than 64 bytes");
        else request.id_raw = raw;
      } else if (type == json_type::number) {
        request.id_raw = raw;
      } else {
        problem.note("id: must be a string or a number");
      }
    } else if (key == "t") {
      auto raw = raw_json_value_text(doc, value);
      if (!raw) return std::unexpected(reject(SdkErrorCode::bad_json, "not valid JSON"));
      request.t_raw = *raw;
    } else if (key == "streamId") {
      present.stream_id = true;
      read_identifier(value, request.stream_id, "streamId: must be 1..128 bytes of [A-Za-z0-9._:-]", problem);
    } else if (key == "rendition") {
      present.rendition = true;
      read_identifier(value, request.rendition, "rendition: must be 1..128 bytes of [A-Za-z0-9._:-]", problem);
    } else if (key == "peerId") {
      present.peer_id = true;
      read_identifier(value, request.peer_id, "peerId: must be 1..128 bytes of [A-Za-z0-9._:-]", problem);
    } else if (key == "session") {
      if (!read_string(value, request.session) || request.session.size() > max_session_bytes) {
        request.session = {};
        problem.note("session: must be a string of at most 128 bytes");
      } else {
        request.has_session = true;
      }
    } else if (key == "caps") {
      request.has_caps = true;
      read_caps(value, request.caps, problem);
    } else if (key == "topology") {
      read_topology(value, request.topology, problem);
    } else if (key == "to") {
      present.to = true;
      read_identifier(value, request.to, "to: must be a peerId (1..128 bytes of [A-Za-z0-9._:-])", problem);
    } else if (key == "kind") {
      present.kind = true;
      std::string_view kind;
      if (!read_string(value, kind)) problem.note("kind: must be offer, answer, candidate or bye");
      else if (kind == "offer") request.kind = SignalKind::offer;
      else if (kind == "answer") request.kind = SignalKind::answer;
      else if (kind == "candidate") request.kind = SignalKind::candidate;
      else if (kind == "bye") request.kind = SignalKind::bye;
      else problem.note("kind: must be offer, answer, candidate or bye");
    } else if (key == "data") {
      present.data = true;
      auto raw = raw_json_value_text(doc, value);
      if (!raw) return std::unexpected(reject(SdkErrorCode::bad_json, "not valid JSON"));
      request.data_raw = *raw;
    } else if (key == "count") {
      uint64_t n;
      if (!read_unsigned(value, n) || n < 1 || n > max_peers_limit) {
        problem.note("count: must be an integer 1..64");
      } else {
        request.has_count = true;
        request.count = static_cast<uint32_t>(n);
      }
    } else if (key == "exclude") {
      simdjson::ondemand::array array;
      if (value.get_array().get(array)) {
        problem.note("exclude: must be an array of peerIds");
      } else {
        for (auto element : array) {
          simdjson::ondemand::value item;
          std::string_view peer;
          if (element.get(item) || !read_string(item, peer) || !is_valid_identifier(peer)) {
            problem.note("exclude: must be an array of peerIds");
            break;
          }
          if (request.exclude_count == max_exclude) {
            problem.note("exclude: at most 64 peerIds");
            break;
          }
          request.exclude[request.exclude_count++] = peer;
        }
      }
    } else if (key == "p2pBytes" || key == "cdnBytes" || key == "uploadedBytes" || key == "connectedProposals") {
      // connectedProposals is this edge's extension to `stats` (an optional
      // counter like the others; docs/protocol.md): another edge ignores it.
      uint64_t n;
      if (!read_unsigned(value, n)) {
        problem.note(key == "p2pBytes"   ? "p2pBytes: must be an integer >= 0"
                     : key == "cdnBytes" ? "cdnBytes: must be an integer >= 0"
                     : key == "uploadedBytes" ? "uploadedBytes: must be an integer >= 0"
                                              : "connectedProposals: must be an integer >= 0");
      } else if (key == "p2pBytes") {
        request.has_p2p_bytes = true;
        request.p2p_bytes = n;
      } else if (key == "cdnBytes") {
        request.has_cdn_bytes = true;
        request.cdn_bytes = n;
      } else if (key == "uploadedBytes") {
        request.has_uploaded_bytes = true;
        request.uploaded_bytes = n;
      } else {
        request.has_connected_proposals = true;
        request.connected_proposals = n;
      }
    }
    // Unknown extra fields are ignored (docs/protocol.md section 3).
  }
  auto fail = [&](SdkErrorCode code, std::string_view message, std::string_view detail = {}) {
    return std::unexpected(reject(code, message, detail, request.id_raw));
  };
  if (!have_type) return fail(SdkErrorCode::bad_request, "type: missing");
  if (!type_is_string) return fail(SdkErrorCode::bad_request, "type: must be a string");
  if (type_name == "join") request.type = MessageType::join;
  else if (type_name == "leave") request.type = MessageType::leave;
  else if (type_name == "signal") request.type = MessageType::signal;
  else if (type_name == "need-peers") request.type = MessageType::need_peers;
  else if (type_name == "update") request.type = MessageType::update;
  else if (type_name == "stats") request.type = MessageType::stats;
  else if (type_name == "ping") request.type = MessageType::ping;
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
  return request;
}

}  // namespace mf::edge
