#pragma once
// mf-sign settings: the TOML file given with --config, then the flags
// (common/config/config_schema.h's rules, shared with mf-edge and mf-ingress).
// docs/origin.md explains each; --help lists them with their defaults.
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>

#include "common/config/config_schema.h"

namespace mf::origin {

struct SignConfig {
  // [sign]
  std::string key;         // the P-256 private key (PEM)
  std::string dir;         // the packager's output directory
  std::string stream;      // the streamId; empty: the directory's name
  std::string kid;         // empty: derived from the public key
  uint32_t ttl_s = 0;      // expiresAt horizon; 0: 3 target durations live, a day once ended
  bool cmaf_chunks = false;
  bool watch = false;
  std::string log_level = "info";

  // Not settings: what the process was asked to do.
  std::string generate_key;  // --generate-key FILE
  std::string verify_key;    // --verify PUBKEY.pem
  bool check_config = false;
  std::string config_file;

  bool operator==(const SignConfig&) const = default;
};

// `arguments` without the program name; the file is read only through
// `read_file`; --help returns the usage text with exit_code 0.
std::expected<SignConfig, config::ConfigError> parse_sign_arguments(std::span<const std::string_view> arguments,
                                                                    const config::ConfigFileReader& read_file);
// From the process's command line, files read from disk; --help prints the
// usage and returns an empty message with exit_code 0.
std::expected<SignConfig, config::ConfigError> parse_sign_arguments(int argc, char** argv);

std::string describe(const SignConfig& config);

}  // namespace mf::origin
