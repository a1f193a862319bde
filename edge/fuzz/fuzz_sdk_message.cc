// Fuzz target: SDK message parsing. Any bytes must give either a request or
// a rejection, never a crash; views must stay inside the input (or the
// parser's own string buffer for unescaped text), and raw values must be
// valid JSON text themselves.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "edge/sdk_message.h"

namespace {

bool inside(std::string_view view, const char* begin, size_t size) {
  return view.empty() || (view.data() >= begin && view.data() + view.size() <= begin + size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mf::edge::SdkMessageParser parser;
  static mf::edge::SdkMessageParser checker;
  std::vector<char> padded(size + simdjson::SIMDJSON_PADDING, ' ');
  if (size > 0) std::memcpy(padded.data(), data, size);
  std::string_view text(padded.data(), size);
  auto result = parser.parse(text);
  if (result) {
    if (!inside(result->t_raw, padded.data(), size) || !inside(result->id_raw, padded.data(), size)) std::abort();
    // The raw `t` must itself parse as a JSON value: wrap and re-parse.
    if (!result->t_raw.empty()) {
      std::string wrapped = "{\"type\":\"ping\",\"t\":";
      wrapped.append(result->t_raw);
      wrapped.append("}");
      std::string storage = wrapped + std::string(simdjson::SIMDJSON_PADDING, ' ');
      auto again = checker.parse(std::string_view(storage.data(), wrapped.size()));
      if (!again || again->t_raw != result->t_raw) std::abort();
    }
  } else {
    if (!inside(result.error().id_raw, padded.data(), size)) std::abort();
    if (result.error().message.empty()) std::abort();
  }
  return 0;
}
