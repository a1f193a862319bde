#pragma once
// mf-ingress's settings as the shards use them, built from the configuration
// record (ingress/ingress_config.h) in one place: at start and again on
// every SIGHUP reload, which replaces the whole runtime on every shard
// (docs/ingress.md, "Reload").
#include <expected>
#include <memory>
#include <string>

#include "common/net/listen_socket.h"
#include "common/tls/tls_ticket_keys.h"
#include "ingress/ingress_config.h"
#include "ingress/ingress_shard.h"

namespace mf::ingress {

// Everything a reload may change, from a validated configuration: the first
// problem as one line naming the setting. `ticket_keys`: the process's
// session-ticket keys (kept across reloads); `listen`: the public address,
// which the PROXY headers name as the destination.
std::expected<std::shared_ptr<const IngressRuntime>, std::string> ingress_runtime_from(
    const IngressConfig& config, const std::shared_ptr<TicketKeys>& ticket_keys, const SocketAddress& listen);

}  // namespace mf::ingress
