// mf-ingress: the single public WSS endpoint in front of the edges, on the
// program skeleton (common/process/program.h): its configuration and its shards.
#include <fmt/core.h>

#include "common/process/program.h"
#include "common/tls/tls_record_layer_self_test.h"
#include "common/tls/tls_ticket_keys.h"
#include "ingress/ingress_config.h"
#include "ingress/ingress_settings.h"
#include "ingress/ingress_shard.h"

int main(int argc, char** argv) {
  using namespace mf;
  using namespace mf::ingress;
  Program program("mf-ingress", argc, argv, {"public", "admin"});
  auto parsed = parse_ingress_arguments(argc, argv);
  if (!parsed) return program.exit(parsed.error());
  const IngressConfig& config = *parsed;
  if (auto started = program.start(config.log_level); !started) return program.fail(started.error());

  IngressShared shared;
  shared.inherited_listen_fd = program.inherited("public");
  shared.inherited_admin_fd = program.inherited("admin");
  auto listen = parse_socket_address(config.listen);
  if (!listen) return program.fail("listen.address: " + listen.error());
  if (shared.inherited_listen_fd < 0) shared.listen_address = *listen;
  if (!config.admin_listen.empty()) {
    auto admin = parse_socket_address(config.admin_listen);
    if (!admin) return program.fail("admin.listen: " + admin.error());
    shared.admin_address = *admin;
  }
  if (!config.admin_token_file.empty()) {
    auto token = config::read_secret_file(config.admin_token_file);
    if (!token) return program.fail("admin.token_file: " + token.error());
    // It travels in an Authorization header: visible ASCII, and long
    // enough not to be guessed.
    bool visible = true;
    for (char c : *token) visible = visible && c > ' ' && c <= '~';
    if (token->size() < 16 || token->size() > 4096 || !visible)
      return program.fail("admin.token_file: the token must be 16..4096 visible ASCII characters (no spaces)");
    shared.admin_token = std::move(*token);
  }
  shared.admin_allowed_hosts = config.admin_allowed_hosts;

  auto keys = TicketKeys::generate();
  if (!keys) return program.fail(keys.error());
  shared.ticket_keys = *keys;
  auto runtime = ingress_runtime_from(config, shared.ticket_keys, *listen);
  if (!runtime) return program.fail(runtime.error());
  // The certificates loaded once here, so that a bad one fails before any
  // shard builds its own router.
  auto router = SniRouter::create((*runtime)->tls);
  if (!router) return program.fail(router.error());
  {
    tls::ServerContextConfig proof;
    proof.certificates = {(*runtime)->tls.certificates.front()};
    (void)tls::prove_record_layer(proof);  // logs its verdict; a failure leaves the records to OpenSSL
  }
  shared.initial = *runtime;
  shared.tls_watch_interval_ms = config.tls_watch_interval_ms;
  shared.reload = [&program, keys = shared.ticket_keys,
                   listen_address = *listen]() -> std::expected<std::shared_ptr<const IngressRuntime>, std::string> {
    auto again = parse_ingress_arguments(program.arguments(), config::read_whole_file);
    if (!again) return std::unexpected(again.error().message);
    return ingress_runtime_from(*again, keys, listen_address);
  };

  auto table = program.descriptor_table(0, "");
  if (!table) return program.fail(table.error());
  auto options = program.shard_options(config.shards, *table, IngressShard::dispose);
  if (!options) return program.fail(options.error());
  // A queue may overshoot buffer_bytes by what was already in flight when
  // its source paused (a few receive buffers): the hard cap leaves room.
  options->reactor.max_queued_bytes_per_socket = size_t{config.buffer_bytes} + 256 * 1024;

  if (config.check_config) {
    const SocketAddress* addresses[] = {shared.listen_address ? &*shared.listen_address : nullptr,
                                        shared.admin_address ? &*shared.admin_address : nullptr};
    return program.check_config(addresses, describe(config),
                                fmt::format("{} shards, {} backends, {} certificate names, wss on {}",
                                            options->shard_count, config.backends.size(), (*router)->names().size(),
                                            config.listen));
  }

  std::string status = fmt::format("serving wss on {} to {} backends with {} shards", config.listen,
                                   config.backends.size(), options->shard_count);
  return program.serve(
      std::move(*options), [&](Shard& shard) { return IngressShard::create(shard, shared); }, status,
      [&] { return fmt::format("mf-ingress {} ({} connections per shard)", status, *table); });
}
