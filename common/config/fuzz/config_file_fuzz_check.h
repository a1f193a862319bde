#pragma once
// The property every configuration-file fuzz target checks: any bytes give a
// configuration or one line naming the file (exit code 1), never a crash;
// a configuration that parses is described as TOML that reads back to the
// same configuration and the same description. Aborts (a fuzzer finding)
// when the property fails.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace mf::fuzz {

// `parse(text, file_name)` returns std::expected<Config, ConfigError>;
// `describe(config)` returns the TOML text; `check(config)` aborts on what
// else a parsed configuration must satisfy.
template <class Parse, class Describe, class Check>
int check_config_file(const uint8_t* data, size_t size, Parse parse, Describe describe, Check check) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = parse(text, "fuzz.toml");
  if (!config) {
    const std::string& message = config.error().message;
    if (message.rfind("fuzz.toml", 0) != 0 || message.find('\n') != std::string::npos ||
        config.error().exit_code != 1)
      std::abort();
    return 0;
  }
  check(*config);
  std::string described = describe(*config);
  auto again = parse(described, "fuzz.toml");
  if (!again || !(*again == *config) || describe(*again) != described) std::abort();
  return 0;
}

}  // namespace mf::fuzz
