// mf-edge: the MeshedFlow signaling edge, on the program skeleton
// (common/process/program.h): its configuration and its shards.
#include <fmt/core.h>

#include "common/process/program.h"
#include "common/tls/tls_record_layer_self_test.h"
#include "common/tls/tls_ticket_keys.h"
#include "common/valkey/valkey_seed_check.h"
#include "edge/cluster_sync_valkey.h"
#include "edge/edge_config.h"
#include "edge/edge_settings.h"
#include "edge/edge_shard.h"

int main(int argc, char** argv) {
  using namespace mf;
  Program program("mf-edge", argc, argv, {"public", "plain", "admin"});
  auto parsed = edge::parse_edge_arguments(argc, argv);
  if (!parsed) return program.exit(parsed.error());
  const edge::EdgeConfig& config = *parsed;
  if (auto started = program.start(config.log_level); !started) return program.fail(started.error());

  auto keys = TicketKeys::generate();
  if (!keys) return program.fail(keys.error());
  const edge::InheritedListeners inherited{program.inherited("public"), program.inherited("plain"),
                                           program.inherited("admin")};
  auto built = edge::edge_shared_from(config, inherited, *keys);
  if (!built) return program.fail(built.error());
  edge::EdgeShared& shared = *built;
  shared.cluster_sync = &edge::ValkeyClusterSync::create;
  if (!shared.tls.certificates.empty())
    (void)tls::prove_record_layer(shared.tls);  // logs its verdict; a failure leaves the records to OpenSSL
  shared.reload = [&program, &inherited, keys = *keys, tls = !shared.tls.certificates.empty(),
                   per_source = shared.per_source.enabled()]()
      -> std::expected<std::shared_ptr<const edge::EdgeShared>, std::string> {
    auto again = edge::parse_edge_arguments(program.arguments(), config::read_whole_file);
    if (!again) return std::unexpected(again.error().message);
    auto loaded = edge::edge_shared_from(*again, inherited, keys);
    if (!loaded) return std::unexpected(loaded.error());
    if (loaded->tls.certificates.empty() == tls)
      return std::unexpected("[tls] cannot be turned on or off by a reload (restart the edge)");
    // Without per-source limits the listeners do not ask accept for client
    // addresses (one multishot accept instead): turning them on takes a restart.
    if (loaded->per_source.enabled() && !per_source)
      return std::unexpected("[limits] per-source limits off at start cannot be turned on by a reload (restart the edge)");
    return std::make_shared<const edge::EdgeShared>(std::move(*loaded));
  };

  auto table = program.descriptor_table(config.max_connections_per_shard, "limits.max_connections_per_shard");
  if (!table) return program.fail(table.error());
  auto options = program.shard_options(config.shards, *table, edge::EdgeShard::dispose);
  if (!options) return program.fail(options.error());
  options->reactor.max_queued_bytes_per_socket = config.send_queue_bytes;

  std::string listeners;
  if (!config.listen.empty()) listeners += std::string(config.tls_certificate.empty() ? "ws on " : "wss on ") + config.listen;
  if (!config.plain_listen.empty())
    listeners += (listeners.empty() ? "" : ", ") + std::string("plain ws on ") + config.plain_listen +
                 (config.proxy_protocol ? " (PROXY v2)" : "");
  if (config.check_config) {
    const SocketAddress* addresses[] = {shared.listen_address ? &*shared.listen_address : nullptr,
                                        shared.plain_address ? &*shared.plain_address : nullptr,
                                        shared.admin_address ? &*shared.admin_address : nullptr};
    return program.check_config(addresses, edge::describe(config),
                                fmt::format("{} shards, {} connections per shard, {}", options->shard_count, *table,
                                            listeners));
  }

  // Seeds that answer as a standalone server are a configuration error,
  // refused here; unreachable ones are a fault ridden out (docs/cluster.md,
  // "Valkey Cluster": seeds checked at start, 2 s for all of them).
  if (!shared.cluster.cluster_seeds.empty()) {
    constexpr uint32_t seed_check_ms = 2000;
    auto seeds = valkey::check_cluster_seeds(shared.cluster.cluster_seeds, shared.cluster.username,
                                             shared.cluster.password, seed_check_ms);
    if (!seeds) return program.fail(seeds.error());
  }

  std::string status = fmt::format("serving {}{}{} with {} shards", config.listen.empty() ? "" : config.listen,
                                   config.listen.empty() || config.plain_listen.empty() ? "" : " and ",
                                   config.plain_listen, options->shard_count);
  const uint32_t shards = options->shard_count;
  return program.serve(
      std::move(*options), [&](Shard& shard) { return edge::EdgeShard::create(shard, shared); }, status, [&] {
        return fmt::format("mf-edge {} serving {} with {} shards ({} connections per shard)", config.edge_id,
                           listeners, shards, *table);
      });
}
