// Which policy document is in force on shard 0 (edge/policy_source.h): the
// policy in Valkey while its key exists, else the file's last accepted one,
// else the defaults; a value that does not parse keeps the current policy and
// is reported once.
#include "edge/policy_source.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace mf::edge {
namespace {

std::shared_ptr<const PolicyDocument> document(std::string_view json) {
  auto parsed = PolicyDocument::parse(json);
  EXPECT_TRUE(parsed.has_value()) << json;
  return std::make_shared<const PolicyDocument>(std::move(*parsed));
}

uint32_t max_peers(const PolicySource& source) { return source.effective()->effective("any").max_peers; }

constexpr std::string_view file_json = R"({"defaults":{"maxPeers":3}})";
constexpr std::string_view valkey_json = R"({"defaults":{"maxPeers":5}})";

TEST(PolicySource, TheDefaultsUntilAFileIsLoaded) {
  auto defaults = document("{}");
  PolicySource source(defaults);
  EXPECT_EQ(source.effective(), defaults);
  source.file_loaded(document(file_json));
  EXPECT_EQ(max_peers(source), 3u);
  EXPECT_FALSE(source.valkey_wins());
}

TEST(PolicySource, ValkeyWinsWhileItsKeyExistsThenTheFileAgain) {
  PolicySource source(document("{}"));
  source.file_loaded(document(file_json));
  EXPECT_EQ(source.valkey_read(std::nullopt).change, PolicySource::ValkeyChange::unchanged);  // no key yet
  EXPECT_EQ(source.valkey_read(valkey_json).change, PolicySource::ValkeyChange::loaded);
  EXPECT_TRUE(source.valkey_wins());
  EXPECT_EQ(max_peers(source), 5u);
  // A file reloaded meanwhile is kept for later, not applied.
  source.file_loaded(document(R"({"defaults":{"maxPeers":4}})"));
  EXPECT_EQ(max_peers(source), 5u);
  EXPECT_EQ(source.valkey_read(std::nullopt).change, PolicySource::ValkeyChange::removed);
  EXPECT_FALSE(source.valkey_wins());
  EXPECT_EQ(max_peers(source), 4u);
}

TEST(PolicySource, TheSameValueIsUnchangedAndTheDocumentStaysTheSameObject) {
  PolicySource source(document("{}"));
  EXPECT_EQ(source.valkey_read(valkey_json).change, PolicySource::ValkeyChange::loaded);
  auto first = source.effective();
  EXPECT_EQ(source.valkey_read(valkey_json).change, PolicySource::ValkeyChange::unchanged);
  EXPECT_EQ(source.effective(), first);  // the shard pushes nothing
}

TEST(PolicySource, AnInvalidValueKeepsTheCurrentPolicyAndIsReportedOnce) {
  PolicySource source(document("{}"));
  ASSERT_EQ(source.valkey_read(valkey_json).change, PolicySource::ValkeyChange::loaded);
  auto result = source.valkey_read(R"({"defaults":{"maxPeers":"many"}})");
  EXPECT_EQ(result.change, PolicySource::ValkeyChange::invalid);
  EXPECT_FALSE(result.error.empty());
  EXPECT_EQ(max_peers(source), 5u);
  EXPECT_EQ(source.valkey_read(R"({"defaults":{"maxPeers":"many"}})").change, PolicySource::ValkeyChange::unchanged);
  // Fixed: applied.
  EXPECT_EQ(source.valkey_read(R"({"defaults":{"maxPeers":6}})").change, PolicySource::ValkeyChange::loaded);
  EXPECT_EQ(max_peers(source), 6u);
}

}  // namespace
}  // namespace mf::edge
