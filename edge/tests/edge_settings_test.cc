#include "edge/edge_settings.h"

#include <gtest/gtest.h>

namespace mf::edge {
namespace {

TEST(EdgeSettings, DefaultsBuildWithoutFiles) {
  EdgeConfig config;
  config.edge_id = "e1";
  auto shared = edge_shared_from(config, {}, nullptr);
  ASSERT_TRUE(shared.has_value()) << shared.error();
  EXPECT_EQ(shared->settings.edge_id, "e1");
  EXPECT_TRUE(shared->listen_address.has_value());
  EXPECT_TRUE(shared->admin_address.has_value());
  EXPECT_FALSE(shared->plain_address.has_value());
  EXPECT_TRUE(shared->tls.certificates.empty());
  EXPECT_EQ(shared->jwt, nullptr);
  EXPECT_EQ(shared->origins, nullptr);
  ASSERT_NE(shared->initial_policy, nullptr);
  EXPECT_EQ(shared->per_source.connections, config.per_source_connections);
  // Peers silent for 1.5 intervals are gone.
  EXPECT_EQ(shared->settings.tracker.peer_ttl_ms, config.tracker_interval_s * 1500);
  // Alone: tracker counts are this edge's only.
  EXPECT_EQ(shared->settings.tracker.cluster_counts_ttl_ms, 0u);
}

TEST(EdgeSettings, InAClusterTrackerCountsFromValkeyLastTwoRefreshPeriods) {
  EdgeConfig config;
  config.valkey_address = "127.0.0.1:6379";
  config.valkey_presence_ttl_ms = 1500;
  auto shared = edge_shared_from(config, {}, nullptr);
  ASSERT_TRUE(shared.has_value()) << shared.error();
  EXPECT_EQ(shared->cluster.refresh_ms, 500u);
  EXPECT_EQ(shared->settings.tracker.cluster_counts_ttl_ms, 1000u);
}

TEST(EdgeSettings, AnInheritedPublicSocketReplacesTheAddress) {
  EdgeConfig config;
  auto shared = edge_shared_from(config, InheritedListeners{.public_fd = 7}, nullptr);
  ASSERT_TRUE(shared.has_value()) << shared.error();
  EXPECT_EQ(shared->inherited_public_fd, 7);
  EXPECT_FALSE(shared->listen_address.has_value());
}

TEST(EdgeSettings, AFileThatCannotBeReadIsOneLineNamingTheSetting) {
  EdgeConfig config;
  config.jwt_secret_file = "/nonexistent/secret";
  auto jwt = edge_shared_from(config, {}, nullptr);
  ASSERT_FALSE(jwt.has_value());
  EXPECT_EQ(jwt.error().rfind("admission.jwt_secret_file: cannot read /nonexistent/secret", 0), 0u) << jwt.error();
  EXPECT_EQ(jwt.error().find('\n'), std::string::npos);

  config = EdgeConfig{};
  config.policy_file = "/nonexistent/policy.json";
  auto policy = edge_shared_from(config, {}, nullptr);
  ASSERT_FALSE(policy.has_value());
  EXPECT_EQ(policy.error().rfind("policy.file: cannot read /nonexistent/policy.json", 0), 0u) << policy.error();

  config = EdgeConfig{};
  config.tls_certificate = "/nonexistent/cert.pem";
  config.tls_key = "/nonexistent/key.pem";
  auto tls = edge_shared_from(config, {}, nullptr);
  ASSERT_FALSE(tls.has_value());
  EXPECT_NE(tls.error().find("/nonexistent/cert.pem"), std::string::npos) << tls.error();
}

TEST(EdgeSettings, AReloadTakesLimitsAndAdmissionOnly) {
  EdgeConfig start;
  start.edge_id = "e1";
  auto running = edge_shared_from(start, {}, nullptr);
  ASSERT_TRUE(running.has_value());
  EdgeConfig changed = start;
  changed.edge_id = "e2";
  changed.websocket_path = "/other";
  changed.messages_per_second = 7;
  changed.message_burst = 9;
  changed.max_connections = 11;
  changed.error_limit = 3;
  changed.drain_deadline_ms = 1234;
  changed.per_source_connections = 5;
  changed.per_source_ipv6_prefix = 48;
  changed.allowed_origins = {"https://good.test"};
  auto loaded = edge_shared_from(changed, {}, nullptr);
  ASSERT_TRUE(loaded.has_value()) << loaded.error();
  take_reloadable(*running, *loaded);
  EXPECT_EQ(running->settings.messages_per_second, 7u);
  EXPECT_EQ(running->settings.message_burst, 9u);
  EXPECT_EQ(running->settings.max_connections, 11u);
  EXPECT_EQ(running->settings.error_limit, 3u);
  EXPECT_EQ(running->settings.drain_deadline_ms, 1234u);
  EXPECT_EQ(running->per_source.connections, 5u);
  EXPECT_EQ(running->per_source.prefixes.ipv6, 48);
  ASSERT_NE(running->origins, nullptr);
  EXPECT_FALSE(running->origins->allows("https://other.test"));
  // What the servers and listeners were built with stays.
  EXPECT_EQ(running->settings.edge_id, "e1");
  EXPECT_EQ(running->settings.websocket_path, "/ws");
}

}  // namespace
}  // namespace mf::edge
