// Fuzz target: the mf-edge configuration file (common/config/fuzz/config_file_fuzz_check.h
// states the property).
#include <cstdint>

#include "common/config/fuzz/config_file_fuzz_check.h"
#include "edge/edge_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return mf::fuzz::check_config_file(
      data, size, [](std::string_view text, std::string_view file) { return mf::edge::parse_edge_config_file(text, file); },
      [](const mf::edge::EdgeConfig& c) { return mf::edge::describe(c); }, [](const mf::edge::EdgeConfig&) {});
}
