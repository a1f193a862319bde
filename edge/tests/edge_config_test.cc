#include "edge/edge_config.h"

#include <fmt/core.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "common/config/tests/config_parser_harness.h"

namespace mf::edge {
namespace {

// The pure parser with "edge.toml" as the only readable file.
const config_testing::ConfigParserHarness<EdgeConfig> parser{
    [](std::span<const std::string_view> arguments, const ConfigFileReader& read_file) {
      return parse_edge_arguments(arguments, read_file);
    },
    "edge.toml"};


TEST(EdgeConfig, NoFileNoFlagsGivesDevelopmentDefaults) {
  EdgeConfig config = parser.ok({});
  EXPECT_EQ(config, EdgeConfig{});
  EXPECT_EQ(config.listen, "127.0.0.1:8445");
  EXPECT_EQ(config.plain_listen, "");
  EXPECT_FALSE(config.proxy_protocol);
  EXPECT_EQ(config.websocket_path, "/ws");
  EXPECT_TRUE(config.tls_certificate.empty());
  EXPECT_TRUE(config.tls_key.empty());
  EXPECT_EQ(config.shards, 0u);
  EXPECT_EQ(config.log_level, "info");
  EXPECT_TRUE(config.edge_id.empty());
  EXPECT_EQ(config.max_connections_per_shard, 0u);
  EXPECT_EQ(config.max_connections, 0u);
  EXPECT_EQ(config.max_message_bytes, 16384u);
  EXPECT_EQ(config.per_source_connections, 256u);
  EXPECT_EQ(config.per_source_rate, 50u);
  EXPECT_EQ(config.per_source_burst, 100u);
  EXPECT_EQ(config.messages_per_second, 50u);
  EXPECT_EQ(config.message_burst, 100u);
  EXPECT_EQ(config.error_limit, 20u);
  EXPECT_EQ(config.error_window_ms, 10000u);
  EXPECT_EQ(config.send_queue_bytes, 262144u);
  EXPECT_EQ(config.handshake_timeout_ms, 10000u);
  EXPECT_EQ(config.heartbeat_ms, 15000u);
  EXPECT_EQ(config.drain_ms, 10000u);
  EXPECT_EQ(config.drain_deadline_ms, 30000u);
  EXPECT_TRUE(config.allowed_origins.empty());
  EXPECT_FALSE(config.require_origin);
  EXPECT_TRUE(config.jwt_secret_file.empty());
  EXPECT_TRUE(config.policy_file.empty());
  EXPECT_TRUE(config.policy_watch);
  EXPECT_EQ(config.admin_listen, "127.0.0.1:9445");
  EXPECT_TRUE(config.config_file.empty());
  EXPECT_FALSE(config.check_config);
}

const char* every_key = R"(
[edge]
id = "edge-7.eu:a"
shards = 12
log_level = "debug"

[listen]
public = "0.0.0.0:443"
plain = "127.0.0.1:8450"
proxy_protocol = true
websocket_path = "/signal/v1"

[tls]
certificate = "/etc/mf/cert.pem"
key = "/etc/mf/key.pem"

[limits]
max_connections_per_shard = 5000
max_connections = 40000
max_message_bytes = 32768
per_source_connections = 1000
per_source_rate = 7
per_source_burst = 9
messages_per_second = 30
message_burst = 60
error_limit = 5
error_window_ms = 2000
send_queue_bytes = 1_048_576

[timeouts]
handshake_ms = 4000
heartbeat_ms = 20000
drain_ms = 5000
drain_deadline_ms = 9000

[admission]
allowed_origins = ["https://player.example.com", "http://localhost:3000", "https://[::1]:8443"]
require_origin = true
jwt_secret_file = "/etc/mf/jwt.key"

[policy]
file = "/etc/mf/policy.json"
watch = false

[admin]
listen = "[::1]:9000"
)";

TEST(EdgeConfig, EveryKeyFromTheFile) {
  EdgeConfig config = parser.ok({"--config", "edge.toml"}, every_key);
  EXPECT_EQ(config.edge_id, "edge-7.eu:a");
  EXPECT_EQ(config.shards, 12u);
  EXPECT_EQ(config.log_level, "debug");
  EXPECT_EQ(config.listen, "0.0.0.0:443");
  EXPECT_EQ(config.plain_listen, "127.0.0.1:8450");
  EXPECT_TRUE(config.proxy_protocol);
  EXPECT_EQ(config.websocket_path, "/signal/v1");
  EXPECT_EQ(config.tls_certificate, "/etc/mf/cert.pem");
  EXPECT_EQ(config.tls_key, "/etc/mf/key.pem");
  EXPECT_EQ(config.max_connections_per_shard, 5000u);
  EXPECT_EQ(config.max_connections, 40000u);
  EXPECT_EQ(config.max_message_bytes, 32768u);
  EXPECT_EQ(config.per_source_connections, 1000u);
  EXPECT_EQ(config.per_source_rate, 7u);
  EXPECT_EQ(config.per_source_burst, 9u);
  EXPECT_EQ(config.messages_per_second, 30u);
  EXPECT_EQ(config.message_burst, 60u);
  EXPECT_EQ(config.error_limit, 5u);
  EXPECT_EQ(config.error_window_ms, 2000u);
  EXPECT_EQ(config.send_queue_bytes, 1048576u);
  EXPECT_EQ(config.handshake_timeout_ms, 4000u);
  EXPECT_EQ(config.heartbeat_ms, 20000u);
  EXPECT_EQ(config.drain_ms, 5000u);
  EXPECT_EQ(config.drain_deadline_ms, 9000u);
  EXPECT_EQ(config.allowed_origins,
            (std::vector<std::string>{"https://player.example.com", "http://localhost:3000", "https://[::1]:8443"}));
  EXPECT_TRUE(config.require_origin);
  EXPECT_EQ(config.jwt_secret_file, "/etc/mf/jwt.key");
  EXPECT_EQ(config.policy_file, "/etc/mf/policy.json");
  EXPECT_FALSE(config.policy_watch);
  EXPECT_EQ(config.admin_listen, "[::1]:9000");
  EXPECT_EQ(config.config_file, "edge.toml");
  EXPECT_FALSE(config.check_config);
}

TEST(EdgeConfig, EveryFlag) {
  EdgeConfig config = parser.ok({"--listen", "0.0.0.0:443", "--plain-listen", "127.0.0.1:8450", "--proxy-protocol",
                          "--tls-cert", "c.pem", "--tls-key", "k.pem", "--shards", "3", "--max-connections", "900",
                          "--max-connections-per-shard", "300", "--heartbeat-ms", "1000", "--handshake-timeout-ms",
                          "2000", "--max-message-bytes", "4096", "--ws-path", "/x", "--edge-id", "e1", "--admin",
                          "127.0.0.1:9999", "--policy", "p.json", "--jwt-secret-file", "j.key", "--allowed-origin",
                          "https://a.example", "--allowed-origin", "https://b.example", "--log-level", "warning",
                          "--drain-ms", "2500", "--check-config"});
  EXPECT_EQ(config.listen, "0.0.0.0:443");
  EXPECT_EQ(config.plain_listen, "127.0.0.1:8450");
  EXPECT_TRUE(config.proxy_protocol);
  EXPECT_EQ(config.tls_certificate, "c.pem");
  EXPECT_EQ(config.tls_key, "k.pem");
  EXPECT_EQ(config.shards, 3u);
  EXPECT_EQ(config.max_connections, 900u);
  EXPECT_EQ(config.max_connections_per_shard, 300u);
  EXPECT_EQ(config.heartbeat_ms, 1000u);
  EXPECT_EQ(config.handshake_timeout_ms, 2000u);
  EXPECT_EQ(config.max_message_bytes, 4096u);
  EXPECT_EQ(config.websocket_path, "/x");
  EXPECT_EQ(config.edge_id, "e1");
  EXPECT_EQ(config.admin_listen, "127.0.0.1:9999");
  EXPECT_EQ(config.policy_file, "p.json");
  EXPECT_EQ(config.jwt_secret_file, "j.key");
  EXPECT_EQ(config.allowed_origins, (std::vector<std::string>{"https://a.example", "https://b.example"}));
  EXPECT_EQ(config.log_level, "warning");
  EXPECT_EQ(config.drain_ms, 2500u);
  EXPECT_TRUE(config.check_config);
}

TEST(EdgeConfig, InlineValueKeepsLaterEquals) {
  EXPECT_EQ(parser.flag_error({"--edge-id=a=b"}), "--edge-id: 'a=b' must be 1..128 bytes of [A-Za-z0-9._:-]");
  EdgeConfig config = parser.ok({"--ws-path=/a=b", "--plain-listen=127.0.0.1:1", "--proxy-protocol=true"});
  EXPECT_EQ(config.websocket_path, "/a=b");
  EXPECT_TRUE(config.proxy_protocol);
  config = parser.ok({"--plain-listen=127.0.0.1:1", "--proxy-protocol", "--proxy-protocol=false", "--check-config=false"});
  EXPECT_FALSE(config.proxy_protocol);
  EXPECT_FALSE(config.check_config);
  EXPECT_EQ(parser.flag_error({"--proxy-protocol=yes"}), "--proxy-protocol: 'yes' is not true or false");
}

TEST(EdgeConfig, FlagsOverrideTheFileWhateverTheOrder) {
  std::string file = "[edge]\nshards = 4\nlog_level = \"debug\"\n[limits]\nmax_message_bytes = 8192\n";
  EdgeConfig before = parser.ok({"--shards", "9", "--config", "edge.toml"}, file);
  EdgeConfig after = parser.ok({"--config", "edge.toml", "--shards", "9"}, file);
  for (const EdgeConfig& config : {before, after}) {
    EXPECT_EQ(config.shards, 9u);                  // flag wins
    EXPECT_EQ(config.log_level, "debug");          // file, no flag
    EXPECT_EQ(config.max_message_bytes, 8192u);    // file, no flag
    EXPECT_EQ(config.heartbeat_ms, 15000u);        // neither
  }
  // The last of two flags wins.
  EXPECT_EQ(parser.ok({"--shards", "2", "--shards", "3"}).shards, 3u);
}

TEST(EdgeConfig, AllowedOriginFlagsReplaceTheFilesList) {
  std::string file = "[admission]\nallowed_origins = [\"https://file.example\"]\n";
  EXPECT_EQ(parser.ok({"--config", "edge.toml"}, file).allowed_origins, std::vector<std::string>{"https://file.example"});
  EXPECT_EQ(parser.ok({"--allowed-origin", "https://one.example", "--config", "edge.toml", "--allowed-origin",
                "https://two.example"},
               file)
                .allowed_origins,
            (std::vector<std::string>{"https://one.example", "https://two.example"}));
}

TEST(EdgeConfig, EmptyFileGivesTheDefaults) {
  EdgeConfig expected;
  expected.config_file = "edge.toml";
  EXPECT_EQ(parser.ok({"--config", "edge.toml"}, ""), expected);
  EXPECT_EQ(parser.ok({"--config", "edge.toml"}, "# nothing\n[edge]\n[limits]\n"), expected);
}

TEST(EdgeConfig, EmptyValuesInTheFileMeanUnset) {
  EdgeConfig config = parser.ok({"--config", "edge.toml", "--plain-listen", "127.0.0.1:8450"},
                         "[edge]\nid = \"\"\n[listen]\npublic = \"\"\n[tls]\ncertificate = \"\"\nkey = \"\"\n"
                         "[admin]\nlisten = \"\"\n[policy]\nfile = \"\"\n");
  EXPECT_TRUE(config.edge_id.empty());
  EXPECT_TRUE(config.listen.empty());
  EXPECT_TRUE(config.admin_listen.empty());
  EXPECT_TRUE(config.policy_file.empty());
  // Listeners can be disabled from the command line too.
  config = parser.ok({"--admin", "", "--listen", "", "--plain-listen", "127.0.0.1:8450"});
  EXPECT_TRUE(config.admin_listen.empty());
  EXPECT_TRUE(config.listen.empty());
}

TEST(EdgeConfig, UnknownKeysNameFileAndLine) {
  EXPECT_EQ(parser.file_error("[limits]\nmax_connections = 5\nmax_conections = 7\n"),
            "edge.toml:3: unknown key 'max_conections' in [limits] (did you mean 'max_connections'?)");
  EXPECT_EQ(parser.file_error("\n\n[edge]\nfoo = 1\n"), "edge.toml:4: unknown key 'foo' in [edge]");
  EXPECT_EQ(parser.file_error("[limit]\nmax_connections = 5\n"), "edge.toml:1: unknown table [limit] (did you mean 'limits'?)");
  EXPECT_EQ(parser.file_error("[database]\n"), "edge.toml:1: unknown table [database]");
  EXPECT_EQ(parser.file_error("shards = 2\n"), "edge.toml:1: unknown key 'shards' outside any table (it belongs in [edge])");
  EXPECT_EQ(parser.file_error("[limits.per_source]\nrate = 3\n"), "edge.toml:1: unknown key 'per_source' in [limits]");
  // Dotted keys are the same tables.
  EXPECT_EQ(parser.ok({"--config", "edge.toml"}, "edge.shards = 6\n").shards, 6u);
  EXPECT_EQ(parser.file_error("edge.shard = 6\n"), "edge.toml:1: unknown key 'shard' in [edge] (did you mean 'shards'?)");
}

TEST(EdgeConfig, FirstProblemInFileOrderIsReported) {
  // toml++ iterates keys sorted; the report must still be the earliest line.
  EXPECT_EQ(parser.file_error("[timeouts]\nheartbeat_ms = 1\n[edge]\nzzz = 1\n"),
            "edge.toml:2: [timeouts] heartbeat_ms: must be 100..600000 (got 1)");
  EXPECT_EQ(parser.file_error("[zzz]\n[edge]\nshards = 999\n"), "edge.toml:1: unknown table [zzz]");
}

TEST(EdgeConfig, TomlSyntaxErrorsNameLineAndColumn) {
  std::string error = parser.file_error("[edge]\nshards = \n");
  EXPECT_EQ(error.rfind("edge.toml:2:", 0), 0u) << error;
  error = parser.file_error("[edge]\nshards = 1\nshards = 2\n");
  EXPECT_EQ(error.rfind("edge.toml:3:", 0), 0u) << error;
  error = parser.file_error("[edge\n");
  EXPECT_EQ(error.rfind("edge.toml:1:", 0), 0u) << error;
}

// Malformed files that toml++ 3.3 mishandles (an assertion on table headers,
// an unreachable branch for non-ASCII characters between tokens, raw input
// quoted in its message) still give one line naming the file and line.
TEST(EdgeConfig, MalformedFilesGiveOneLine) {
  for (std::string text : {"[@]\n", "[\x01" "edge]\n", "[[=]]\n", "[ #]\n", "[edge]\nshards =\u00e9 1\n",
                           "[edge]\nshards = 1\u3001\n", "[policy]\nwatch = fal\n"}) {
    std::string error = parser.file_error(text);
    EXPECT_EQ(error.rfind(text.starts_with("[edge]") || text.starts_with("[policy]") ? "edge.toml:2:" : "edge.toml:1:",
                          0),
              0u)
        << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

TEST(EdgeConfig, FileTypeErrors) {
  EXPECT_EQ(parser.file_error("[edge]\nshards = \"4\"\n"), "edge.toml:2: [edge] shards: must be an integer (got a string)");
  EXPECT_EQ(parser.file_error("[edge]\nshards = 4.0\n"), "edge.toml:2: [edge] shards: must be an integer (got a float)");
  EXPECT_EQ(parser.file_error("[edge]\nlog_level = 3\n"), "edge.toml:2: [edge] log_level: must be a string (got an integer)");
  EXPECT_EQ(parser.file_error("[listen]\nproxy_protocol = \"yes\"\n"),
            "edge.toml:2: [listen] proxy_protocol: must be true or false (got a string)");
  EXPECT_EQ(parser.file_error("[admission]\nallowed_origins = \"https://a.example\"\n"),
            "edge.toml:2: [admission] allowed_origins: must be an array of strings (got a string)");
  EXPECT_EQ(parser.file_error("[admission]\nallowed_origins = [\n  \"https://a.example\",\n  7,\n]\n"),
            "edge.toml:4: [admission] allowed_origins: must be an array of strings (got an integer in it)");
  EXPECT_EQ(parser.file_error("edge = 3\n"), "edge.toml:1: 'edge' must be the table [edge] (got an integer)");
  EXPECT_EQ(parser.file_error("[timeouts]\ndrain_ms = 1979-05-27\n"),
            "edge.toml:2: [timeouts] drain_ms: must be an integer (got a date)");
}

using config_testing::RangeCase;

const RangeCase range_cases[] = {
    {"edge", "shards", "--shards", -1, 257, "0..256"},
    {"tls", "ticket_rotation_s", nullptr, 59, 604801, "0 or 60..604800"},
    {"limits", "max_connections_per_shard", "--max-connections-per-shard", 15, 1048577, "0 or 16..1048576"},
    {"limits", "max_connections", "--max-connections", -1, 4294967296, "0..4294967295"},
    {"limits", "max_message_bytes", "--max-message-bytes", 255, 16777217, "256..16777216"},
    {"limits", "per_source_connections", nullptr, -1, 4294967296, "0..4294967295"},
    {"limits", "per_source_rate", nullptr, -1, 1000001, "0..1000000"},
    {"limits", "per_source_burst", nullptr, 0, 1000001, "1..1000000"},
    {"limits", "messages_per_second", nullptr, 0, 1000001, "1..1000000"},
    {"limits", "message_burst", nullptr, 0, 1000001, "1..1000000"},
    {"limits", "error_limit", nullptr, 0, 255, "1..254"},
    {"limits", "error_window_ms", nullptr, 99, 3600001, "100..3600000"},
    {"limits", "send_queue_bytes", nullptr, 4095, 1073741825, "4096..1073741824"},
    {"timeouts", "handshake_ms", "--handshake-timeout-ms", 99, 600001, "100..600000"},
    {"timeouts", "heartbeat_ms", "--heartbeat-ms", 99, 600001, "100..600000"},
    {"timeouts", "drain_ms", "--drain-ms", -1, 600001, "0..600000"},
    {"timeouts", "drain_deadline_ms", nullptr, 999, 3600001, "1000..3600000"},
};

TEST(EdgeConfig, EveryCountIsRangeCheckedInTheFile) {
  config_testing::expect_file_range_errors(range_cases, [](const std::string& text) { return parser.file_error("# settings\n" + text); }, "edge.toml:3: ");
}

TEST(EdgeConfig, EveryCountFlagIsRangeChecked) { config_testing::expect_flag_range_errors(range_cases, parser); }

TEST(EdgeConfig, TrackerSettings) {
  EdgeConfig defaults = parser.ok({});
  EXPECT_EQ(defaults.tracker_path, "/announce");
  EXPECT_EQ(defaults.tracker_max_offers, 10u);
  EXPECT_EQ(defaults.tracker_interval_s, 120u);
  EXPECT_EQ(defaults.tracker_offer_ttl_s, 120u);
  EXPECT_EQ(defaults.tracker_max_message_bytes, 65536u);
  EXPECT_EQ(parser.ok({"--tracker-path", ""}).tracker_path, "");
  EXPECT_EQ(parser.ok({"--tracker-path", "/tracker", "--tracker-interval-s", "30"}).tracker_interval_s, 30u);
  EXPECT_NE(parser.failure({"--tracker-path", "/ws"}).message.find("must differ"), std::string::npos);
  parser.failure({"--tracker-path", "/healthz"});
  parser.failure({"--tracker-path", "announce"});
  // The send queue must hold two tracker messages, unless the tracker is off.
  EXPECT_FALSE(parse_edge_config_file("[limits]\nsend_queue_bytes = 65536\n", "e.toml").has_value());
  EXPECT_TRUE(parse_edge_config_file("[limits]\nsend_queue_bytes = 65536\n[tracker]\npath = \"\"\n", "e.toml"));
  EXPECT_FALSE(parse_edge_config_file("[tracker]\nmax_offers = 65\n", "e.toml").has_value());
}

TEST(EdgeConfig, RangeEdgesAreAccepted) {
  EdgeConfig config = parser.ok({"--config", "edge.toml"},
                         "[edge]\nshards = 256\n[limits]\nmax_connections_per_shard = 16\nmax_message_bytes = 256\n"
                         "per_source_rate = 0\nper_source_connections = 0\nper_source_burst = 1\n"
                         "send_queue_bytes = 4096\n[timeouts]\nheartbeat_ms = 100\nhandshake_ms = 600000\n"
                         "drain_ms = 0\ndrain_deadline_ms = 1000\n"
                         "[tracker]\nmax_message_bytes = 256\nmax_offers = 1\ninterval_s = 1\noffer_ttl_s = 1\n");
  EXPECT_EQ(config.shards, 256u);
  EXPECT_EQ(config.tracker_max_offers, 1u);
  EXPECT_EQ(config.max_connections_per_shard, 16u);
  EXPECT_EQ(config.per_source_rate, 0u);
  EXPECT_EQ(config.drain_ms, 0u);
  EXPECT_EQ(parser.ok({"--max-connections", "4294967295"}).max_connections, 4294967295u);
}

TEST(EdgeConfig, Addresses) {
  EXPECT_EQ(parser.file_error("[listen]\npublic = \"localhost\"\n"),
            "edge.toml:2: [listen] public: bad address 'localhost' (expected HOST:PORT)");
  EXPECT_EQ(parser.flag_error({"--listen", "1.2.3.4:99999"}), "--listen: bad port in '1.2.3.4:99999'");
  EXPECT_EQ(parser.flag_error({"--plain-listen", "example.com:80"}),
            "--plain-listen: bad address 'example.com:80' (an IPv4 or [IPv6] literal is required)");
  EXPECT_EQ(parser.file_error("[admin]\nlisten = \"9445\"\n"),
            "edge.toml:2: [admin] listen: bad address '9445' (expected HOST:PORT)");
  EXPECT_EQ(parser.ok({"--listen", "[::1]:8445"}).listen, "[::1]:8445");
}

TEST(EdgeConfig, Valkey) {
  EdgeConfig defaults = parser.ok({});
  EXPECT_EQ(defaults.valkey_address, "");  // alone
  EXPECT_EQ(defaults.valkey_key_prefix, "mf:");
  EXPECT_EQ(defaults.valkey_presence_ttl_ms, 15000u);
  EXPECT_EQ(defaults.valkey_refresh_ms, 5000u);
  EdgeConfig flags = parser.ok({"--valkey", "127.0.0.1:6379", "--valkey-prefix", "test:", "--valkey-ttl-ms", "1500"});
  EXPECT_EQ(flags.valkey_address, "127.0.0.1:6379");
  EXPECT_EQ(flags.valkey_key_prefix, "test:");
  EXPECT_EQ(flags.valkey_presence_ttl_ms, 1500u);
  EdgeConfig file = parser.ok({"--config", "edge.toml"},
                       "[valkey]\naddress = \"[::1]:6380\"\nusername = \"edge\"\npassword_file = \"/run/pw\"\n"
                       "key_prefix = \"\"\nrefresh_ms = 1000\n");
  EXPECT_EQ(file.valkey_address, "[::1]:6380");
  EXPECT_EQ(file.valkey_username, "edge");
  EXPECT_EQ(file.valkey_password_file, "/run/pw");
  EXPECT_EQ(file.valkey_key_prefix, "");
  EXPECT_EQ(file.valkey_refresh_ms, 1000u);
  EXPECT_NE(parser.flag_error({"--valkey", "0.0.0.0:6379"}).find("not an address to connect to"), std::string::npos);
  EXPECT_NE(parser.flag_error({"--valkey-prefix", "a{b}"}).find("braces"), std::string::npos);
  EXPECT_NE(parser.flag_error({"--valkey-ttl-ms", "10"}).find("--valkey-ttl-ms"), std::string::npos);
  EXPECT_NE(parser.file_error("[valkey]\npassword_file = \"/run/pw\"\n").find("needs [valkey] address"), std::string::npos);
}

TEST(EdgeConfig, ValkeyCluster) {
  EXPECT_TRUE(parser.ok({}).valkey_cluster_seeds.empty());
  EdgeConfig flags = parser.ok({"--valkey-cluster", "127.0.0.1:7000", "--valkey-cluster", "[::1]:7001"});
  EXPECT_EQ(flags.valkey_cluster_seeds, (std::vector<std::string>{"127.0.0.1:7000", "[::1]:7001"}));
  EdgeConfig file = parser.ok({"--config", "edge.toml"},
                       "[valkey]\ncluster_seeds = [\"10.0.0.1:7000\", \"10.0.0.2:7000\"]\npassword_file = \"/run/pw\"\n");
  EXPECT_EQ(file.valkey_cluster_seeds, (std::vector<std::string>{"10.0.0.1:7000", "10.0.0.2:7000"}));
  EXPECT_EQ(file.valkey_password_file, "/run/pw");
  EXPECT_NE(parser.flag_error({"--valkey-cluster", "0.0.0.0:7000"}).find("not an address to connect to"), std::string::npos);
  EXPECT_NE(parser.flag_error({"--valkey-cluster", "valkey.internal:7000"}).find("--valkey-cluster"), std::string::npos);
  // One server or a cluster, not both.
  EXPECT_NE(parser.flag_error({"--valkey", "127.0.0.1:6379", "--valkey-cluster", "127.0.0.1:7000"})
                .find("exclude each other"),
            std::string::npos);
}

TEST(EdgeConfig, WebSocketPath) {
  EXPECT_EQ(parser.flag_error({"--ws-path", "ws"}), "--ws-path: 'ws' must start with '/'");
  EXPECT_EQ(parser.flag_error({"--ws-path", ""}), "--ws-path: '' must start with '/'");
  EXPECT_EQ(parser.flag_error({"--ws-path", "/a b"}), "--ws-path: '/a b' must be printable ASCII without spaces, '?' or '#'");
  EXPECT_EQ(parser.flag_error({"--ws-path", "/ws?x=1"}),
            "--ws-path: '/ws?x=1' must be printable ASCII without spaces, '?' or '#'");
  EXPECT_EQ(parser.flag_error({"--ws-path", "/healthz"}), "--ws-path: '/healthz' is the health check's path");
  EXPECT_EQ(parser.flag_error({"--ws-path", "/" + std::string(256, 'a')}), "--ws-path: must be at most 256 bytes");
  EXPECT_EQ(parser.file_error("[listen]\nwebsocket_path = \"/a\\nb\"\n"),
            "edge.toml:2: [listen] websocket_path: '/a\\x0ab' must be printable ASCII without spaces, '?' or '#'");
}

TEST(EdgeConfig, EdgeIdAndLogLevel) {
  EXPECT_EQ(parser.flag_error({"--edge-id", "edge one"}), "--edge-id: 'edge one' must be 1..128 bytes of [A-Za-z0-9._:-]");
  EXPECT_EQ(parser.flag_error({"--edge-id", ""}), "--edge-id: needs a value");
  EXPECT_EQ(parser.file_error("[edge]\nid = \"" + std::string(129, 'e') + "\"\n"),
            "edge.toml:2: [edge] id: '" + std::string(129, 'e') + "' must be 1..128 bytes of [A-Za-z0-9._:-]");
  EXPECT_EQ(parser.flag_error({"--log-level", "verbose"}),
            "--log-level: 'verbose' is not one of error, warning, notice, info, debug");
  EXPECT_EQ(parser.file_error("[edge]\nlog_level = \"INFO\"\n"),
            "edge.toml:2: [edge] log_level: 'INFO' is not one of error, warning, notice, info, debug");
  for (std::string_view level : {"error", "warning", "notice", "info", "debug"})
    EXPECT_EQ(parser.ok({"--log-level", level}).log_level, level);
}

// Values in errors are quoted by the shared config::printable: one line,
// unambiguous (quote, backslash and control bytes escaped).
TEST(EdgeConfig, ValuesInErrorsStayOnOneUnambiguousLine) {
  EXPECT_EQ(parser.flag_error({"--edge-id", "a'b\\c\n"}),
            "--edge-id: 'a\\'b\\\\c\\x0a' must be 1..128 bytes of [A-Za-z0-9._:-]");
  EXPECT_EQ(parser.flag_error({"--bogus\x7f"}), "unknown option '--bogus\\x7f' (see --help)");
  EXPECT_EQ(config::printable("\"a\"", '"'), "\"\\\"a\\\"\"");
  EXPECT_EQ(config::printable(std::string(70, 'x'), '"', 64), "\"" + std::string(64, 'x') + "...\"");
  // A cut never splits a UTF-8 sequence: "\u00e9" is two bytes.
  EXPECT_EQ(config::printable(std::string(63, 'x') + "\u00e9", '\'', 64), "'" + std::string(63, 'x') + "...'");
}

TEST(EdgeConfig, FilePathsFromFlagsMustNotBeEmpty) {
  EXPECT_EQ(parser.flag_error({"--tls-cert", ""}), "--tls-cert: needs a file name");
  EXPECT_EQ(parser.flag_error({"--tls-key", ""}), "--tls-key: needs a file name");
  EXPECT_EQ(parser.flag_error({"--policy", ""}), "--policy: needs a file name");
  EXPECT_EQ(parser.flag_error({"--jwt-secret-file", ""}), "--jwt-secret-file: needs a file name");
  EXPECT_EQ(parser.flag_error({"--config", ""}), "--config: needs a file name");
}

TEST(EdgeConfig, Origins) {
  for (std::string_view good : {"https://example.com", "http://localhost:3000", "https://[::1]:8443",
                                "https://a-b.c.example", "chrome-extension://abcdef", "http://10.0.0.1:1"})
    EXPECT_EQ(parser.ok({"--allowed-origin", good}).allowed_origins, std::vector<std::string>{std::string(good)}) << good;
  for (std::string_view bad : {"example.com", "https://Example.com", "https://example.com/", "https://example.com/x",
                               "HTTPS://example.com", "https://", "https://a:0", "https://a:65536", "https://a:",
                               "https://a:080", "*", "null", "https://[::1", "https://[]", "https://a b",
                               "://example.com", "1http://a"}) {
    EXPECT_EQ(parser.flag_error({"--allowed-origin", bad}),
              fmt::format("--allowed-origin: '{}' is not an origin (scheme://host[:port], lowercase, no path)", bad))
        << bad;
  }
  EXPECT_EQ(parser.file_error("[admission]\nallowed_origins = [\n  \"https://ok.example\",\n  \"https://bad.example/\",\n]\n"),
            "edge.toml:4: [admission] allowed_origins: 'https://bad.example/' is not an origin (scheme://host[:port], "
            "lowercase, no path)");
}

TEST(EdgeConfig, TlsGoesInPairs) {
  EXPECT_EQ(parser.flag_error({"--tls-cert", "c.pem"}), "--tls-cert: [tls] key (--tls-key) is missing: give both or neither");
  EXPECT_EQ(parser.flag_error({"--tls-key", "k.pem"}),
            "--tls-key: [tls] certificate (--tls-cert) is missing: give both or neither");
  EXPECT_EQ(parser.file_error("[tls]\n\ncertificate = \"c.pem\"\n"),
            "edge.toml:3: [tls] certificate: [tls] key (--tls-key) is missing: give both or neither");
  // The flag completes the file's pair.
  EdgeConfig config = parser.ok({"--config", "edge.toml", "--tls-key", "k.pem"}, "[tls]\ncertificate = \"c.pem\"\n");
  EXPECT_EQ(config.tls_certificate, "c.pem");
  EXPECT_EQ(config.tls_key, "k.pem");
}

TEST(EdgeConfig, AtLeastOneListener) {
  EXPECT_EQ(parser.flag_error({"--listen", ""}),
            "--listen: no listener: [listen] public (--listen) and [listen] plain (--plain-listen) are both empty");
  EXPECT_EQ(parser.file_error("[listen]\npublic = \"\"\n"),
            "edge.toml:2: [listen] public: no listener: [listen] public (--listen) and [listen] plain "
            "(--plain-listen) are both empty");
  EdgeConfig plain_only = parser.ok({"--listen", "", "--plain-listen", "127.0.0.1:8450"});
  EXPECT_TRUE(plain_only.listen.empty());
}

TEST(EdgeConfig, TlsNeedsThePublicListener) {
  EXPECT_EQ(parser.flag_error({"--tls-cert", "c", "--tls-key", "k", "--listen", "", "--plain-listen", "127.0.0.1:8450"}),
            "--tls-cert: TLS serves [listen] public (--listen), which is empty");
}

TEST(EdgeConfig, ProxyProtocolNeedsThePlainListener) {
  EXPECT_EQ(parser.flag_error({"--proxy-protocol"}),
            "--proxy-protocol: [listen] proxy_protocol (--proxy-protocol) needs [listen] plain (--plain-listen): "
            "only that listener expects the header");
  EXPECT_EQ(parser.file_error("[listen]\nproxy_protocol = true\n"),
            "edge.toml:2: [listen] proxy_protocol: [listen] proxy_protocol (--proxy-protocol) needs [listen] plain "
            "(--plain-listen): only that listener expects the header");
  EXPECT_TRUE(parser.ok({"--proxy-protocol", "--plain-listen", "127.0.0.1:8450"}).proxy_protocol);
}

TEST(EdgeConfig, ListenersMustNotOverlap) {
  EXPECT_EQ(parser.flag_error({"--plain-listen", "127.0.0.1:8445"}),
            "--plain-listen: '127.0.0.1:8445' overlaps [listen] public (--listen) ('127.0.0.1:8445')");
  EXPECT_EQ(parser.flag_error({"--admin", "0.0.0.0:8445"}),
            "--admin: '0.0.0.0:8445' overlaps [listen] public (--listen) ('127.0.0.1:8445')");
  EXPECT_EQ(parser.flag_error({"--listen", "[::]:9445"}),
            "--listen: '[::]:9445' overlaps [admin] listen (--admin) ('127.0.0.1:9445')");
  EXPECT_EQ(parser.file_error("[listen]\nplain = \"127.0.0.1:7000\"\n[admin]\nlisten = \"127.0.0.1:7000\"\n"),
            "edge.toml:4: [admin] listen: '127.0.0.1:7000' overlaps [listen] plain (--plain-listen) ('127.0.0.1:7000')");
  // Different ports, different addresses, or port 0 (the kernel picks) are fine.
  parser.ok({"--plain-listen", "127.0.0.1:8446"});
  parser.ok({"--plain-listen", "127.0.0.2:8445"});
  parser.ok({"--listen", "127.0.0.1:0", "--plain-listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"});
  parser.ok({"--listen", "[::1]:8445", "--plain-listen", "127.0.0.1:8445"});
}

TEST(EdgeConfig, SendQueueHoldsTwoMessages) {
  EXPECT_EQ(parser.file_error("[limits]\nsend_queue_bytes = 20000\n"),
            "edge.toml:2: [limits] send_queue_bytes: must be at least twice [limits] max_message_bytes "
            "(--max-message-bytes) (32768)");
  EXPECT_EQ(parser.flag_error({"--max-message-bytes", "200000"}),
            "--max-message-bytes: twice this (400000) exceeds [limits] send_queue_bytes (262144)");
  parser.ok({"--max-message-bytes", "131072"});
}

TEST(EdgeConfig, DrainDeadlineFollowsTheDrainWindow) {
  EXPECT_EQ(parser.file_error("[timeouts]\ndrain_deadline_ms = 10000\n"),
            "edge.toml:2: [timeouts] drain_deadline_ms: must exceed [timeouts] drain_ms (--drain-ms) (10000): the "
            "last client told to reconnect needs time to go");
  EXPECT_EQ(parser.flag_error({"--drain-ms", "40000"}),
            "--drain-ms: must be below [timeouts] drain_deadline_ms (30000): the last client told to reconnect needs "
            "time to go");
}

TEST(EdgeConfig, CommandLineMistakes) {
  EXPECT_EQ(parser.flag_error({"--bogus"}), "unknown option '--bogus' (see --help)");
  EXPECT_EQ(parser.flag_error({"--bogus=1"}), "unknown option '--bogus' (see --help)");
  EXPECT_EQ(parser.flag_error({"shards"}), "unexpected argument 'shards' (see --help)");
  EXPECT_EQ(parser.flag_error({"-s"}), "unexpected argument '-s' (see --help)");
  EXPECT_EQ(parser.flag_error({"--shards"}), "--shards needs a value");
  EXPECT_EQ(parser.flag_error({"--config"}), "--config needs a value");
  EXPECT_EQ(parser.flag_error({"--config", "a", "--config", "b"}), "--config: given twice");
  ConfigError unreadable = parser.failure({"--config", "missing.toml"});
  EXPECT_EQ(unreadable.message, "--config: cannot read 'missing.toml': No such file or directory");
  EXPECT_EQ(unreadable.exit_code, 1);
}

TEST(EdgeConfig, HelpWinsAndListsEveryFlag) {
  ConfigError help = parser.failure({"--shards", "x", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_EQ(parser.failure({"-h"}).exit_code, 0);
  EXPECT_EQ(help.message, edge_usage());
  for (std::string_view flag :
       {"--config FILE", "--listen ADDR:PORT", "--plain-listen ADDR:PORT", "--proxy-protocol", "--tls-cert FILE",
        "--tls-key FILE", "--shards N", "--max-connections N", "--max-connections-per-shard N", "--heartbeat-ms N",
        "--handshake-timeout-ms N", "--max-message-bytes N", "--ws-path PATH", "--edge-id ID", "--admin ADDR:PORT",
        "--policy FILE", "--jwt-secret-file FILE", "--allowed-origin ORIGIN", "--log-level LEVEL", "--drain-ms N",
        "--check-config", "--help"})
    EXPECT_NE(help.message.find(std::string("  ") + std::string(flag) + " "), std::string::npos) << flag;
  EXPECT_NE(help.message.find("(default 15000)"), std::string::npos);
  EXPECT_NE(help.message.find("(default 127.0.0.1:8445)"), std::string::npos);
}

TEST(EdgeConfig, DescribeReadsBackAsTheSameConfiguration) {
  for (EdgeConfig config : {parser.ok({}), parser.ok({"--config", "edge.toml"}, every_key)}) {
    std::string text = describe(config);
    auto again = parse_edge_config_file(text, "described.toml");
    ASSERT_TRUE(again.has_value()) << again.error().message << "\n" << text;
    again->config_file = config.config_file;
    EXPECT_EQ(*again, config) << text;
  }
}

TEST(EdgeConfig, DescribeEscapesStrings) {
  EdgeConfig config = parser.ok({"--tls-cert", "/tmp/a \"b\"\\c\x01.pem", "--tls-key", "k"});
  std::string text = describe(config);
  EXPECT_NE(text.find(R"(certificate = "/tmp/a \"b\"\\c\u0001.pem")"), std::string::npos) << text;
  auto again = parse_edge_config_file(text, "described.toml");
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(again->tls_certificate, config.tls_certificate);
}

TEST(EdgeConfig, DescribeShowsEveryTableAndKey) {
  std::string text = describe(EdgeConfig{});
  for (std::string_view line :
       {"[edge]\nid = \"\"\nshards = 0\nlog_level = \"info\"\n", "[listen]\npublic = \"127.0.0.1:8445\"\n",
        "plain = \"\"\n", "proxy_protocol = false\n", "websocket_path = \"/ws\"\n",
        "[tls]\ncertificate = \"\"\nkey = \"\"\n", "send_queue_bytes = 262144\n", "[timeouts]\nhandshake_ms = 10000\n",
        "drain_deadline_ms = 30000\n", "[admission]\nallowed_origins = []\nrequire_origin = false\n",
        "[policy]\nfile = \"\"\nwatch = true\n", "[admin]\nlisten = \"127.0.0.1:9445\"\n"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n---\n" << text;
}

// The process entry point: the file comes from disk and the edge id gets
// its HOSTNAME-PID default.
TEST(EdgeConfig, ArgvReadsTheFileFromDisk) {
  std::string path = testing::TempDir() + "edge_config_test.toml";
  {
    std::ofstream file(path);
    file << "[edge]\nshards = 3\n";
  }
  std::string config_flag = "--config=" + path;
  char program[] = "mf-edge";
  char log_flag[] = "--log-level=debug";
  char* argv[] = {program, config_flag.data(), log_flag, nullptr};
  auto config = parse_edge_arguments(3, argv);
  std::remove(path.c_str());
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->shards, 3u);
  EXPECT_EQ(config->log_level, "debug");
  EXPECT_EQ(config->config_file, path);
  EXPECT_FALSE(config->edge_id.empty());
  EXPECT_NE(config->edge_id.find('-'), std::string::npos);

  auto missing = parse_edge_arguments(3, argv);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message, "--config: cannot read '" + path + "': No such file or directory");
  EXPECT_EQ(missing.error().exit_code, 1);

  char id_flag[] = "--edge-id=mine";
  char* with_id[] = {program, id_flag, nullptr};
  EXPECT_EQ(parse_edge_arguments(2, with_id)->edge_id, "mine");
}

// "table.key" for every assignment in a TOML text written one key per line.
std::vector<std::string> settings_shown(const std::string& text) {
  std::vector<std::string> shown;
  std::istringstream lines(text);
  std::string table;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.front() == '#') continue;
    if (line.front() == '[') {
      table = line.substr(1, line.find(']') - 1);
      continue;
    }
    shown.push_back(table + "." + line.substr(0, line.find(' ')));
  }
  return shown;
}

// The shipped example shows every setting at its default: it must parse, and
// to exactly the defaults; describe() must not know a key it lacks.
TEST(EdgeConfig, ExampleFileIsValidAndShowsTheDefaults) {
  std::filesystem::path path = std::filesystem::path(__FILE__).parent_path().parent_path() / "mf-edge.example.toml";
  std::ifstream file(path);
  ASSERT_TRUE(file.good()) << path;
  std::stringstream content;
  content << file.rdbuf();
  auto config = parse_edge_config_file(content.str(), "mf-edge.example.toml");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  config->config_file.clear();
  EXPECT_EQ(*config, EdgeConfig{});
  EXPECT_EQ(settings_shown(content.str()), settings_shown(describe(EdgeConfig{})));
  EXPECT_EQ(settings_shown(content.str()).size(), 52u);
}

}  // namespace
}  // namespace mf::edge
