// mf-ingress: the single public WSS endpoint in front of the edges.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <thread>

#include <fmt/core.h>

#include "common/net/descriptor_limit.h"
#include "common/runtime/io_uring_ring.h"
#include "common/net/listen_socket.h"
#include "common/base/keyed_hash.h"
#include "common/base/log.h"
#include "common/runtime/shard_group.h"
#include "common/net/socket_activation.h"
#include "common/process/systemd_notifier.h"
#include "common/tls/tls_record_layer_self_test.h"
#include "common/tls/tls_ticket_keys.h"
#include "ingress/ingress_config.h"
#include "ingress/ingress_shard.h"

namespace {

using namespace mf;
using namespace mf::ingress;

int fail_start(const std::string& line, int code = 1) {
  std::fprintf(stderr, "mf-ingress: %s\n", line.c_str());
  return code;
}

// Everything a reload may change, from a validated configuration.
std::expected<std::shared_ptr<const IngressRuntime>, std::string> build_runtime(
    const IngressConfig& config, const std::shared_ptr<TicketKeys>& ticket_keys, const SocketAddress& listen) {
  auto runtime = std::make_shared<IngressRuntime>();
  TunnelSettings& tunnel = runtime->tunnel;
  tunnel.handshake_timeout_ms = config.handshake_timeout_ms;
  tunnel.first_bytes_timeout_ms = config.first_bytes_timeout_ms;
  tunnel.reserve_percent = config.reserve_percent;
  tunnel.connect_timeout_ms = config.connect_timeout_ms;
  tunnel.idle_timeout_ms = config.idle_timeout_ms;
  tunnel.half_closed_ms = config.half_closed_timeout_ms;
  tunnel.buffer_bytes = config.buffer_bytes;
  tunnel.stream_affinity = config.balance_mode == "stream-affinity";
  tunnel.affinity_parameter = config.affinity_parameter;
  auto endpoint = proxy::endpoint_from_sockaddr(reinterpret_cast<const sockaddr*>(&listen.storage), listen.length);
  if (endpoint) tunnel.listen_endpoint = *endpoint;

  SniRouterOptions& tls = runtime->tls;
  for (const CertificateSetting& c : config.certificates)
    tls.certificates.push_back({c.certificate, c.key, c.ocsp_response});
  tls.alpn = config.alpn;
  tls.min_version = config.tls_min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  tls.ticket_keys = ticket_keys;
  tls.refuse_unknown_names = config.unknown_sni == "refuse";

  for (const BackendSetting& b : config.backends) {
    IngressRuntime::BackendEntry entry;
    entry.spec = BackendSpec{b.address, b.weight, b.max_connections, b.drained};
    auto address = parse_socket_address(b.address);
    if (!address) return std::unexpected("backend " + b.address + ": " + address.error());
    entry.address = *address;
    auto check = parse_socket_address(b.check_address.empty() ? b.address : b.check_address);
    if (!check) return std::unexpected("backend " + b.address + " check_address: " + check.error());
    entry.check = *check;
    runtime->backends.push_back(std::move(entry));
  }
  runtime->pool.health = HealthSettings{config.health_fall, config.health_rise, config.health_slow_start_ms};
  runtime->pool.affinity_load_factor_percent = config.affinity_load_factor_percent;
  runtime->health = HealthCheckSettings{config.health_interval_ms, config.health_timeout_ms, config.health_path};
  runtime->max_connections = config.max_connections;
  runtime->per_source = SourceLimitSettings{config.per_source_connections, config.per_source_rate, config.per_source_burst,
                                            SourcePrefixes{static_cast<uint8_t>(config.per_source_ipv4_prefix),
                                                           static_cast<uint8_t>(config.per_source_ipv6_prefix)}};
  runtime->handshakes_per_second = config.handshakes_per_second;
  runtime->drain_deadline_ms = config.drain_deadline_ms;
  runtime->ticket_rotation_s = config.ticket_rotation_s;
  return std::shared_ptr<const IngressRuntime>(std::move(runtime));
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> argument_storage(argv + 1, argv + argc);
  auto parsed = parse_ingress_arguments(argc, argv);
  if (!parsed) {
    if (parsed.error().exit_code == 0) return 0;
    return fail_start(parsed.error().message, parsed.error().exit_code);
  }
  const IngressConfig& config = *parsed;
  log::Level level;
  if (!log::parse_level(config.log_level, level)) return fail_start("log_level: unknown level '" + config.log_level + "'");
  log::set_level(level);
  // Per-source tables and the owning shard of a source hash addresses with
  // the process's secret (common/base/keyed_hash.h): drawn now, or no start.
  if (auto key = init_process_hash_key(); !key) return fail_start(key.error());

  IngressShared shared;
  auto inherited = take_inherited_sockets();
  if (!inherited) return fail_start(inherited.error());
  for (const InheritedSocket& socket : *inherited) {
    if (socket.name == "public" || (socket.name == "unknown" && shared.inherited_listen_fd < 0))
      shared.inherited_listen_fd = socket.fd;
    else if (socket.name == "admin")
      shared.inherited_admin_fd = socket.fd;
    else
      return fail_start("socket activation: unknown socket name '" + socket.name +
                        "' (FileDescriptorName= must be public or admin)");
  }
  auto listen = parse_socket_address(config.listen);
  if (!listen) return fail_start("listen.address: " + listen.error());
  if (shared.inherited_listen_fd < 0) shared.listen_address = *listen;
  if (!config.admin_listen.empty()) {
    auto admin = parse_socket_address(config.admin_listen);
    if (!admin) return fail_start("admin.listen: " + admin.error());
    shared.admin_address = *admin;
  }
  if (!config.admin_token_file.empty()) {
    auto token = config::read_whole_file(config.admin_token_file);
    if (!token) return fail_start("admin.token_file: " + token.error());
    std::string text = *token;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    // It travels in an Authorization header: visible ASCII, and long
    // enough not to be guessed.
    bool visible = true;
    for (char c : text) visible = visible && c > ' ' && c <= '~';
    if (text.size() < 16 || text.size() > 4096 || !visible)
      return fail_start("admin.token_file: the token must be 16..4096 visible ASCII characters (no spaces)");
    shared.admin_token = std::move(text);
  }
  shared.admin_allowed_hosts = config.admin_allowed_hosts;
  if (auto probe = probe_io_uring_support(); !probe) return fail_start(probe.error());

  auto keys = TicketKeys::generate();
  if (!keys) return fail_start(keys.error());
  shared.ticket_keys = *keys;
  auto runtime = build_runtime(config, shared.ticket_keys, *listen);
  if (!runtime) return fail_start(runtime.error());
  // Validate the certificates once here so a bad one fails before any thread starts.
  auto router = SniRouter::create((*runtime)->tls);
  if (!router) return fail_start(router.error());
  {
    tls::ServerContextConfig proof;
    proof.certificates = {(*runtime)->tls.certificates.front()};
    (void)tls::prove_record_layer(proof);  // logs its verdict; a failure leaves the records to OpenSSL
  }
  shared.initial = *runtime;
  shared.tls_watch_interval_ms = config.tls_watch_interval_ms;
  SocketAddress listen_address = *listen;
  shared.reload = [argument_storage, keys = shared.ticket_keys,
                   listen_address]() -> std::expected<std::shared_ptr<const IngressRuntime>, std::string> {
    std::vector<std::string_view> arguments(argument_storage.begin(), argument_storage.end());
    auto again = parse_ingress_arguments(arguments, config::read_whole_file);
    if (!again) return std::unexpected(again.error().message);
    return build_runtime(*again, keys, listen_address);
  };

  uint32_t table_limit = raise_descriptor_limit();
  if (table_limit < 16) return fail_start("RLIMIT_NOFILE is too low for a descriptor table of 16");

  ShardGroupOptions options;
  options.shard_count = config.shards != 0 ? config.shards : std::max(1u, std::thread::hardware_concurrency());
  options.reactor.max_sockets = table_limit;
  // A queue may overshoot buffer_bytes by what was already in flight when
  // its source paused (a few receive buffers): the hard cap leaves room.
  options.reactor.max_queued_bytes_per_socket = size_t{config.buffer_bytes} + 256 * 1024;
  options.dispose_undelivered = IngressShard::dispose;

  if (config.check_config) {
    const SocketAddress* addresses[] = {shared.listen_address ? &*shared.listen_address : nullptr,
                                        shared.admin_address ? &*shared.admin_address : nullptr};
    auto notes = check_bindable(addresses);
    if (!notes) return fail_start(notes.error());
    for (const std::string& note : *notes) std::printf("# mf-ingress: note: %s\n", note.c_str());
    std::printf("%s", describe(config).c_str());
    std::printf("# mf-ingress: configuration ok (%u shards, %zu backends, %zu certificate names, wss on %s)\n",
                options.shard_count, config.backends.size(), (*router)->names().size(), config.listen.c_str());
    return 0;
  }

  SystemdNotifier notifier = SystemdNotifier::from_environment();
  std::string status = fmt::format("serving wss on {} to {} backends with {} shards", config.listen,
                                   config.backends.size(), options.shard_count);
  notifier.attach(options, status);

  ShardGroup::block_process_signals();
  ShardGroup group;
  auto result = group.run(
      options, [&](Shard& shard) { return IngressShard::create(shard, shared); },
      [&] {
        notifier.ready(status);
        MF_LOG_NOTICE("mf-ingress {} ({} connections per shard)", status, table_limit);
      });
  if (!result) return fail_start(result.error());
  MF_LOG_NOTICE("mf-ingress stopped");
  return 0;
}
