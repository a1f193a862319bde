// Fuzz target: the mf-edge configuration file. Any bytes must give a
// configuration or one line naming the file, never a crash. A configuration
// that parses must be described as TOML that reads back to the same
// configuration.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "edge/edge_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = mf::edge::parse_edge_config_file(text, "fuzz.toml");
  if (!config) {
    const std::string& message = config.error().message;
    if (message.rfind("fuzz.toml", 0) != 0 || message.find('\n') != std::string::npos ||
        config.error().exit_code != 1)
      std::abort();
    return 0;
  }
  std::string described = mf::edge::describe(*config);
  auto again = mf::edge::parse_edge_config_file(described, "fuzz.toml");
  if (!again || !(*again == *config) || mf::edge::describe(*again) != described) std::abort();
  return 0;
}
