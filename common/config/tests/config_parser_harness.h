#pragma once
// What every program's configuration test does with its pure argument
// parser (edge/tests/edge_config_test.cc, ingress/tests/ingress_config_test.cc):
// run it with one readable file, expect a configuration or an error with the
// exit code docs/deploy.md names (1: the file is wrong, 2: the command line
// is), and check that every count is range-checked in the file and as a
// flag with the same words. Header-only, for tests (gtest, fmt).
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <expected>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/config_schema.h"

namespace mf::config_testing {

using config::ConfigError;
using config::ConfigFileReader;

template <class Config>
class ConfigParserHarness {
 public:
  using Parser = std::function<std::expected<Config, ConfigError>(std::span<const std::string_view>,
                                                                  const ConfigFileReader&)>;

  // file_name: the only file the parser can read; required_flags: put in
  // front of every flag_error's arguments (what a valid command line needs).
  ConfigParserHarness(Parser parse, std::string file_name, std::vector<std::string_view> required_flags = {})
      : parse_(std::move(parse)), file_name_(std::move(file_name)), required_flags_(std::move(required_flags)) {}

  // The parser with `file_text` as the content of file_name.
  std::expected<Config, ConfigError> run(std::vector<std::string_view> arguments, std::string file_text = "") const {
    ConfigFileReader reader = [&](const std::string& path) -> std::expected<std::string, std::string> {
      if (path == file_name_) return file_text;
      return std::unexpected("No such file or directory");
    };
    return parse_(arguments, reader);
  }

  Config ok(std::vector<std::string_view> arguments, std::string file_text = "") const {
    auto config = run(arguments, file_text);
    EXPECT_TRUE(config.has_value()) << (config ? "" : config.error().message);
    return config ? *config : Config{};
  }

  ConfigError failure(std::vector<std::string_view> arguments, std::string file_text = "") const {
    auto config = run(arguments, file_text);
    EXPECT_FALSE(config.has_value());
    return config ? ConfigError{"(parsed)", -1} : config.error();
  }

  // The message of a refused file (exit code 1).
  std::string file_error(std::string file_text) const {
    ConfigError error = failure({"--config", file_name_}, file_text);
    EXPECT_EQ(error.exit_code, 1) << error.message;
    return error.message;
  }

  // The message of a refused command line (exit code 2), after the required flags.
  std::string flag_error(std::vector<std::string_view> arguments) const {
    std::vector<std::string_view> all = required_flags_;
    all.insert(all.end(), arguments.begin(), arguments.end());
    ConfigError error = failure(all);
    EXPECT_EQ(error.exit_code, 2) << error.message;
    return error.message;
  }

 private:
  Parser parse_;
  std::string file_name_;
  std::vector<std::string_view> required_flags_;
};

// One count of a program's schema and the values just outside its range.
struct RangeCase {
  const char* table;
  const char* key;
  const char* flag;  // nullptr: file only
  int64_t bad_low;   // -1: no value below the range other than negatives
  int64_t bad_high;
  const char* range;  // as the message writes it, "100..600000"
};

// Every case refused in the file with "<location>[table] key: must be
// <range> (got <value>)"; file_error(table_and_key_line) returns the message
// for a file holding that line (the caller adds what its file needs).
inline void expect_file_range_errors(std::span<const RangeCase> cases,
                                     const std::function<std::string(const std::string&)>& file_error,
                                     std::string_view location) {
  for (const RangeCase& c : cases) {
    std::vector<int64_t> bad = {-5, c.bad_high};
    if (c.bad_low >= 0) bad.push_back(c.bad_low);
    for (int64_t value : bad)
      EXPECT_EQ(file_error(fmt::format("[{}]\n{} = {}\n", c.table, c.key, value)),
                fmt::format("{}[{}] {}: must be {} (got {})", location, c.table, c.key, c.range, value));
  }
}

// Every case with a flag refused on the command line: out of range, beyond
// 32 bits, negative, not a number, empty.
template <class Config>
void expect_flag_range_errors(std::span<const RangeCase> cases, const ConfigParserHarness<Config>& parser) {
  for (const RangeCase& c : cases) {
    if (!c.flag) continue;
    std::string high = std::to_string(c.bad_high);
    if (c.bad_high <= UINT32_MAX)
      EXPECT_EQ(parser.flag_error({c.flag, high}), fmt::format("{}: must be {} (got {})", c.flag, c.range, high));
    else
      EXPECT_EQ(parser.flag_error({c.flag, high}), fmt::format("{}: '{}' is not a number", c.flag, high));
    if (c.bad_low >= 0) {
      std::string low = std::to_string(c.bad_low);
      EXPECT_EQ(parser.flag_error({c.flag, low}), fmt::format("{}: must be {} (got {})", c.flag, c.range, low));
    }
    for (std::string_view junk : {"-1", "12abc", ""})
      EXPECT_EQ(parser.flag_error({c.flag, junk}), fmt::format("{}: '{}' is not a number", c.flag, junk));
  }
}

}  // namespace mf::config_testing
