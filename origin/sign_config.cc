#include "origin/sign_config.h"

#include <fmt/core.h>

#include "origin/jws_compact.h"
#include "origin/rendition_name.h"

namespace mf::origin {
namespace {

using config::field;
using config::Setting;

std::expected<void, std::string> check_stream(std::string_view value, const Setting&, bool from_flag) {
  if (value.empty() && !from_flag) return {};
  if (!is_protocol_identifier(value))
    return std::unexpected(fmt::format("{} is not 1..128 bytes of [A-Za-z0-9._:-]", config::printable(value)));
  return {};
}

std::expected<void, std::string> check_kid(std::string_view value, const Setting&, bool from_flag) {
  if (value.empty() && !from_flag) return {};
  if (value.size() > max_kid_bytes || !is_protocol_identifier(value))
    return std::unexpected(
        fmt::format("{} is not 1..{} bytes of [A-Za-z0-9._:-]", config::printable(value), max_kid_bytes));
  return {};
}

constexpr Setting settings[] = {
    {.table = "sign", .key = "key", .flag = "--key", .metavar = "KEY.pem",
     .help = "the ECDSA P-256 private key (PEM); it stays on this machine", .field = field<&SignConfig::key>,
     .check = config::check_file},
    {.table = "sign", .key = "dir", .flag = "--dir", .metavar = "DIR",
     .help = "the packager's output: every media playlist under it is signed", .field = field<&SignConfig::dir>,
     .check = config::check_file},
    {.table = "sign", .key = "stream", .flag = "--stream", .metavar = "ID",
     .help = "the streamId players join with; empty: DIR's name", .field = field<&SignConfig::stream>,
     .check = check_stream},
    {.table = "sign", .key = "kid", .flag = "--kid", .metavar = "KID",
     .help = "the key's name in the manifests; empty: 16 characters of its public key's SHA-256",
     .field = field<&SignConfig::kid>, .check = check_kid},
    {.table = "sign", .key = "ttl_s", .flag = "--ttl-s", .metavar = "N",
     .help = "expiresAt - issuedAt; 0: 3 target durations (live), a day (EXT-X-ENDLIST)",
     .field = field<&SignConfig::ttl_s>, .high = 31 * 86400},
    {.table = "sign", .key = "cmaf_chunks", .flag = "--cmaf-chunks",
     .help = "also list each segment's moof+mdat chunks", .field = field<&SignConfig::cmaf_chunks>},
    {.table = "sign", .key = "watch", .flag = "--watch",
     .help = "keep running and re-sign each playlist when it changes", .field = field<&SignConfig::watch>},
    {.table = "sign", .key = "log_level", .flag = "--log-level", .metavar = "LEVEL",
     .help = "error|warning|notice|info|debug", .field = field<&SignConfig::log_level>,
     .check = config::check_log_level},
    {.flag = "--generate-key", .metavar = "FILE",
     .help = "write a new P-256 key to FILE, print its public key (JWK and PEM), exit",
     .field = field<&SignConfig::generate_key>, .check = config::check_file},
    {.flag = "--verify", .metavar = "PUBKEY.pem",
     .help = "check every manifest under DIR against the files and this public key; one line per problem",
     .field = field<&SignConfig::verify_key>, .check = config::check_file},
    {.flag = "--check-config", .help = "validate the settings and the key, print the effective configuration, exit",
     .field = field<&SignConfig::check_config>},
};

constexpr config::Schema schema{.program = "mf-sign",
                                .settings = settings,
                                .config_file = field<&SignConfig::config_file>,
                                .record_type = &config::type_tag<SignConfig>};

std::expected<void, config::ConfigError> check_together(const config::SettingsReader& reader, const SignConfig& c) {
  if (!c.generate_key.empty()) {
    if (!c.verify_key.empty()) return std::unexpected(config::ConfigError{"--generate-key: not with --verify"});
    return {};
  }
  if (c.dir.empty()) return std::unexpected(reader.error_at(&c.dir, "needed: the directory to sign"));
  if (!c.verify_key.empty()) {
    if (c.watch) return std::unexpected(config::ConfigError{"--verify: not with --watch"});
    return {};
  }
  if (c.key.empty()) return std::unexpected(reader.error_at(&c.key, "needed: the private key that signs"));
  return {};
}

}  // namespace

std::expected<SignConfig, config::ConfigError> parse_sign_arguments(std::span<const std::string_view> arguments,
                                                                    const config::ConfigFileReader& read_file) {
  SignConfig config;
  config::SettingsReader reader(schema, config);
  if (auto ok = reader.read_arguments(arguments, read_file); !ok) return std::unexpected(ok.error());
  if (auto ok = check_together(reader, config); !ok) return std::unexpected(ok.error());
  return config;
}

std::expected<SignConfig, config::ConfigError> parse_sign_arguments(int argc, char** argv) {
  std::expected<SignConfig, config::ConfigError> (*parse)(std::span<const std::string_view>,
                                                          const config::ConfigFileReader&) = parse_sign_arguments;
  return config::parse_process_arguments(argc, argv, parse);
}

std::string describe(const SignConfig& config) { return config::describe(schema, &config); }

}  // namespace mf::origin
