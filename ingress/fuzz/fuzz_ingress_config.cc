// Fuzz target: the mf-ingress configuration file. Any bytes must give a
// configuration or one line naming the file, never a crash. A configuration
// that parses must be described as TOML that reads back to the same
// configuration, [[tls.certificate]] and [[backend]] entries included.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ingress/ingress_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = mf::ingress::parse_ingress_config_file(text, "fuzz.toml");
  if (!config) {
    const std::string& message = config.error().message;
    if (message.rfind("fuzz.toml", 0) != 0 || message.find('\n') != std::string::npos ||
        config.error().exit_code != 1)
      std::abort();
    return 0;
  }
  if (config->certificates.empty() || config->certificates.size() > 16 || config->backends.empty()) std::abort();
  std::string described = mf::ingress::describe(*config);
  auto again = mf::ingress::parse_ingress_config_file(described, "fuzz.toml");
  if (!again || !(*again == *config) || mf::ingress::describe(*again) != described) std::abort();
  return 0;
}
