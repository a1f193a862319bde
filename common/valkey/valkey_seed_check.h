#pragma once
// The start-up check that the seeds given for a Valkey Cluster are cluster
// nodes (docs/cluster.md, "Valkey Cluster", its "Seeds checked at start").
//
// Each seed is asked `INFO cluster` (after AUTH when a password is given) on
// a blocking socket, in turn, within one shared deadline. A seed that
// answers `cluster_enabled:0` is a standalone server: the check fails with
// one line naming it, and the program refuses to start (a standalone server
// answers every `CLUSTER SHARDS` with an error, so the edge would otherwise
// run local-only for ever). A seed that cannot be reached, refuses the
// credentials or does not answer in time decides nothing: a cluster that is
// down at start is a fault the edge rides out (docs/cluster.md, "Faults"),
// not a configuration error.
//
// Blocking: for the main thread before the shards start, never a shard
// thread.
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mf::valkey {

// `cluster_enabled` of an `INFO` reply's text: true for 1, false for 0,
// nullopt when the field is absent or has another value. Pure.
std::optional<bool> cluster_enabled_of(std::string_view info_text);

// What one seed said.
enum class SeedKind : uint8_t {
  cluster,     // cluster_enabled:1
  standalone,  // cluster_enabled:0
  unknown,     // unreachable, refused, timed out, or an answer without the field
};
struct SeedVerdict {
  SeedKind kind = SeedKind::unknown;
  std::string detail;  // unknown: why (for a log line)
};

// Asks one seed (numeric HOST:PORT) within `timeout_ms`.
SeedVerdict probe_seed(std::string_view address, std::string_view username, std::string_view password,
                       uint32_t timeout_ms);

// Probes the seeds in turn within `timeout_ms` in all; fails with one line
// naming the first standalone seed. Seeds of unknown kind are skipped.
std::expected<void, std::string> check_cluster_seeds(std::span<const std::string> seeds, std::string_view username,
                                                     std::string_view password, uint32_t timeout_ms);

}  // namespace mf::valkey
