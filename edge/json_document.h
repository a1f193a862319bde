#pragma once
// Whole-document JSON validation and raw-value extraction on simdjson's
// On-Demand API, for the WebTorrent tracker protocol (docs/tracker.md); the
// SDK protocol reads its messages in one walk with edge/json_reader.h.
// On-Demand checks only what it reads, so a parser first walks every value
// of the document, then reads the fields it trusts. Both accept the same
// JSON (max_json_depth, any number range).
#include <simdjson.h>

#include "edge/json_reader.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mf::edge {

// The text less trailing JSON white space.
std::string_view trim_json_whitespace(std::string_view raw);

// RFC 8259 number grammar (simdjson refuses numbers it cannot represent,
// which are still valid JSON).
bool is_json_number(std::string_view text);

// Touches every value below `value` so that On-Demand validates it.
simdjson::error_code validate_json_value(simdjson::ondemand::value value, size_t depth);

enum class DocumentCheck : uint8_t { object, not_json, not_object, trailing_data };
// Validates the whole document as one JSON object with nothing after it, then
// rewinds it so the caller can read the fields.
DocumentCheck check_object_document(simdjson::ondemand::document& doc);

// The sender's exact JSON text of `value` (consumed, and validated), or
// nullopt when it is not valid JSON.
std::optional<std::string_view> raw_json_value_text(simdjson::ondemand::document& doc,
                                                    simdjson::ondemand::value value);

// A non-negative JSON integer that fits in uint64 (1.0 and 1e3 are refused:
// counters and sizes are integers).
bool read_json_unsigned(simdjson::ondemand::value& value, uint64_t& out);
bool read_json_signed(simdjson::ondemand::value& value, int64_t& out);
bool read_json_string(simdjson::ondemand::value& value, std::string_view& out);

}  // namespace mf::edge
