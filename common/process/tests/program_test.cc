#include "common/process/program.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <string>
#include <vector>

namespace mf {
namespace {

TEST(Program, KeepsTheCommandLineWithoutTheProgramName) {
  std::string a0 = "mf-x", a1 = "--config", a2 = "x.toml";
  char* argv[] = {a0.data(), a1.data(), a2.data(), nullptr};
  Program program("mf-x", 3, argv, {"public"});
  ASSERT_EQ(program.arguments().size(), 2u);
  EXPECT_EQ(program.arguments()[0], "--config");
  EXPECT_EQ(program.arguments()[1], "x.toml");
  EXPECT_EQ(program.name(), "mf-x");
}

TEST(Program, NoHandedOverSocketIsMinusOne) {
  Program program("mf-x", 0, nullptr, {"public", "admin"});
  EXPECT_EQ(program.inherited("public"), -1);
  EXPECT_EQ(program.inherited("admin"), -1);
}

TEST(Program, DescriptorTableIsTheLimitOrTheConfiguredSize) {
  Program program("mf-x", 0, nullptr, {});
  auto automatic = program.descriptor_table(0, "limits.x");
  ASSERT_TRUE(automatic.has_value()) << automatic.error();
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  EXPECT_EQ(*automatic, std::min<rlim_t>(limit.rlim_cur, 1u << 20));
  auto configured = program.descriptor_table(64, "limits.x");
  ASSERT_TRUE(configured.has_value());
  EXPECT_EQ(*configured, 64u);
  auto too_many = program.descriptor_table(*automatic + 1, "limits.x");
  ASSERT_FALSE(too_many.has_value());
  EXPECT_EQ(too_many.error().rfind("limits.x " + std::to_string(*automatic + 1) + " exceeds", 0), 0u) << too_many.error();
  auto too_few = program.descriptor_table(8, "limits.x");
  ASSERT_FALSE(too_few.has_value());
  EXPECT_EQ(too_few.error(), "limits.x must be at least 16");
}

TEST(Program, ShardOptionsTakeTheCountTableAndDisposal) {
  Program program("mf-x", 0, nullptr, {});
  bool disposed = false;
  auto options = program.shard_options(3, 128, [&](const ShardMessage&) { disposed = true; });
  ASSERT_TRUE(options.has_value()) << options.error();
  EXPECT_EQ(options->shard_count, 3u);
  EXPECT_EQ(options->reactor.max_sockets, 128u);
  options->dispose_undelivered(ShardMessage{});
  EXPECT_TRUE(disposed);
  auto automatic = program.shard_options(0, 128, {});
  ASSERT_TRUE(automatic.has_value());
  EXPECT_GE(automatic->shard_count, 1u);
}

TEST(Program, HelpExitsZeroAndAProblemWithItsCode) {
  Program program("mf-x", 0, nullptr, {});
  EXPECT_EQ(program.exit(config::ConfigError{"", 0}), 0);
  EXPECT_EQ(program.exit(config::ConfigError{"--x: bad", 2}), 2);
  EXPECT_EQ(program.fail("bad"), 1);
}

}  // namespace
}  // namespace mf
