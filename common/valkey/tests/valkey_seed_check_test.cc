// The start-up seed check against real redis-server processes: a standalone
// one, a cluster-enabled one (with and without a password), and a port
// nobody listens on.
#include "common/valkey/valkey_seed_check.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/valkey/tests/redis_test_server.h"

namespace mf::valkey {
namespace {

TEST(ClusterEnabledOf, ReadsTheFieldOfAnInfoReply) {
  EXPECT_EQ(cluster_enabled_of("# Cluster\r\ncluster_enabled:0\r\n"), false);
  EXPECT_EQ(cluster_enabled_of("# Cluster\r\ncluster_enabled:1\r\n"), true);
  EXPECT_EQ(cluster_enabled_of("cluster_enabled:1"), true);
  EXPECT_EQ(cluster_enabled_of("# Server\nredis_version:7.0.15\n# Cluster\ncluster_enabled:0\n"), false);
  EXPECT_EQ(cluster_enabled_of(""), std::nullopt);
  EXPECT_EQ(cluster_enabled_of("# Cluster\r\n"), std::nullopt);
  EXPECT_EQ(cluster_enabled_of("cluster_enabled:2\r\n"), std::nullopt);
  EXPECT_EQ(cluster_enabled_of("cluster_enabled:\r\n"), std::nullopt);
  EXPECT_EQ(cluster_enabled_of("cluster_enabled:10\r\n"), std::nullopt);
  // Only a whole line's start counts.
  EXPECT_EQ(cluster_enabled_of("x_cluster_enabled:1\r\n"), std::nullopt);
}

TEST(ProbeSeed, TellsAStandaloneServerFromAClusterNode) {
  test::RedisServer standalone;
  test::RedisServer node({}, true);
  ASSERT_TRUE(standalone.start());
  ASSERT_TRUE(node.start());
  EXPECT_EQ(probe_seed(standalone.address(), {}, {}, 5000).kind, SeedKind::standalone);
  EXPECT_EQ(probe_seed(node.address(), {}, {}, 5000).kind, SeedKind::cluster);
}

TEST(ProbeSeed, AuthenticatesFirstAndWrongCredentialsDecideNothing) {
  test::RedisServer standalone("s3cret");
  ASSERT_TRUE(standalone.start());
  EXPECT_EQ(probe_seed(standalone.address(), {}, "s3cret", 5000).kind, SeedKind::standalone);
  EXPECT_EQ(probe_seed(standalone.address(), "default", "s3cret", 5000).kind, SeedKind::standalone);
  SeedVerdict wrong = probe_seed(standalone.address(), {}, "wrong", 5000);
  EXPECT_EQ(wrong.kind, SeedKind::unknown);
  EXPECT_NE(wrong.detail.find("WRONGPASS"), std::string::npos) << wrong.detail;
  SeedVerdict none = probe_seed(standalone.address(), {}, {}, 5000);
  EXPECT_EQ(none.kind, SeedKind::unknown);
  EXPECT_NE(none.detail.find("NOAUTH"), std::string::npos) << none.detail;
}

TEST(ProbeSeed, NobodyListeningDecidesNothing) {
  const std::string address = "127.0.0.1:" + std::to_string(test::free_loopback_port());
  SeedVerdict verdict = probe_seed(address, {}, {}, 5000);
  EXPECT_EQ(verdict.kind, SeedKind::unknown);
  EXPECT_NE(verdict.detail.find("connect"), std::string::npos) << verdict.detail;
  EXPECT_EQ(probe_seed("not an address", {}, {}, 5000).kind, SeedKind::unknown);
}

TEST(ProbeSeed, ASilentServerDecidesNothingByTheDeadline) {
  test::RedisServer stopped;
  ASSERT_TRUE(stopped.start());
  stopped.pause();  // its kernel accepts, it never answers
  SeedVerdict verdict = probe_seed(stopped.address(), {}, {}, 300);
  stopped.resume();
  EXPECT_EQ(verdict.kind, SeedKind::unknown);
  EXPECT_EQ(verdict.detail, "no answer in time");
}

TEST(CheckClusterSeeds, RefusesAStandaloneSeedAmongOthersWithOneLine) {
  test::RedisServer standalone;
  test::RedisServer node({}, true);
  ASSERT_TRUE(standalone.start());
  ASSERT_TRUE(node.start());
  const std::string nobody = "127.0.0.1:" + std::to_string(test::free_loopback_port());
  std::vector<std::string> seeds = {nobody, node.address()};
  EXPECT_TRUE(check_cluster_seeds(seeds, {}, {}, 5000));
  seeds.push_back(standalone.address());
  auto refused = check_cluster_seeds(seeds, {}, {}, 5000);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find(standalone.address() + " is not a cluster node"), std::string::npos)
      << refused.error();
  EXPECT_EQ(refused.error().find('\n'), std::string::npos);
  // Nothing reachable: nothing refused (the cluster may come up later).
  std::vector<std::string> unreachable = {nobody};
  EXPECT_TRUE(check_cluster_seeds(unreachable, {}, {}, 5000));
}

}  // namespace
}  // namespace mf::valkey
