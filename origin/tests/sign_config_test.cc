#include "origin/sign_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace mf::origin {
namespace {

std::expected<SignConfig, config::ConfigError> parse(std::vector<std::string_view> arguments,
                                                     std::string file = "") {
  return parse_sign_arguments(arguments, [file](const std::string&) -> std::expected<std::string, std::string> {
    return file;
  });
}

TEST(SignConfig, FlagsAndDefaults) {
  auto c = parse({"--key", "k.pem", "--dir", "/srv/hls/live"});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->key, "k.pem");
  EXPECT_EQ(c->dir, "/srv/hls/live");
  EXPECT_EQ(c->stream, "");
  EXPECT_EQ(c->ttl_s, 0u);
  EXPECT_FALSE(c->watch);
  EXPECT_FALSE(c->cmaf_chunks);
  c = parse({"--key", "k.pem", "--dir", "d", "--watch", "--cmaf-chunks", "--stream", "live-42", "--kid", "k2026",
             "--ttl-s", "10"});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->watch && c->cmaf_chunks);
  EXPECT_EQ(c->stream, "live-42");
  EXPECT_EQ(c->kid, "k2026");
  EXPECT_EQ(c->ttl_s, 10u);
}

TEST(SignConfig, FileThenFlags) {
  auto c = parse({"--config", "sign.toml", "--stream", "b"},
                 "[sign]\nkey = \"/etc/k.pem\"\ndir = \"/srv/a\"\nstream = \"a\"\nwatch = true\n");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->key, "/etc/k.pem");
  EXPECT_EQ(c->stream, "b");
  EXPECT_TRUE(c->watch);
}

TEST(SignConfig, OneLineProblems) {
  EXPECT_EQ(parse({"--key", "k.pem"}).error().message, "[sign] dir: needed: the directory to sign");
  EXPECT_EQ(parse({"--dir", "d"}).error().message, "[sign] key: needed: the private key that signs");
  EXPECT_NE(parse({"--key", "k", "--dir", "d", "--stream", "a/b"}).error().message.find("[A-Za-z0-9._:-]"),
            std::string::npos);
  EXPECT_FALSE(parse({"--key", "k", "--dir", "d", "--kid", std::string(65, 'k')}));
  EXPECT_FALSE(parse({"--key", "k", "--dir", "d", "--ttl-s", "x"}));
  EXPECT_FALSE(parse({"--dir", "d", "--verify", "p.pem", "--watch"}));
  EXPECT_FALSE(parse({"--bogus"}));
}

TEST(SignConfig, ModesNeedLess) {
  auto generate = parse({"--generate-key", "new.pem"});
  ASSERT_TRUE(generate) << generate.error().message;
  auto verify = parse({"--dir", "d", "--verify", "p.pem"});
  ASSERT_TRUE(verify) << verify.error().message;
  auto help = parse({"--help"});
  ASSERT_FALSE(help);
  EXPECT_EQ(help.error().exit_code, 0);
  EXPECT_NE(help.error().message.find("--cmaf-chunks"), std::string::npos);
}


TEST(SignConfig, ExampleFileIsValidAndShowsEverySetting) {
  std::filesystem::path path = std::filesystem::path(__FILE__).parent_path().parent_path() / "mf-sign.example.toml";
  std::ifstream file(path);
  ASSERT_TRUE(file.good()) << path;
  std::stringstream content;
  content << file.rdbuf();
  auto config = parse({"--config", "mf-sign.example.toml"}, content.str());
  ASSERT_TRUE(config) << config.error().message;
  SignConfig expected;
  expected.key = "/etc/meshedflow/sign-key.pem";
  expected.dir = "/srv/hls/live";
  expected.config_file = "mf-sign.example.toml";
  EXPECT_EQ(*config, expected);
  // Every line of describe() that sets a value appears in the example.
  std::stringstream described(describe(*config));
  for (std::string line; std::getline(described, line);) {
    if (line.find(" = ") != std::string::npos) {
      EXPECT_NE(content.str().find(line), std::string::npos) << line;
    }
  }
}

}  // namespace
}  // namespace mf::origin
