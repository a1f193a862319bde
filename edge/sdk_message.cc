#include "edge/sdk_message.h"

#include <optional>

namespace mf::edge {
namespace {

using simdjson::ondemand::json_type;

// Touches every value so that On-Demand validates the whole document.
simdjson::error_code validate_value(simdjson::ondemand::value value, size_t depth) {
  if (depth > max_json_depth) return simdjson::DEPTH_ERROR;
  json_type type;
  if (auto error = value.type().get(type)) return error;
  switch (type) {
    case json_type::object: {
      simdjson::ondemand::object object;
      if (auto error = value.get_object().get(object)) return error;
      for (auto field : object) {
        std::string_view key;
        if (auto error = field.unescaped_key().get(key)) return error;
        simdjson::ondemand::value child;
        if (auto error = field.value().get(child)) return error;
        if (auto error = validate_value(child, depth + 1)) return error;
      }
      return simdjson::SUCCESS;
    }
    case json_type::array: {
      simdjson::ondemand::array array;
      if (auto error = value.get_array().get(array)) return error;
      for (auto element : array) {
        simdjson::ondemand::value item;
        if (auto error = element.get(item)) return error;
        if (auto error = validate_value(item, depth + 1)) return error;
      }
      return simdjson::SUCCESS;
    }
    case json_type::number: {
      simdjson::ondemand::number number;
      return value.get_number().get(number);
    }
    case json_type::string: {
      std::string_view text;
      return value.get_string().get(text);
    }
    case json_type::boolean: {
      bool flag;
      return value.get_bool().get(flag);
    }
    case json_type::null:
    {
      bool is_null = false;
      if (auto error = value.is_null().get(is_null)) return error;
      return is_null ? simdjson::SUCCESS : simdjson::INCORRECT_TYPE;
    }
  }
  return simdjson::INCORRECT_TYPE;
}

SdkRejection reject(SdkErrorCode code, std::string_view message, std::string_view detail = {},
                    std::string_view id_raw = {}) {
  return SdkRejection{code, message, detail, id_raw};
}

std::string_view trim(std::string_view raw) {
  while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t'))
    raw.remove_suffix(1);
  return raw;
}

// The sender's exact JSON text of `value` (consumed): from its first token to
// the document's position after it, less trailing white space. simdjson 3.0
// has no raw_json() on values.
std::optional<std::string_view> raw_value_text(simdjson::ondemand::document& doc, simdjson::ondemand::value value) {
  std::string_view token = value.raw_json_token();
  json_type type;
  if (value.type().get(type) != simdjson::SUCCESS) return std::nullopt;
  if (type != json_type::object && type != json_type::array) {
    // A scalar is one token; reading it (which validates it) need not move
    // the document's position past it, so take the token itself.
    if (validate_value(value, 0) != simdjson::SUCCESS) return std::nullopt;
    return trim(token);
  }
  const char* start = token.data();
  if (validate_value(value, 0) != simdjson::SUCCESS) return std::nullopt;
  const char* end = nullptr;
  if (doc.current_location().get(end) != simdjson::SUCCESS) return std::nullopt;
  return trim(std::string_view(start, static_cast<size_t>(end - start)));
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

SdkMessageParser::SdkMessageParser() : parser_(simdjson::ondemand::DEFAULT_BATCH_SIZE) {}

std::expected<SdkRequest, SdkRejection> SdkMessageParser::parse(std::string_view text) {
  simdjson::padded_string_view input(text.data(), text.size(), text.size() + simdjson::SIMDJSON_PADDING);
  simdjson::ondemand::document doc;
  if (parser_.iterate(input).get(doc)) return std::unexpected(reject(SdkErrorCode::bad_json, "not valid JSON"));
  {
    json_type type;
    if (doc.type().get(type)) return std::unexpected(reject(SdkErrorCode::bad_json, "not valid JSON"));
    if (type != json_type::object) return std::unexpected(reject(SdkErrorCode::bad_json, "not a JSON object"));
    simdjson::ondemand::value root;
    if (doc.get_value().get(root) || validate_value(root, 0) != simdjson::SUCCESS)
      return std::unexpected(reject(SdkErrorCode::bad_json, "not valid JSON"));
    // After the whole object was walked, any further token is trailing data.
    const char* trailing = nullptr;
    if (doc.current_location().get(trailing) == simdjson::SUCCESS)
      return std::unexpected(reject(SdkErrorCode::bad_json, "trailing data after the JSON object"));
  }
  doc.rewind();
  simdjson::ondemand::object object;
  if (doc.get_object().get(object)) return std::unexpected(reject(SdkErrorCode::bad_json, "not a JSON object"));

  SdkRequest request;
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
      if (value.get_string().get(type_name)) type_is_string = false;
    } else if (key == "id") {
      // The raw token (echoed as `ref`) is read before the value is consumed.
      std::string_view raw = trim(value.raw_json_token());
      json_type type;
      if (value.type().get(type)) return std::unexpected(reject(SdkErrorCode::bad_json, "not valid JSON"));
      if (type == json_type::string) {
        std::string_view id;
        if (value.get_string().get(id)) return std::unexpected(reject(SdkErrorCode::bad_json, "not valid JSON"));
        if (id.size() > 64) return std::unexpected(reject(SdkErrorCode::bad_request, "id: string longer than 64 bytes"));
        request.id_raw = raw;
      } else if (type == json_type::number) {
        request.id_raw = raw;
      } else {
        return std::unexpected(reject(SdkErrorCode::bad_request, "id: must be a string or a number"));
      }
    } else if (key == "t") {
      auto raw = raw_value_text(doc, value);
      if (!raw) return std::unexpected(reject(SdkErrorCode::bad_json, "not valid JSON"));
      request.t_raw = *raw;
    }
  }
  if (!have_type) return std::unexpected(reject(SdkErrorCode::bad_request, "type: missing", {}, request.id_raw));
  if (!type_is_string) return std::unexpected(reject(SdkErrorCode::bad_request, "type: must be a string", {}, request.id_raw));
  if (type_name == "ping") {
    request.type = MessageType::ping;
    return request;
  }
  // The rest of section 3 arrives with the edge issue; until then every other
  // type is unknown here.
  return std::unexpected(reject(SdkErrorCode::unknown_type, "unknown type", type_name, request.id_raw));
}

}  // namespace mf::edge
