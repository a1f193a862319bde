#include "ingress/ingress_config.h"

#include <fmt/core.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/config/tests/config_parser_harness.h"

namespace mf::ingress {
namespace {

// The smallest valid file: one certificate, one backend.
const std::string minimal =
    "[[tls.certificate]]\ncertificate = \"c.pem\"\nkey = \"k.pem\"\n\n[[backend]]\naddress = \"127.0.0.1:8446\"\n";

// The flags that make a valid command line without a file.
const std::vector<std::string_view> required_flags = {"--tls-cert", "c.pem", "--tls-key", "k.pem", "--backend",
                                                      "127.0.0.1:8446"};

// The pure parser with "ingress.toml" as the only readable file.
const config_testing::ConfigParserHarness<IngressConfig> parser{
    [](std::span<const std::string_view> arguments, const ConfigFileReader& read_file) {
      return parse_ingress_arguments(arguments, read_file);
    },
    "ingress.toml", required_flags};

// With the required flags added in front.
IngressConfig ok_with_required(std::vector<std::string_view> arguments) {
  std::vector<std::string_view> all = required_flags;
  all.insert(all.end(), arguments.begin(), arguments.end());
  return parser.ok(all);
}

IngressConfig file_ok(std::string file_text) { return parser.ok({"--config", "ingress.toml"}, file_text); }

// A problem in the file after the minimal valid part (which is 6 lines).
std::string file_error_after_minimal(std::string file_text) { return parser.file_error(minimal + file_text); }

IngressConfig with_required() {
  IngressConfig config;
  config.certificates = {CertificateSetting{"c.pem", "k.pem"}};
  config.backends = {BackendSetting{.address = "127.0.0.1:8446"}};
  return config;
}

TEST(IngressConfig, DefaultsFollowTheContract) {
  IngressConfig config = parser.ok(required_flags);
  EXPECT_EQ(config, with_required());
  EXPECT_EQ(config.shards, 0u);
  EXPECT_EQ(config.log_level, "info");
  EXPECT_EQ(config.listen, "127.0.0.1:8445");
  EXPECT_EQ(config.tls_min_version, "1.2");
  EXPECT_EQ(config.alpn, std::vector<std::string>{"http/1.1"});
  EXPECT_EQ(config.handshake_timeout_ms, 5000u);
  EXPECT_EQ(config.handshakes_per_second, 0u);
  EXPECT_EQ(config.ticket_rotation_s, 3600u);
  EXPECT_EQ(config.unknown_sni, "refuse");
  EXPECT_EQ(config.balance_mode, "least-connections");
  EXPECT_EQ(config.affinity_parameter, "stream");
  EXPECT_EQ(config.affinity_load_factor_percent, 125u);
  EXPECT_EQ(config.health_path, "/healthz");
  EXPECT_EQ(config.health_interval_ms, 2000u);
  EXPECT_EQ(config.health_timeout_ms, 1000u);
  EXPECT_EQ(config.health_fall, 3u);
  EXPECT_EQ(config.health_rise, 2u);
  EXPECT_EQ(config.health_slow_start_ms, 10000u);
  EXPECT_EQ(config.max_connections, 0u);
  // Per-source limits are on by default: an idle flood from one address
  // must not take every slot (docs/security.md, "Connection admission").
  EXPECT_EQ(config.per_source_connections, 256u);
  EXPECT_EQ(config.per_source_rate, 50u);
  EXPECT_EQ(config.per_source_burst, 100u);
  EXPECT_EQ(config.per_source_ipv4_prefix, 32u);
  EXPECT_EQ(config.per_source_ipv6_prefix, 64u);
  EXPECT_EQ(config.reserve_percent, 10u);
  EXPECT_EQ(config.first_bytes_timeout_ms, 3000u);
  EXPECT_TRUE(config.admin_token_file.empty());
  EXPECT_EQ(config.buffer_bytes, 65536u);
  EXPECT_EQ(config.connect_timeout_ms, 3000u);
  EXPECT_EQ(config.idle_timeout_ms, 600000u);
  EXPECT_EQ(config.half_closed_timeout_ms, 30000u);
  EXPECT_EQ(config.drain_deadline_ms, 30000u);
  EXPECT_EQ(config.admin_listen, "127.0.0.1:9446");
  ASSERT_EQ(config.backends.size(), 1u);
  EXPECT_EQ(config.backends[0].weight, 1u);
  EXPECT_EQ(config.backends[0].max_connections, 0u);
  EXPECT_EQ(config.backends[0].check_address, "");
  EXPECT_FALSE(config.backends[0].drained);
  EXPECT_TRUE(config.config_file.empty());
  EXPECT_FALSE(config.check_config);
}

const char* every_key = R"(
[ingress]
shards = 12
log_level = "debug"

[listen]
address = "0.0.0.0:443"

[tls]
min_version = "1.3"
alpn = ["h2", "http/1.1"]
handshake_timeout_ms = 4000
handshakes_per_second = 500
ticket_rotation_s = 0
unknown_sni = "default"

[[tls.certificate]]
certificate = "/etc/mf/a.pem"
key = "/etc/mf/a.key"

[[tls.certificate]]
certificate = "/etc/mf/b.pem"
key = "/etc/mf/b.key"

[[backend]]
address = "10.0.0.1:8446"
weight = 3
max_connections = 5000
check_address = "10.0.0.1:9445"
drained = true

[[backend]]
address = "[fd00::2]:8446"

[balance]
mode = "stream-affinity"
affinity_parameter = "room_id"
affinity_load_factor_percent = 150

[health]
path = "/ready"
interval_ms = 5000
timeout_ms = 4999
fall = 5
rise = 4
slow_start_ms = 0

[limits]
max_connections = 100000
per_source_connections = 64
per_source_rate = 20
per_source_burst = 40
buffer_bytes = 131072

[timeouts]
connect_ms = 1500
idle_ms = 120000
half_closed_ms = 5000
drain_deadline_ms = 60000

[admin]
listen = "[::1]:9000"
)";

TEST(IngressConfig, EveryKeyFromTheFile) {
  IngressConfig config = file_ok(every_key);
  EXPECT_EQ(config.shards, 12u);
  EXPECT_EQ(config.log_level, "debug");
  EXPECT_EQ(config.listen, "0.0.0.0:443");
  EXPECT_EQ(config.tls_min_version, "1.3");
  EXPECT_EQ(config.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(config.handshake_timeout_ms, 4000u);
  EXPECT_EQ(config.handshakes_per_second, 500u);
  EXPECT_EQ(config.ticket_rotation_s, 0u);
  EXPECT_EQ(config.unknown_sni, "default");
  EXPECT_EQ(config.certificates, (std::vector<CertificateSetting>{{"/etc/mf/a.pem", "/etc/mf/a.key"},
                                                                  {"/etc/mf/b.pem", "/etc/mf/b.key"}}));
  EXPECT_EQ(config.backends,
            (std::vector<BackendSetting>{{"10.0.0.1:8446", 3, 5000, "10.0.0.1:9445", true}, {"[fd00::2]:8446"}}));
  EXPECT_EQ(config.balance_mode, "stream-affinity");
  EXPECT_EQ(config.affinity_parameter, "room_id");
  EXPECT_EQ(config.affinity_load_factor_percent, 150u);
  EXPECT_EQ(config.health_path, "/ready");
  EXPECT_EQ(config.health_interval_ms, 5000u);
  EXPECT_EQ(config.health_timeout_ms, 4999u);
  EXPECT_EQ(config.health_fall, 5u);
  EXPECT_EQ(config.health_rise, 4u);
  EXPECT_EQ(config.health_slow_start_ms, 0u);
  EXPECT_EQ(config.max_connections, 100000u);
  EXPECT_EQ(config.per_source_connections, 64u);
  EXPECT_EQ(config.per_source_rate, 20u);
  EXPECT_EQ(config.per_source_burst, 40u);
  EXPECT_EQ(config.buffer_bytes, 131072u);
  EXPECT_EQ(config.connect_timeout_ms, 1500u);
  EXPECT_EQ(config.idle_timeout_ms, 120000u);
  EXPECT_EQ(config.half_closed_timeout_ms, 5000u);
  EXPECT_EQ(config.drain_deadline_ms, 60000u);
  EXPECT_EQ(config.admin_listen, "[::1]:9000");
  EXPECT_EQ(config.config_file, "ingress.toml");
  EXPECT_FALSE(config.check_config);
}

TEST(IngressConfig, EveryFlag) {
  IngressConfig config =
      parser.ok({"--listen", "0.0.0.0:443", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--backend", "127.0.0.1:1",
          "--backend", "127.0.0.1:2", "--shards", "3", "--admin", "127.0.0.1:9999", "--balance", "stream-affinity",
          "--log-level", "warning", "--handshake-timeout-ms", "2000", "--connect-timeout-ms", "500",
          "--idle-timeout-ms", "60000", "--max-connections", "900", "--per-source-connections", "10",
          "--per-source-rate", "5", "--handshakes-per-second", "300", "--check-config"});
  EXPECT_EQ(config.listen, "0.0.0.0:443");
  EXPECT_EQ(config.certificates, (std::vector<CertificateSetting>{{"c.pem", "k.pem"}}));
  EXPECT_EQ(config.backends,
            (std::vector<BackendSetting>{{.address = "127.0.0.1:1"}, {.address = "127.0.0.1:2"}}));
  EXPECT_EQ(config.shards, 3u);
  EXPECT_EQ(config.admin_listen, "127.0.0.1:9999");
  EXPECT_EQ(config.balance_mode, "stream-affinity");
  EXPECT_EQ(config.log_level, "warning");
  EXPECT_EQ(config.handshake_timeout_ms, 2000u);
  EXPECT_EQ(config.connect_timeout_ms, 500u);
  EXPECT_EQ(config.idle_timeout_ms, 60000u);
  EXPECT_EQ(config.max_connections, 900u);
  EXPECT_EQ(config.per_source_connections, 10u);
  EXPECT_EQ(config.per_source_rate, 5u);
  EXPECT_EQ(config.handshakes_per_second, 300u);
  EXPECT_TRUE(config.check_config);
}

TEST(IngressConfig, FlagsOverrideTheFileWhateverTheOrder) {
  std::string file = minimal + "[ingress]\nshards = 4\nlog_level = \"debug\"\n[timeouts]\nconnect_ms = 700\n";
  IngressConfig before = parser.ok({"--shards", "9", "--config", "ingress.toml"}, file);
  IngressConfig after = parser.ok({"--config", "ingress.toml", "--shards", "9"}, file);
  for (const IngressConfig& config : {before, after}) {
    EXPECT_EQ(config.shards, 9u);               // flag wins
    EXPECT_EQ(config.log_level, "debug");       // file, no flag
    EXPECT_EQ(config.connect_timeout_ms, 700u);  // file, no flag
    EXPECT_EQ(config.idle_timeout_ms, 600000u);  // neither
    EXPECT_EQ(config.backends, (std::vector<BackendSetting>{{.address = "127.0.0.1:8446"}}));  // file
  }
  EXPECT_EQ(ok_with_required({"--shards", "2", "--shards", "3"}).shards, 3u);
}

TEST(IngressConfig, BackendFlagsReplaceTheFilesBackends) {
  std::string file = minimal + "\n[[backend]]\naddress = \"127.0.0.1:8447\"\nweight = 7\n";
  EXPECT_EQ(parser.ok({"--config", "ingress.toml"}, file).backends.size(), 2u);
  // Before or after --config, the first --backend drops the file's list and
  // each one adds a backend with the default settings.
  for (auto arguments : {std::vector<std::string_view>{"--backend", "127.0.0.1:1", "--config", "ingress.toml",
                                                       "--backend", "127.0.0.1:2"},
                         std::vector<std::string_view>{"--config", "ingress.toml", "--backend", "127.0.0.1:1",
                                                       "--backend=127.0.0.1:2"}}) {
    IngressConfig config = parser.ok(arguments, file);
    EXPECT_EQ(config.backends,
              (std::vector<BackendSetting>{{.address = "127.0.0.1:1"}, {.address = "127.0.0.1:2"}}));
    EXPECT_EQ(config.certificates, (std::vector<CertificateSetting>{{"c.pem", "k.pem"}}));  // untouched
  }
}

TEST(IngressConfig, CertificateFlagsReplaceTheFilesListWithOnePair) {
  std::string file = minimal + "[[tls.certificate]]\ncertificate = \"c2.pem\"\nkey = \"k2.pem\"\n";
  EXPECT_EQ(parser.ok({"--config", "ingress.toml"}, file).certificates.size(), 2u);
  IngressConfig config = parser.ok({"--tls-key", "fk.pem", "--config", "ingress.toml", "--tls-cert", "fc.pem"}, file);
  EXPECT_EQ(config.certificates, (std::vector<CertificateSetting>{{"fc.pem", "fk.pem"}}));
  // One pair: a second --tls-cert replaces the first.
  config = parser.ok({"--tls-cert", "a.pem", "--tls-key", "k.pem", "--tls-cert", "b.pem", "--backend", "127.0.0.1:1"});
  EXPECT_EQ(config.certificates, (std::vector<CertificateSetting>{{"b.pem", "k.pem"}}));
}

TEST(IngressConfig, TlsFlagsGoInPairs) {
  EXPECT_EQ(parser.failure({"--tls-cert", "c.pem", "--backend", "127.0.0.1:1"}).message,
            "--tls-cert: [[tls.certificate]] key (--tls-key) is missing");
  EXPECT_EQ(parser.failure({"--tls-cert", "c.pem", "--backend", "127.0.0.1:1"}).exit_code, 2);
  // Even when the file has complete certificates: the flag replaces them.
  ConfigError error = parser.failure({"--config", "ingress.toml", "--tls-key", "k.pem"}, minimal);
  EXPECT_EQ(error.message, "--tls-key: [[tls.certificate]] certificate (--tls-cert) is missing");
  EXPECT_EQ(error.exit_code, 2);
  EXPECT_EQ(parser.flag_error({"--tls-cert", ""}), "--tls-cert: needs a file name");
  EXPECT_EQ(parser.flag_error({"--tls-key", ""}), "--tls-key: needs a file name");
}

TEST(IngressConfig, CertificatesNeedBothKeysInTheFile) {
  EXPECT_EQ(parser.file_error("[[backend]]\naddress = \"127.0.0.1:1\"\n\n[[tls.certificate]]\ncertificate = \"c.pem\"\n"),
            "ingress.toml:4: [[tls.certificate]]: key is missing");
  EXPECT_EQ(parser.file_error("[[backend]]\naddress = \"127.0.0.1:1\"\n[[tls.certificate]]\ncertificate = \"c.pem\"\n"
                       "key = \"\"\n"),
            "ingress.toml:5: [[tls.certificate]] key: must not be empty");
}

TEST(IngressConfig, AtLeastOneCertificateAndOneBackend) {
  ConfigError error = parser.failure({});
  EXPECT_EQ(error.message,
            "[[tls.certificate]]: 0 given, at least 1 required (in a --config file or with --tls-cert and --tls-key)");
  EXPECT_EQ(error.exit_code, 2);
  error = parser.failure({"--tls-cert", "c", "--tls-key", "k"});
  EXPECT_EQ(error.message, "[[backend]]: 0 given, at least 1 required (in a --config file or with --backend)");
  EXPECT_EQ(error.exit_code, 2);
  EXPECT_EQ(parser.file_error("[[backend]]\naddress = \"127.0.0.1:1\"\n"),
            "ingress.toml: [[tls.certificate]]: 0 given, at least 1 required (in the file or with --tls-cert and "
            "--tls-key)");
  EXPECT_EQ(parser.file_error("[[tls.certificate]]\ncertificate = \"c\"\nkey = \"k\"\n"),
            "ingress.toml: [[backend]]: 0 given, at least 1 required (in the file or with --backend)");
  EXPECT_EQ(parser.file_error("backend = []\n[[tls.certificate]]\ncertificate = \"c\"\nkey = \"k\"\n"),
            "ingress.toml: [[backend]]: 0 given, at least 1 required (in the file or with --backend)");
  // The flags complete a file that lacks them.
  EXPECT_EQ(parser.ok({"--config", "ingress.toml", "--backend", "127.0.0.1:1"},
               "[[tls.certificate]]\ncertificate = \"c\"\nkey = \"k\"\n")
                .backends.size(),
            1u);
}

TEST(IngressConfig, AtMostSixteenCertificates) {
  std::string file = "[[backend]]\naddress = \"127.0.0.1:1\"\n";
  for (int i = 0; i < 16; ++i) file += fmt::format("[[tls.certificate]]\ncertificate = \"c{0}\"\nkey = \"k{0}\"\n", i);
  EXPECT_EQ(file_ok(file).certificates.size(), 16u);
  file += "[[tls.certificate]]\ncertificate = \"c16\"\nkey = \"k16\"\n";
  EXPECT_EQ(parser.file_error(file), "ingress.toml:51: [[tls.certificate]]: at most 16 allowed");
}

TEST(IngressConfig, BackendEntries) {
  // Inline tables are the same entries.
  IngressConfig config = file_ok(
      "backend = [{address = \"127.0.0.1:1\"}, {address = \"127.0.0.1:2\", weight = 2}]\n"
      "[[tls.certificate]]\ncertificate = \"c\"\nkey = \"k\"\n");
  EXPECT_EQ(config.backends,
            (std::vector<BackendSetting>{{.address = "127.0.0.1:1"}, {.address = "127.0.0.1:2", .weight = 2}}));
  EXPECT_EQ(file_error_after_minimal("\n[[backend]]\nweight = 2\n"), "ingress.toml:8: [[backend]]: address is missing");
  EXPECT_EQ(file_error_after_minimal("[[backend]]\naddress = \"\"\n"),
            "ingress.toml:8: [[backend]] address: must not be empty");
  EXPECT_EQ(file_error_after_minimal("[[backend]]\naddress = \"127.0.0.1:2\"\nwieght = 2\n"),
            "ingress.toml:9: unknown key 'wieght' in [[backend]] (did you mean 'weight'?)");
  EXPECT_EQ(file_error_after_minimal("[[backend]]\naddress = \"127.0.0.1:2\"\nweight = 0\n"),
            "ingress.toml:9: [[backend]] weight: must be 1..256 (got 0)");
  EXPECT_EQ(file_error_after_minimal("[[backend]]\naddress = \"127.0.0.1:2\"\nweight = 257\n"),
            "ingress.toml:9: [[backend]] weight: must be 1..256 (got 257)");
  EXPECT_EQ(file_error_after_minimal("[[backend]]\naddress = \"127.0.0.1:2\"\ndrained = 1\n"),
            "ingress.toml:9: [[backend]] drained: must be true or false (got an integer)");
  EXPECT_EQ(file_error_after_minimal("[[backend]]\naddress = 8446\n"),
            "ingress.toml:8: [[backend]] address: must be a string (got an integer)");
  EXPECT_EQ(parser.ok({"--config", "ingress.toml"},
               minimal + "max_connections = 4294967295\ncheck_address = \"127.0.0.1:9445\"\n")
                .backends[0],
            (BackendSetting{"127.0.0.1:8446", 1, 4294967295u, "127.0.0.1:9445", false}));
}

TEST(IngressConfig, TablesOfEntriesMustBeArraysOfTables) {
  EXPECT_EQ(parser.file_error("[backend]\naddress = \"127.0.0.1:1\"\n"),
            "ingress.toml:1: 'backend' must be an array of tables [[backend]] (got a table)");
  EXPECT_EQ(parser.file_error("backend = \"127.0.0.1:1\"\n"),
            "ingress.toml:1: 'backend' must be an array of tables [[backend]] (got a string)");
  EXPECT_EQ(parser.file_error("backend = [\n  \"127.0.0.1:1\",\n]\n"),
            "ingress.toml:2: 'backend' must be an array of tables [[backend]] (got a string in it)");
  EXPECT_EQ(parser.file_error("[tls.certificate]\ncertificate = \"c\"\n"),
            "ingress.toml:1: 'certificate' must be an array of tables [[tls.certificate]] (got a table)");
  EXPECT_EQ(parser.file_error("[tls]\ncertificate = \"c\"\n"),
            "ingress.toml:2: 'certificate' must be an array of tables [[tls.certificate]] (got a string)");
  EXPECT_EQ(parser.file_error("[[backends]]\naddress = \"127.0.0.1:1\"\n"),
            "ingress.toml:1: unknown table [[backends]] (did you mean 'backend'?)");
  EXPECT_EQ(parser.file_error("[[tls.certificates]]\ncertificate = \"c\"\n"),
            "ingress.toml:1: unknown key 'certificates' in [tls] (did you mean 'certificate'?)");
  EXPECT_EQ(parser.file_error("[[tls.certificate]]\ncertificate = \"c\"\nkey = \"k\"\nchain = \"x\"\n"),
            "ingress.toml:4: unknown key 'chain' in [[tls.certificate]]");
}

TEST(IngressConfig, UnknownKeysNameFileAndLine) {
  EXPECT_EQ(parser.file_error("[limits]\nmax_connections = 5\nmax_conections = 7\n"),
            "ingress.toml:3: unknown key 'max_conections' in [limits] (did you mean 'max_connections'?)");
  EXPECT_EQ(parser.file_error("[helth]\n"), "ingress.toml:1: unknown table [helth] (did you mean 'health'?)");
  EXPECT_EQ(parser.file_error("shards = 2\n"),
            "ingress.toml:1: unknown key 'shards' outside any table (it belongs in [ingress])");
  EXPECT_EQ(parser.file_error("ingress = 3\n"), "ingress.toml:1: 'ingress' must be the table [ingress] (got an integer)");
  EXPECT_EQ(parser.file_error("[[edge]]\n"), "ingress.toml:1: unknown table [[edge]]");
}

TEST(IngressConfig, FirstProblemInFileOrderIsReported) {
  // toml++ iterates keys sorted; the earliest line wins, entries included.
  EXPECT_EQ(parser.file_error("[timeouts]\nconnect_ms = 1\n[[backend]]\naddress = \"x\"\n"),
            "ingress.toml:2: [timeouts] connect_ms: must be 10..60000 (got 1)");
  EXPECT_EQ(parser.file_error("[[backend]]\naddress = \"x\"\n[timeouts]\nconnect_ms = 1\n"),
            "ingress.toml:2: [[backend]] address: bad address 'x' (expected HOST:PORT)");
  EXPECT_EQ(parser.file_error("[zzz]\n[[backend]]\nweight = 0\n"), "ingress.toml:1: unknown table [zzz]");
}

TEST(IngressConfig, TomlSyntaxErrorsNameLineAndColumn) {
  std::string error = parser.file_error("[ingress]\nshards = \n");
  EXPECT_EQ(error.rfind("ingress.toml:2:", 0), 0u) << error;
  error = parser.file_error("[[backend]\n");
  EXPECT_EQ(error.rfind("ingress.toml:1:", 0), 0u) << error;
}

using config_testing::RangeCase;

const RangeCase range_cases[] = {
    {"ingress", "shards", "--shards", -1, 257, "0..256"},
    {"tls", "handshake_timeout_ms", "--handshake-timeout-ms", 99, 600001, "100..600000"},
    {"tls", "handshakes_per_second", "--handshakes-per-second", -1, 1000001, "0..1000000"},
    {"tls", "ticket_rotation_s", nullptr, 59, 604801, "0 or 60..604800"},
    {"balance", "affinity_load_factor_percent", nullptr, 99, 1001, "100..1000"},
    {"health", "interval_ms", nullptr, 99, 600001, "100..600000"},
    {"health", "timeout_ms", nullptr, 49, 60001, "50..60000"},
    {"health", "fall", nullptr, 0, 101, "1..100"},
    {"health", "rise", nullptr, 0, 101, "1..100"},
    {"health", "slow_start_ms", nullptr, -1, 3600001, "0..3600000"},
    {"limits", "max_connections", "--max-connections", -1, 4294967296, "0..4294967295"},
    {"limits", "per_source_connections", "--per-source-connections", -1, 4294967296, "0..4294967295"},
    {"limits", "per_source_rate", "--per-source-rate", -1, 1000001, "0..1000000"},
    {"limits", "per_source_burst", nullptr, -1, 1000001, "0..1000000"},
    {"limits", "buffer_bytes", nullptr, 4095, 16777217, "4096..16777216"},
    {"timeouts", "connect_ms", "--connect-timeout-ms", 9, 60001, "10..60000"},
    {"timeouts", "idle_ms", "--idle-timeout-ms", 999, 86400001, "1000..86400000"},
    {"timeouts", "half_closed_ms", nullptr, 99, 3600001, "100..3600000"},
    {"timeouts", "drain_deadline_ms", nullptr, 999, 3600001, "1000..3600000"},
};

TEST(IngressConfig, EveryCountIsRangeCheckedInTheFile) {
  config_testing::expect_file_range_errors(range_cases, [](const std::string& text) { return file_error_after_minimal(text); }, "ingress.toml:8: ");
}

TEST(IngressConfig, EveryCountFlagIsRangeChecked) { config_testing::expect_flag_range_errors(range_cases, parser); }

TEST(IngressConfig, RangeEdgesAreAccepted) {
  IngressConfig config = file_ok(minimal +
                                 "[tls]\nticket_rotation_s = 60\nhandshake_timeout_ms = 100\n"
                                 "[balance]\naffinity_load_factor_percent = 1000\n"
                                 "[health]\ninterval_ms = 600000\ntimeout_ms = 60000\nfall = 100\nrise = 1\n"
                                 "[limits]\nbuffer_bytes = 16777216\n[timeouts]\nconnect_ms = 10\n");
  EXPECT_EQ(config.ticket_rotation_s, 60u);
  EXPECT_EQ(config.affinity_load_factor_percent, 1000u);
  EXPECT_EQ(config.buffer_bytes, 16777216u);
}

TEST(IngressConfig, ChoicesAmongFixedWords) {
  EXPECT_EQ(file_error_after_minimal("[tls]\nmin_version = \"1.1\"\n"),
            "ingress.toml:8: [tls] min_version: '1.1' is not \"1.2\" or \"1.3\"");
  EXPECT_EQ(file_error_after_minimal("[tls]\nmin_version = 1.3\n"),
            "ingress.toml:8: [tls] min_version: must be a string (got a float)");
  EXPECT_EQ(file_error_after_minimal("[tls]\nunknown_sni = \"ignore\"\n"),
            "ingress.toml:8: [tls] unknown_sni: 'ignore' is not \"refuse\" or \"default\"");
  EXPECT_EQ(parser.flag_error({"--balance", "round-robin"}),
            "--balance: 'round-robin' is not \"least-connections\" or \"stream-affinity\"");
  EXPECT_EQ(parser.flag_error({"--balance", ""}), "--balance: '' is not \"least-connections\" or \"stream-affinity\"");
  EXPECT_EQ(file_ok(minimal + "[tls]\nmin_version = \"1.3\"\n").tls_min_version, "1.3");
  EXPECT_EQ(ok_with_required({"--balance", "stream-affinity"}).balance_mode, "stream-affinity");
  EXPECT_EQ(parser.flag_error({"--log-level", "verbose"}),
            "--log-level: 'verbose' is not one of error, warning, notice, info, debug");
}

TEST(IngressConfig, AlpnProtocols) {
  EXPECT_TRUE(file_ok(minimal + "[tls]\nalpn = []\n").alpn.empty());
  std::string longest(255, 'p');
  EXPECT_EQ(file_ok(minimal + "[tls]\nalpn = [\"" + longest + "\"]\n").alpn, std::vector<std::string>{longest});
  for (std::string bad : {std::string(), std::string(256, 'p'), std::string("http 1.1"), std::string("h2\\u0001")}) {
    std::string error = file_error_after_minimal("[tls]\nalpn = [\n  \"h2\",\n  \"" + bad + "\",\n]\n");
    EXPECT_EQ(error.rfind("ingress.toml:10: [tls] alpn: '", 0), 0u) << error;
    EXPECT_NE(error.find("' must be 1..255 bytes of printable ASCII without spaces"), std::string::npos) << error;
  }
  EXPECT_EQ(file_error_after_minimal("[tls]\nalpn = \"h2\"\n"),
            "ingress.toml:8: [tls] alpn: must be an array of strings (got a string)");
}

TEST(IngressConfig, AffinityParameterAndHealthPath) {
  EXPECT_EQ(file_ok(minimal + "[balance]\naffinity_parameter = \"stream.id-2_~\"\n").affinity_parameter,
            "stream.id-2_~");
  for (std::string bad : {std::string(), std::string("a b"), std::string("a=b"), std::string("a&b"),
                          std::string("%41"), std::string(65, 'a')})
    EXPECT_EQ(file_error_after_minimal("[balance]\naffinity_parameter = \"" + bad + "\"\n"),
              "ingress.toml:8: [balance] affinity_parameter: '" + bad + "' must be 1..64 bytes of [A-Za-z0-9._~-]");
  EXPECT_EQ(file_error_after_minimal("[health]\npath = \"healthz\"\n"),
            "ingress.toml:8: [health] path: 'healthz' must start with '/'");
  EXPECT_EQ(file_error_after_minimal("[health]\npath = \"/a?b\"\n"),
            "ingress.toml:8: [health] path: '/a?b' must be printable ASCII without spaces, '?' or '#'");
  EXPECT_EQ(file_ok(minimal + "[health]\npath = \"/ready\"\n").health_path, "/ready");
}

TEST(IngressConfig, BackendAddressesAreNumericHostPort) {
  EXPECT_EQ(parser.flag_error({"--backend", "edge-1.internal:8446"}),
            "--backend: bad address 'edge-1.internal:8446' (an IPv4 or [IPv6] literal is required)");
  EXPECT_EQ(parser.flag_error({"--backend", "127.0.0.1"}), "--backend: bad address '127.0.0.1' (expected HOST:PORT)");
  EXPECT_EQ(parser.flag_error({"--backend", "127.0.0.1:0"}), "--backend: '127.0.0.1:0' needs a port (1..65535)");
  EXPECT_EQ(parser.flag_error({"--backend", "0.0.0.0:8446"}), "--backend: '0.0.0.0:8446' is not an address to connect to");
  EXPECT_EQ(parser.flag_error({"--backend", ":8446"}), "--backend: ':8446' is not an address to connect to");
  EXPECT_EQ(parser.flag_error({"--backend", "[::]:8446"}), "--backend: '[::]:8446' is not an address to connect to");
  EXPECT_EQ(parser.flag_error({"--backend", ""}), "--backend: needs HOST:PORT");
  EXPECT_EQ(parser.ok({"--tls-cert", "c", "--tls-key", "k", "--backend", "[::1]:8446"}).backends[0].address, "[::1]:8446");
  EXPECT_EQ(file_error_after_minimal("[[backend]]\naddress = \"127.0.0.1:2\"\ncheck_address = \"127.0.0.1\"\n"),
            "ingress.toml:9: [[backend]] check_address: bad address '127.0.0.1' (expected HOST:PORT)");
}

TEST(IngressConfig, BackendAddressesAreUnique) {
  EXPECT_EQ(file_error_after_minimal("[[backend]]\nweight = 2\naddress = \"127.0.0.1:8446\"\n"),
            "ingress.toml:9: [[backend]] address: '127.0.0.1:8446' is already a backend (line 6)");
  // Compared as addresses, not as text.
  EXPECT_EQ(parser.failure({"--tls-cert", "c", "--tls-key", "k", "--backend", "[::1]:1", "--backend", "[0::1]:1"}).message,
            "--backend: '[0::1]:1' is already a backend");
  parser.ok({"--tls-cert", "c", "--tls-key", "k", "--backend", "127.0.0.1:1", "--backend", "127.0.0.1:2", "--backend",
      "127.0.0.2:1"});
}

TEST(IngressConfig, HealthTimeoutIsBelowTheInterval) {
  EXPECT_EQ(file_error_after_minimal("[health]\ntimeout_ms = 2000\n"),
            "ingress.toml:8: [health] timeout_ms: must be below [health] interval_ms (2000)");
  EXPECT_EQ(file_error_after_minimal("[health]\n\ninterval_ms = 1000\n"),
            "ingress.toml:9: [health] interval_ms: must exceed [health] timeout_ms (1000)");
  EXPECT_EQ(file_ok(minimal + "[health]\ninterval_ms = 1001\n").health_interval_ms, 1001u);
}

TEST(IngressConfig, Listeners) {
  EXPECT_EQ(parser.flag_error({"--listen", ""}), "--listen: needs an address: it is the ingress's only listener");
  EXPECT_EQ(file_error_after_minimal("[listen]\naddress = \"\"\n"),
            "ingress.toml:8: [listen] address: needs an address: it is the ingress's only listener");
  EXPECT_EQ(parser.flag_error({"--listen", "localhost"}), "--listen: bad address 'localhost' (expected HOST:PORT)");
  EXPECT_EQ(parser.flag_error({"--admin", "0.0.0.0:8445"}),
            "--admin: '0.0.0.0:8445' overlaps [listen] address (--listen) ('127.0.0.1:8445')");
  EXPECT_EQ(file_error_after_minimal("[listen]\naddress = \"[::]:9446\"\n"),
            "ingress.toml:8: [listen] address: '[::]:9446' overlaps [admin] listen (--admin) ('127.0.0.1:9446')");
  EXPECT_TRUE(ok_with_required({"--admin", ""}).admin_listen.empty());
  ok_with_required({"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"});
}

TEST(IngressConfig, CommandLineMistakes) {
  EXPECT_EQ(parser.flag_error({"--bogus"}), "unknown option '--bogus' (see --help)");
  EXPECT_EQ(parser.flag_error({"--edge-id", "x"}), "unknown option '--edge-id' (see --help)");
  EXPECT_EQ(parser.flag_error({"backend"}), "unexpected argument 'backend' (see --help)");
  EXPECT_EQ(parser.flag_error({"--backend"}), "--backend needs a value");
  EXPECT_EQ(parser.flag_error({"--check-config=maybe"}), "--check-config: 'maybe' is not true or false");
  ConfigError unreadable = parser.failure({"--config", "missing.toml"});
  EXPECT_EQ(unreadable.message, "--config: cannot read 'missing.toml': No such file or directory");
  EXPECT_EQ(unreadable.exit_code, 1);
}

TEST(IngressConfig, HelpWinsAndListsEveryFlagOfTheContract) {
  ConfigError help = parser.failure({"--backend", "x", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_EQ(help.message, ingress_usage());
  EXPECT_EQ(help.message.rfind("usage: mf-ingress [--config FILE] [options]\n", 0), 0u);
  for (std::string_view flag :
       {"--config FILE", "--listen ADDR:PORT", "--tls-cert FILE", "--tls-key FILE", "--backend HOST:PORT",
        "--shards N", "--admin ADDR:PORT", "--balance MODE", "--log-level LEVEL", "--handshake-timeout-ms N",
        "--connect-timeout-ms N", "--idle-timeout-ms N", "--max-connections N", "--per-source-connections N",
        "--per-source-rate N", "--handshakes-per-second N", "--check-config", "--help"})
    EXPECT_NE(help.message.find(std::string("  ") + std::string(flag) + " "), std::string::npos) << flag;
  EXPECT_NE(help.message.find("(default 127.0.0.1:9446)"), std::string::npos);
  EXPECT_NE(help.message.find("(default least-connections)"), std::string::npos);
}

TEST(IngressConfig, DescribeReadsBackAsTheSameConfiguration) {
  for (IngressConfig config : {parser.ok(required_flags), file_ok(every_key)}) {
    std::string text = describe(config);
    auto again = parse_ingress_config_file(text, "described.toml");
    ASSERT_TRUE(again.has_value()) << again.error().message << "\n" << text;
    again->config_file = config.config_file;
    EXPECT_EQ(*again, config) << text;
  }
}

TEST(IngressConfig, DescribeWritesEntriesAfterTheirTable) {
  std::string text = describe(file_ok(every_key));
  size_t tls = text.find("\n[tls]\n");
  size_t first_certificate = text.find("\n[[tls.certificate]]\ncertificate = \"/etc/mf/a.pem\"\nkey = \"/etc/mf/a.key\"\n");
  size_t second_certificate = text.find("\n[[tls.certificate]]\ncertificate = \"/etc/mf/b.pem\"\n");
  size_t backend = text.find(
      "\n[[backend]]\naddress = \"10.0.0.1:8446\"\nweight = 3\nmax_connections = 5000\n"
      "check_address = \"10.0.0.1:9445\"\ndrained = true\n");
  size_t balance = text.find("\n[balance]\n");
  EXPECT_LT(tls, first_certificate) << text;
  EXPECT_LT(first_certificate, second_certificate) << text;
  EXPECT_LT(second_certificate, backend) << text;
  EXPECT_LT(backend, balance) << text;
  EXPECT_NE(balance, std::string::npos) << text;
}

TEST(IngressConfig, DescribeEscapesStrings) {
  IngressConfig config = parser.ok({"--tls-cert", "/tmp/a \"b\"\\c\x01.pem", "--tls-key", "k", "--backend", "127.0.0.1:1"});
  std::string text = describe(config);
  EXPECT_NE(text.find(R"(certificate = "/tmp/a \"b\"\\c\u0001.pem")"), std::string::npos) << text;
  auto again = parse_ingress_config_file(text, "described.toml");
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(again->certificates, config.certificates);
}

TEST(IngressConfig, ArgvReadsTheFileFromDisk) {
  std::string path = testing::TempDir() + "ingress_config_test.toml";
  {
    std::ofstream file(path);
    file << minimal << "[ingress]\nshards = 3\n";
  }
  std::string config_flag = "--config=" + path;
  char program[] = "mf-ingress";
  char log_flag[] = "--log-level=debug";
  char* argv[] = {program, config_flag.data(), log_flag, nullptr};
  auto config = parse_ingress_arguments(3, argv);
  std::remove(path.c_str());
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->shards, 3u);
  EXPECT_EQ(config->log_level, "debug");
  EXPECT_EQ(config->config_file, path);

  auto missing = parse_ingress_arguments(3, argv);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message, "--config: cannot read '" + path + "': No such file or directory");
  EXPECT_EQ(missing.error().exit_code, 1);
}

// "table.key" for every assignment in a TOML text written one key per line.
std::vector<std::string> settings_shown(const std::string& text) {
  std::vector<std::string> shown;
  std::istringstream lines(text);
  std::string table;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.front() == '#') continue;
    if (line.front() == '[') {
      table = line.substr(line.find_first_not_of('['), line.find(']') - line.find_first_not_of('['));
      continue;
    }
    shown.push_back(table + "." + line.substr(0, line.find(' ')));
  }
  return shown;
}

// The shipped example shows every setting at its default (with one example
// certificate and backend): it must parse, to exactly the defaults, and
// describe() must not know a key it lacks.
TEST(IngressConfig, ExampleFileIsValidAndShowsTheDefaults) {
  std::filesystem::path path =
      std::filesystem::path(__FILE__).parent_path().parent_path() / "mf-ingress.example.toml";
  std::ifstream file(path);
  ASSERT_TRUE(file.good()) << path;
  std::stringstream content;
  content << file.rdbuf();
  auto config = parse_ingress_config_file(content.str(), "mf-ingress.example.toml");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  ASSERT_EQ(config->certificates.size(), 1u);
  ASSERT_EQ(config->backends.size(), 1u);
  EXPECT_EQ(config->backends[0], BackendSetting{.address = config->backends[0].address});
  IngressConfig expected;
  expected.certificates = config->certificates;
  expected.backends = config->backends;
  expected.config_file = "mf-ingress.example.toml";
  EXPECT_EQ(*config, expected);
  EXPECT_EQ(settings_shown(content.str()), settings_shown(describe(*config)));
  EXPECT_EQ(settings_shown(content.str()).size(), 43u);
}

// A table naming another record's fields is a programming error, caught
// before anything is read.
TEST(IngressConfigDeathTest, ASchemaReadsOnlyItsOwnRecord) {
  static constexpr config::Setting entry_field[] = {
      {.table = "t", .key = "k", .field = config::field<&BackendSetting::weight>}};
  static constexpr config::Schema schema{.program = "x",
                                         .settings = entry_field,
                                         .config_file = config::field<&IngressConfig::config_file>,
                                         .record_type = &config::type_tag<IngressConfig>};
  IngressConfig record;
  EXPECT_DEATH(config::SettingsReader(schema, record), "");
  BackendSetting backend;
  EXPECT_DEATH(config::SettingsReader(schema, backend), "");
}

}  // namespace
}  // namespace mf::ingress
