#include "edge/json_document.h"

namespace mf::edge {

using simdjson::ondemand::json_type;

std::string_view trim_json_whitespace(std::string_view raw) {
  while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t'))
    raw.remove_suffix(1);
  return raw;
}

bool is_json_number(std::string_view t) {
  const char* end = t.data() + t.size();
  const char* number_end = scan_json_number(t.data(), end);
  return number_end != nullptr && number_end == end;
}

simdjson::error_code validate_json_value(simdjson::ondemand::value value, size_t depth) {
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
        if (auto error = validate_json_value(child, depth + 1)) return error;
      }
      return simdjson::SUCCESS;
    }
    case json_type::array: {
      simdjson::ondemand::array array;
      if (auto error = value.get_array().get(array)) return error;
      for (auto element : array) {
        simdjson::ondemand::value item;
        if (auto error = element.get(item)) return error;
        if (auto error = validate_json_value(item, depth + 1)) return error;
      }
      return simdjson::SUCCESS;
    }
    case json_type::number:
      // RFC 8259 puts no range on numbers: one simdjson cannot represent
      // (beyond 64 bits, 1e400) is still valid JSON, so check the grammar.
      return is_json_number(trim_json_whitespace(value.raw_json_token())) ? simdjson::SUCCESS
                                                                           : simdjson::NUMBER_ERROR;
    case json_type::string: {
      std::string_view text;
      return value.get_string().get(text);
    }
    case json_type::boolean: {
      bool flag;
      return value.get_bool().get(flag);
    }
    case json_type::null: {
      bool is_null = false;
      if (auto error = value.is_null().get(is_null)) return error;
      return is_null ? simdjson::SUCCESS : simdjson::INCORRECT_TYPE;
    }
  }
  return simdjson::INCORRECT_TYPE;
}

DocumentCheck check_object_document(simdjson::ondemand::document& doc) {
  json_type type;
  if (doc.type().get(type)) return DocumentCheck::not_json;
  if (type != json_type::object) return DocumentCheck::not_object;
  simdjson::ondemand::value root;
  if (doc.get_value().get(root) || validate_json_value(root, 0) != simdjson::SUCCESS) return DocumentCheck::not_json;
  // After the whole object was walked, any further token is trailing data.
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == simdjson::SUCCESS) return DocumentCheck::trailing_data;
  doc.rewind();
  return DocumentCheck::object;
}

// From the value's first token to the document's position after it, less
// trailing white space. simdjson 3.0 has no raw_json() on values.
std::optional<std::string_view> raw_json_value_text(simdjson::ondemand::document& doc,
                                                    simdjson::ondemand::value value) {
  std::string_view token = value.raw_json_token();
  json_type type;
  if (value.type().get(type) != simdjson::SUCCESS) return std::nullopt;
  if (type != json_type::object && type != json_type::array) {
    // A scalar is one token; reading it (which validates it) need not move
    // the document's position past it, so take the token itself.
    if (validate_json_value(value, 0) != simdjson::SUCCESS) return std::nullopt;
    return trim_json_whitespace(token);
  }
  const char* start = token.data();
  if (validate_json_value(value, 0) != simdjson::SUCCESS) return std::nullopt;
  const char* end = nullptr;
  if (doc.current_location().get(end) != simdjson::SUCCESS) return std::nullopt;
  return trim_json_whitespace(std::string_view(start, static_cast<size_t>(end - start)));
}

bool read_json_string(simdjson::ondemand::value& value, std::string_view& out) {
  return value.get_string().get(out) == simdjson::SUCCESS;
}

bool read_json_unsigned(simdjson::ondemand::value& value, uint64_t& out) {
  json_type type;
  if (value.type().get(type) || type != json_type::number) return false;
  simdjson::ondemand::number_type number_type;
  if (value.get_number_type().get(number_type)) return false;
  if (number_type == simdjson::ondemand::number_type::unsigned_integer)
    return value.get_uint64().get(out) == simdjson::SUCCESS;
  if (number_type == simdjson::ondemand::number_type::signed_integer) {
    int64_t signed_value;
    if (value.get_int64().get(signed_value) || signed_value < 0) return false;
    out = static_cast<uint64_t>(signed_value);
    return true;
  }
  return false;
}

bool read_json_signed(simdjson::ondemand::value& value, int64_t& out) {
  json_type type;
  if (value.type().get(type) || type != json_type::number) return false;
  simdjson::ondemand::number_type number_type;
  if (value.get_number_type().get(number_type)) return false;
  if (number_type != simdjson::ondemand::number_type::signed_integer &&
      number_type != simdjson::ondemand::number_type::unsigned_integer)
    return false;
  return value.get_int64().get(out) == simdjson::SUCCESS;
}

}  // namespace mf::edge
