// mf-edge: the MeshedFlow signaling edge.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
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
#include "common/tls/tls_context.h"
#include "common/tls/tls_record_layer_self_test.h"
#include "common/tls/tls_ticket_keys.h"
#include "edge/edge_config.h"
#include "edge/edge_shard.h"

namespace {

int fail_start(const std::string& line, int code = 1) {
  std::fprintf(stderr, "mf-edge: %s\n", line.c_str());
  return code;
}


std::expected<std::string, std::string> read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected(std::string(what) + ": cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mf;
  auto parsed = edge::parse_edge_arguments(argc, argv);
  if (!parsed) {
    if (parsed.error().exit_code == 0) return 0;
    return fail_start(parsed.error().message, parsed.error().exit_code);
  }
  const edge::EdgeConfig& config = *parsed;
  log::Level level;
  if (!log::parse_level(config.log_level, level)) return fail_start("log_level: unknown level '" + config.log_level + "'");
  log::set_level(level);
  // The tables keyed by client-chosen strings need their secret before any
  // shard starts (common/base/keyed_hash.h).
  if (auto key = init_process_hash_key(); !key) return fail_start(key.error());

  edge::EdgeShared shared;
  edge::EdgeSettings& s = shared.settings;
  s.edge_id = config.edge_id;
  s.websocket_path = config.websocket_path;
  s.heartbeat_ms = config.heartbeat_ms;
  s.handshake_timeout_ms = config.handshake_timeout_ms;
  s.first_bytes_timeout_ms = config.first_bytes_timeout_ms;
  s.reserve_percent = config.reserve_percent;
  s.max_message_bytes = config.max_message_bytes;
  s.max_connections = config.max_connections;
  s.messages_per_second = config.messages_per_second;
  s.message_burst = config.message_burst;
  s.error_limit = config.error_limit;
  s.error_window_ms = config.error_window_ms;
  s.drain_ms = config.drain_ms;
  s.drain_deadline_ms = config.drain_deadline_ms;
  s.policy_file = config.policy_file;
  s.policy_watch = config.policy_watch;
  s.tracker_path = config.tracker_path;
  s.tracker_max_message_bytes = config.tracker_max_message_bytes;
  s.tracker.max_offers = config.tracker_max_offers;
  s.tracker.interval_s = config.tracker_interval_s;
  s.tracker.offer_ttl_ms = config.tracker_offer_ttl_s * 1000;
  // Peers silent for 1.5 intervals are gone (docs/tracker.md, "Limits").
  s.tracker.peer_ttl_ms = config.tracker_interval_s * 1500;
  s.tls_watch_interval_ms = config.tls_watch_interval_ms;

  shared.per_source = SourceLimitSettings{config.per_source_connections, config.per_source_rate, config.per_source_burst,
                                          SourcePrefixes{static_cast<uint8_t>(config.per_source_ipv4_prefix),
                                                         static_cast<uint8_t>(config.per_source_ipv6_prefix)}};
  shared.admin_allowed_hosts = config.admin_allowed_hosts;
  shared.history_period_ms = config.history_period_ms;
  shared.history_samples = config.history_samples;
  shared.plain_proxy_protocol = config.proxy_protocol;
  if (!config.plain_listen.empty()) {
    auto plain = parse_socket_address(config.plain_listen);
    if (!plain) return fail_start("listen.plain: " + plain.error());
    shared.plain_address = *plain;
  }
  if (!config.admin_listen.empty()) {
    auto admin = parse_socket_address(config.admin_listen);
    if (!admin) return fail_start("admin.listen: " + admin.error());
    shared.admin_address = *admin;
  }
  // Socket activation: listeners handed over by systemd replace binding.
  auto inherited = take_inherited_sockets();
  if (!inherited) return fail_start(inherited.error());
  for (const InheritedSocket& socket : *inherited) {
    if (socket.name == "public" || (socket.name == "unknown" && shared.inherited_public_fd < 0))
      shared.inherited_public_fd = socket.fd;
    else if (socket.name == "plain")
      shared.inherited_plain_fd = socket.fd;
    else if (socket.name == "admin")
      shared.inherited_admin_fd = socket.fd;
    else
      return fail_start("socket activation: unknown socket name '" + socket.name +
                        "' (FileDescriptorName= must be public, plain or admin)");
  }
  if (!config.listen.empty() && shared.inherited_public_fd < 0) {
    auto address = parse_socket_address(config.listen);
    if (!address) return fail_start("listen.public: " + address.error());
    shared.listen_address = *address;
  }

  if (auto probe = probe_io_uring_support(); !probe) return fail_start(probe.error());

  if (!config.tls_certificate.empty()) {
    auto keys = TicketKeys::generate();
    if (!keys) return fail_start(keys.error());
    shared.tls.certificates.push_back({config.tls_certificate, config.tls_key});
    shared.tls.ticket_keys = *keys;
    shared.ticket_rotation_s = config.ticket_rotation_s;
    // Validate once here so a bad certificate fails before any thread starts.
    auto context = tls::Context::make_server(shared.tls);
    if (!context) return fail_start(context.error());
    (void)tls::prove_record_layer(shared.tls);  // logs its verdict; a failure leaves the records to OpenSSL
  }
  if (!config.jwt_secret_file.empty()) {
    auto secret = read_file(config.jwt_secret_file, "admission.jwt_secret_file");
    if (!secret) return fail_start(secret.error());
    std::string key = *secret;
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
    auto verifier = edge::JwtVerifier::create(key, config.jwt_leeway_s);
    if (!verifier) return fail_start("admission.jwt_secret_file: " + verifier.error());
    if (!verifier->weak_secret_warning().empty()) MF_LOG_WARN("{}", verifier->weak_secret_warning());
    shared.jwt.emplace(std::move(*verifier));
  }
  if (!config.valkey_address.empty() || !config.valkey_cluster_seeds.empty()) {
    edge::ClusterSettings& c = shared.cluster;
    c.address = config.valkey_address;
    c.cluster_seeds = config.valkey_cluster_seeds;
    c.username = config.valkey_username;
    c.key_prefix = config.valkey_key_prefix;
    c.presence_ttl_ms = config.valkey_presence_ttl_ms;
    c.refresh_ms = std::min(config.valkey_refresh_ms, config.valkey_presence_ttl_ms / 3);
    if (!config.valkey_password_file.empty()) {
      auto password = read_file(config.valkey_password_file, "valkey.password_file");
      if (!password) return fail_start(password.error());
      c.password = *password;
      while (!c.password.empty() && (c.password.back() == '\n' || c.password.back() == '\r')) c.password.pop_back();
    }
  }
  if (!config.allowed_origins.empty() || config.require_origin) {
    auto origins = edge::OriginAllowList::create(config.allowed_origins, config.require_origin);
    if (!origins) return fail_start("admission.allowed_origins: " + origins.error());
    shared.origins.emplace(std::move(*origins));
  }
  if (!config.policy_file.empty()) {
    auto text = read_file(config.policy_file, "policy.file");
    if (!text) return fail_start(text.error());
    auto document = edge::PolicyDocument::parse(*text);
    if (!document) return fail_start("policy.file " + config.policy_file + ": " + document.error());
    shared.initial_policy = std::make_shared<const edge::PolicyDocument>(std::move(*document));
  } else {
    shared.initial_policy = std::make_shared<const edge::PolicyDocument>();
  }

  uint32_t table_limit = raise_descriptor_limit();
  uint32_t per_shard = config.max_connections_per_shard == 0 ? table_limit : config.max_connections_per_shard;
  if (per_shard > table_limit)
    return fail_start("limits.max_connections_per_shard " + std::to_string(per_shard) +
                      " exceeds the per-ring descriptor table limit " + std::to_string(table_limit) + " (RLIMIT_NOFILE)");
  if (per_shard < 16) return fail_start("limits.max_connections_per_shard must be at least 16 (RLIMIT_NOFILE too low?)");

  ShardGroupOptions options;
  options.shard_count = config.shards != 0 ? config.shards : std::max(1u, std::thread::hardware_concurrency());
  options.reactor.max_sockets = per_shard;
  options.reactor.max_queued_bytes_per_socket = config.send_queue_bytes;
  options.dispose_undelivered = edge::EdgeShard::dispose;
#if defined(MF_TEST_HOOKS)
  // MF_TEST_MAILBOX_CAPACITY=N (a power of two): every mailbox holds N
  // messages, so they refuse under a small load and obligations must wait
  // (tests/system/test_mailbox_overflow.py). Compiled only with -Dtest_hooks=true.
  if (const char* hook = std::getenv("MF_TEST_MAILBOX_CAPACITY")) {
    unsigned long capacity = std::strtoul(hook, nullptr, 10);
    if (capacity == 0 || (capacity & (capacity - 1)) != 0) return fail_start("MF_TEST_MAILBOX_CAPACITY: not a power of two");
    options.mailbox_capacity = static_cast<uint32_t>(capacity);
  }
#endif

  if (config.check_config) {
    const SocketAddress* addresses[] = {shared.listen_address ? &*shared.listen_address : nullptr,
                                        shared.plain_address ? &*shared.plain_address : nullptr,
                                        shared.admin_address ? &*shared.admin_address : nullptr};
    auto notes = check_bindable(addresses);
    if (!notes) return fail_start(notes.error());
    for (const std::string& note : *notes) std::printf("# mf-edge: note: %s\n", note.c_str());
    std::printf("%s", edge::describe(config).c_str());
    std::string listeners;
    if (!config.listen.empty()) listeners += std::string(config.tls_certificate.empty() ? "ws on " : "wss on ") + config.listen;
    if (!config.plain_listen.empty())
      listeners += (listeners.empty() ? "" : ", ") + std::string("plain ws on ") + config.plain_listen +
                   (config.proxy_protocol ? " (PROXY v2)" : "");
    std::printf("# mf-edge: configuration ok (%u shards, %u connections per shard, %s)\n", options.shard_count,
                per_shard, listeners.c_str());
    return 0;
  }

  // Under systemd (Type=notify): READY=1 once every shard serves, STOPPING=1
  // on drain, RELOADING=1 then READY=1 on SIGHUP, and WATCHDOG=1 only while
  // every shard's loop answers the watchdog probes.
  SystemdNotifier notifier = SystemdNotifier::from_environment();
  std::string status = fmt::format("serving {}{}{} with {} shards", config.listen.empty() ? "" : config.listen,
                                   config.listen.empty() || config.plain_listen.empty() ? "" : " and ",
                                   config.plain_listen, options.shard_count);
  notifier.attach(options, status);

  ShardGroup::block_process_signals();
  ShardGroup group;
  auto result = group.run(
      options, [&](Shard& shard) { return edge::EdgeShard::create(shard, shared); },
      [&] {  // runs on this thread once every shard serves
        notifier.ready(status);
        MF_LOG_NOTICE("mf-edge {} serving {}{}{} with {} shards ({} connections per shard)", config.edge_id,
                      config.listen.empty() ? "" : (config.tls_certificate.empty() ? "ws on " : "wss on ") + config.listen,
                      config.plain_listen.empty() ? "" : (config.listen.empty() ? "plain ws on " : ", plain ws on "),
                      config.plain_listen, options.shard_count, per_shard);
      });
  if (!result) return fail_start(result.error());
  MF_LOG_NOTICE("mf-edge stopped");
  return 0;
}
