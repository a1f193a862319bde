// Fuzz target: SDK message parsing. Any bytes must give either a request or
// a rejection, never a crash; views must stay inside the input (or the
// parser's own string buffer for unescaped text), and raw values must be
// valid JSON text themselves. The one-walk parser's JSON verdict (valid, or
// which of the three bad-json messages) must be the one simdjson's
// On-Demand validation gives the same bytes (edge/json_document.h, which
// the tracker protocol still uses): the edge accepts what it accepted.
// Any text not refused as bad JSON is valid UTF-8 throughout: the edge
// leaves the WebSocket layer's UTF-8 pass out on that promise (docs/architecture.md,
// "Reading an SDK message"). parse() reads the SDK's compact signal by its
// fixed pieces: it must give what the general walk gives (parse_by_walk()).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/codec/utf8_validator.h"
#include "edge/json_document.h"
#include "edge/sdk_message.h"

namespace {

bool inside(std::string_view view, const char* begin, size_t size) {
  return view.empty() || (view.data() >= begin && view.data() + view.size() <= begin + size);
}

// simdjson's verdict on the text, as the parser's bad-json message ("" when valid).
std::string_view on_demand_verdict(simdjson::ondemand::parser& parser, const std::vector<char>& padded,
                                   size_t size) {
  simdjson::ondemand::document doc;
  if (parser.iterate(simdjson::padded_string_view(padded.data(), size, padded.size())).get(doc))
    return "not valid JSON";
  switch (mf::edge::check_object_document(doc)) {
    case mf::edge::DocumentCheck::object: return "";
    case mf::edge::DocumentCheck::not_json: return "not valid JSON";
    case mf::edge::DocumentCheck::not_object: return "not a JSON object";
    case mf::edge::DocumentCheck::trailing_data: return "trailing data after the JSON object";
  }
  return "?";
}

// The raw value must itself be one JSON value: wrapped as a ping's `t`, it
// parses and comes back byte for byte.
void check_raw_value(mf::edge::SdkMessageParser& checker, std::string_view raw) {
  if (raw.empty()) return;
  std::string wrapped = "{\"type\":\"ping\",\"t\":";
  wrapped.append(raw);
  wrapped.append("}");
  std::string storage = wrapped + std::string(simdjson::SIMDJSON_PADDING, ' ');
  auto again = checker.parse(std::string_view(storage.data(), wrapped.size()));
  if (!again || again->t_raw != raw) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mf::edge::SdkMessageParser parser;
  static mf::edge::SdkMessageParser checker;
  static mf::edge::SdkMessageParser walker;
  static simdjson::ondemand::parser reference(mf::edge::max_sdk_message_text_bytes);
  std::vector<char> padded(size + simdjson::SIMDJSON_PADDING, ' ');
  if (size > 0) std::memcpy(padded.data(), data, size);
  std::string_view text(padded.data(), size);
  auto result = parser.parse(text);
  // The compact signal's reading and the general walk agree on every text.
  if (!mf::edge::same_parse(result, walker.parse_by_walk(text))) std::abort();
  const bool json_refused = !result && result.error().code == mf::edge::SdkErrorCode::bad_json;
  if (on_demand_verdict(reference, padded, size) != (json_refused ? result.error().message : std::string_view()))
    std::abort();
  if (!json_refused && !mf::is_valid_utf8(std::span<const uint8_t>(data, size))) std::abort();
  if (result) {
    if (!inside(result->t_raw, padded.data(), size) || !inside(result->id_raw, padded.data(), size) ||
        !inside(result->signal.data_raw, padded.data(), size))
      std::abort();
    check_raw_value(checker, result->t_raw);
    check_raw_value(checker, result->signal.data_raw);
    check_raw_value(checker, result->id_raw);
  } else {
    if (!inside(result.error().id_raw, padded.data(), size)) std::abort();
    if (result.error().message.empty()) std::abort();
  }
  return 0;
}
