// mf-edge: the MeshedFlow signaling edge.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "common/io_uring_ring.h"
#include "common/listen_socket.h"
#include "common/log.h"
#include "common/shard_group.h"
#include "common/tls_context.h"
#include "common/tls_ticket_keys.h"
#include "edge/edge_config.h"
#include "edge/edge_shard.h"

namespace {

int fail_start(const std::string& line) {
  std::fprintf(stderr, "mf-edge: %s\n", line.c_str());
  return 1;
}

// The per-process descriptor limit also bounds each ring's direct-descriptor
// table; raise the soft limit to the hard one (always allowed).
uint32_t raise_descriptor_limit() {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur > (1u << 20) ? (1u << 20) : static_cast<uint32_t>(limit.rlim_cur);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mf;
  auto parsed = edge::parse_edge_arguments(argc, argv);
  if (!parsed) {
    if (parsed.error().exit_code == 0) return 0;
    return fail_start(parsed.error().message);
  }
  edge::EdgeShared shared;
  shared.config = *parsed;
  edge::EdgeConfig& config = shared.config;
  log::Level level;
  if (!log::parse_level(config.log_level, level)) return fail_start("--log-level: unknown level '" + config.log_level + "'");
  log::set_level(level);

  auto address = parse_socket_address(config.listen);
  if (!address) return fail_start("--listen: " + address.error());
  shared.listen_address = *address;

  if (auto probe = probe_io_uring_support(); !probe) return fail_start(probe.error());

  if (!config.tls_certificate.empty()) {
    auto keys = TicketKeys::generate();
    if (!keys) return fail_start(keys.error());
    shared.tls.certificates.push_back({config.tls_certificate, config.tls_key});
    shared.tls.ticket_keys = *keys;
    // Validate once here so a bad certificate fails before any thread starts.
    auto context = tls::Context::make_server(shared.tls);
    if (!context) return fail_start(context.error());
  }

  uint32_t table_limit = raise_descriptor_limit();
  uint32_t per_shard = config.max_connections_per_shard == 0 ? table_limit : config.max_connections_per_shard;
  if (per_shard > table_limit)
    return fail_start("--max-connections " + std::to_string(per_shard) + " exceeds the per-ring descriptor table limit " +
                      std::to_string(table_limit) + " (RLIMIT_NOFILE)");
  if (per_shard < 16) return fail_start("--max-connections must be at least 16 (RLIMIT_NOFILE too low?)");

  ShardGroupOptions options;
  options.shard_count = config.shards != 0 ? config.shards : std::max(1u, std::thread::hardware_concurrency());
  options.reactor.max_sockets = per_shard;

  if (config.check_config) {
    // Bind once to prove the address is usable, then stop.
    auto fd = open_listener(shared.listen_address, 16);
    if (!fd) return fail_start(fd.error());
    ::close(*fd);
    std::printf("mf-edge: configuration ok (%u shards, %u connections per shard, %s on %s)\n", options.shard_count,
                per_shard, config.tls_certificate.empty() ? "ws" : "wss", config.listen.c_str());
    return 0;
  }

  ShardGroup::block_process_signals();
  ShardGroup group;
  auto result = group.run(
      options, [&](Shard& shard) { return edge::EdgeShard::create(shard, shared); },
      [&] {
        MF_LOG_NOTICE("mf-edge {} serving {} on {} with {} shards ({} connections per shard)", config.edge_id,
                      config.tls_certificate.empty() ? "ws" : "wss", config.listen, options.shard_count, per_shard);
      });
  if (!result) return fail_start(result.error());
  MF_LOG_NOTICE("mf-edge stopped");
  return 0;
}
