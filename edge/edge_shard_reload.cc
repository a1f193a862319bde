// EdgeShard: the SIGHUP reload (docs/edge.md, "Reload"). Shard 0 reads the
// same command line and file again and checks them as at start; every shard
// then takes what a reload may change, through the same mailboxes as
// everything else, so a message shard 0 sends after the reload reaches each
// shard after it (what tests/system/test_edge_reload.py relies on).
#include "common/base/log.h"
#include "edge/edge_shard.h"

namespace mf::edge {

void EdgeShard::reload_settings() {
  std::expected<std::shared_ptr<const EdgeShared>, std::string> loaded =
      std::unexpected("this process cannot reload its configuration");
  if (shared_.reload) loaded = shared_.reload();
  // The files are read here, on shard 0: the same accepted exception to "no
  // blocking call on a shard thread" as the policy and certificate files
  // (rare, tiny, control plane).
  if (!loaded) {
    counters_.reloads_failed++;
    MF_LOG_ERROR("reload failed, the running configuration stays: {}", loaded.error());
    return;
  }
  counters_.reloads_ok++;
  // The certificate was loaded again (edge_shared_from proved it loads).
  if (tls_) counters_.certificate_reloads_ok++;
  for (uint32_t to = 0; to < shard_.count(); ++to) {
    auto change = std::make_unique<SettingsChanged>();
    change->loaded = *loaded;
    send(to, std::move(change));  // must arrive: a shard that missed it would keep the old settings
  }
  MF_LOG_NOTICE("reloaded: limits, admission{}", tls_ ? " and certificate" : "");
}

void EdgeShard::on_settings_changed(std::unique_ptr<SettingsChanged> m) {
  take_reloadable(running_, *m->loaded);
  const EdgeSettings& s = running_.settings;
  for (WebSocketServer* server : {server_.get(), plain_server_.get()})
    if (server) server->set_timeouts(s.handshake_timeout_ms, s.first_bytes_timeout_ms, s.heartbeat_ms);
  if (tls_) {
    auto context = tls::Context::make_server(running_.tls);
    if (!context) {
      // Shard 0 loaded the same files a moment ago: they changed since, and
      // the watch (or the next SIGHUP) brings them once they load.
      MF_LOG_ERROR("shard {}: reload: {} (keeping the previous certificate)", shard_.id(), context.error());
    } else {
      // In place: the servers hold a pointer to it; sessions already
      // started keep their SSL_CTX.
      *tls_ = std::move(*context);
    }
  }
  if (certificate_files_) certificate_files_.emplace(tls::source_files(running_.tls.certificates));
}

}  // namespace mf::edge
