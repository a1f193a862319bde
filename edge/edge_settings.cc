#include "edge/edge_settings.h"

#include <algorithm>

#include "common/config/config_schema.h"
#include "common/base/log.h"

namespace mf::edge {

std::expected<EdgeShared, std::string> edge_shared_from(const EdgeConfig& config, const InheritedListeners& inherited,
                                                        std::shared_ptr<TicketKeys> ticket_keys) {
  EdgeShared shared;
  EdgeSettings& s = shared.settings;
  static_cast<EdgeConfig&>(s) = config;
  s.tracker.max_offers = config.tracker_max_offers;
  s.tracker.interval_s = config.tracker_interval_s;
  s.tracker.offer_ttl_ms = config.tracker_offer_ttl_s * 1000;
  // Peers silent for 1.5 intervals are gone (docs/tracker.md, "Limits").
  s.tracker.peer_ttl_ms = config.tracker_interval_s * 1500;

  shared.per_source = SourceLimitSettings{config.per_source_connections, config.per_source_rate, config.per_source_burst,
                                          SourcePrefixes{static_cast<uint8_t>(config.per_source_ipv4_prefix),
                                                         static_cast<uint8_t>(config.per_source_ipv6_prefix)}};
  shared.inherited_public_fd = inherited.public_fd;
  shared.inherited_plain_fd = inherited.plain_fd;
  shared.inherited_admin_fd = inherited.admin_fd;
  if (!config.plain_listen.empty()) {
    auto plain = parse_socket_address(config.plain_listen);
    if (!plain) return std::unexpected("listen.plain: " + plain.error());
    shared.plain_address = *plain;
  }
  if (!config.admin_listen.empty()) {
    auto admin = parse_socket_address(config.admin_listen);
    if (!admin) return std::unexpected("admin.listen: " + admin.error());
    shared.admin_address = *admin;
  }
  if (!config.listen.empty() && shared.inherited_public_fd < 0) {
    auto address = parse_socket_address(config.listen);
    if (!address) return std::unexpected("listen.public: " + address.error());
    shared.listen_address = *address;
  }

  if (!config.tls_certificate.empty()) {
    shared.tls.certificates.push_back({config.tls_certificate, config.tls_key});
    shared.tls.ticket_keys = std::move(ticket_keys);
    // Loaded once here so that a bad certificate fails before any shard
    // builds its own context from it.
    auto context = tls::Context::make_server(shared.tls);
    if (!context) return std::unexpected(context.error());
  }
  if (!config.jwt_secret_file.empty()) {
    auto secret = config::read_secret_file(config.jwt_secret_file);
    if (!secret) return std::unexpected("admission.jwt_secret_file: " + secret.error());
    auto verifier = JwtVerifier::create(*secret, config.jwt_leeway_s);
    if (!verifier) return std::unexpected("admission.jwt_secret_file: " + verifier.error());
    if (!verifier->weak_secret_warning().empty()) MF_LOG_WARN("{}", verifier->weak_secret_warning());
    shared.jwt = std::make_shared<const JwtVerifier>(std::move(*verifier));
  }
  if (!config.valkey_address.empty() || !config.valkey_cluster_seeds.empty()) {
    ClusterSettings& c = shared.cluster;
    c.address = config.valkey_address;
    c.cluster_seeds = config.valkey_cluster_seeds;
    c.username = config.valkey_username;
    c.key_prefix = config.valkey_key_prefix;
    c.presence_ttl_ms = config.valkey_presence_ttl_ms;
    c.refresh_ms = std::min(config.valkey_refresh_ms, config.valkey_presence_ttl_ms / 3);
    // Each swarm's refresh brings its counts on every edge once per
    // refresh_ms; two periods without one (Valkey down or slow): the local
    // counts again (docs/cluster.md, "Tracker swarms across edges").
    s.tracker.cluster_counts_ttl_ms = 2 * c.refresh_ms;
    if (!config.valkey_password_file.empty()) {
      auto password = config::read_secret_file(config.valkey_password_file);
      if (!password) return std::unexpected("valkey.password_file: " + password.error());
      c.password = std::move(*password);
    }
  }
  if (!config.allowed_origins.empty() || config.require_origin) {
    auto origins = OriginAllowList::create(config.allowed_origins, config.require_origin);
    if (!origins) return std::unexpected("admission.allowed_origins: " + origins.error());
    shared.origins = std::make_shared<const OriginAllowList>(std::move(*origins));
  }
  if (!config.policy_file.empty()) {
    auto text = config::read_whole_file(config.policy_file);
    if (!text) return std::unexpected("policy.file: cannot read " + config.policy_file + ": " + text.error());
    auto document = PolicyDocument::parse(*text);
    if (!document) return std::unexpected("policy.file " + config.policy_file + ": " + document.error());
    shared.initial_policy = std::make_shared<const PolicyDocument>(std::move(*document));
  } else {
    shared.initial_policy = std::make_shared<const PolicyDocument>();
  }
  return shared;
}

void take_reloadable(EdgeShared& running, const EdgeShared& loaded) {
  EdgeSettings& s = running.settings;
  const EdgeSettings& l = loaded.settings;
  s.max_connections = l.max_connections;
  s.messages_per_second = l.messages_per_second;
  s.message_burst = l.message_burst;
  s.error_limit = l.error_limit;
  s.error_window_ms = l.error_window_ms;
  s.drain_ms = l.drain_ms;
  s.drain_deadline_ms = l.drain_deadline_ms;
  s.handshake_timeout_ms = l.handshake_timeout_ms;
  s.first_bytes_timeout_ms = l.first_bytes_timeout_ms;
  s.heartbeat_ms = l.heartbeat_ms;
  running.per_source = loaded.per_source;
  // A listener built with TLS keeps TLS (and one without stays plain): the
  // certificate files change, not whether there is one.
  if (!running.tls.certificates.empty() && !loaded.tls.certificates.empty()) {
    running.tls.certificates = loaded.tls.certificates;
    running.settings.ticket_rotation_s = loaded.settings.ticket_rotation_s;
  }
  running.jwt = loaded.jwt;
  running.origins = loaded.origins;
}

}  // namespace mf::edge
