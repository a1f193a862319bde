#pragma once
// Whole-document JSON validation and raw-value extraction on simdjson's
// On-Demand API, shared by the edge's client protocols (the SDK protocol,
// docs/protocol.md, and the WebTorrent tracker protocol, docs/tracker.md).
// On-Demand checks only what it reads, so a parser first walks every value
// of the document, then reads the fields it trusts.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mf::edge {

// Deepest nesting accepted in a client message (a ping's `t`, a signal's
// `data` or an SDP object may nest; nothing a client sends needs more).
inline constexpr size_t max_json_depth = 64;

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
