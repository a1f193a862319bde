// Arbitrary bytes as the text of an INFO reply: cluster_enabled_of() never
// reads outside it, and its verdict is that of the first line starting with
// "cluster_enabled:" (found here by a plain scan). Aborts when that breaks.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "common/valkey/valkey_seed_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::optional<bool> got = mf::valkey::cluster_enabled_of(text);
  std::optional<bool> expected;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find('\n', at);
    std::string_view line = text.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.starts_with("cluster_enabled:")) {
      std::string_view value = line.substr(16);
      if (value == "1" || value == "0") expected = value == "1";
      break;
    }
    if (end == std::string_view::npos) break;
    at = end + 1;
  }
  if (got != expected) std::abort();
  return 0;
}
