// Fuzz target: the mf-ingress configuration file, [[tls.certificate]] and
// [[backend]] entries included (common/config/fuzz/config_file_fuzz_check.h states
// the property).
#include <cstdint>
#include <cstdlib>

#include "common/config/fuzz/config_file_fuzz_check.h"
#include "ingress/ingress_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using mf::ingress::IngressConfig;
  return mf::fuzz::check_config_file(
      data, size,
      [](std::string_view text, std::string_view file) { return mf::ingress::parse_ingress_config_file(text, file); },
      [](const IngressConfig& c) { return mf::ingress::describe(c); },
      [](const IngressConfig& c) {
        if (c.certificates.empty() || c.certificates.size() > 16 || c.backends.empty()) std::abort();
      });
}
