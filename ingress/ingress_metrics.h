#pragma once
// What one ingress shard reports for /metrics and /api/backends, and their
// rendering once shard 0 has every shard's part (no counter is read across
// threads: each shard fills its own snapshot when asked by message).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/tls/tls_context.h"
#include "ingress/backend_pool.h"
#include "ingress/tunnel_server.h"

namespace mf::ingress {

struct IngressCounters {
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  uint64_t mailbox_drops = 0;
  uint64_t health_checks_ok = 0;    // shard 0
  uint64_t health_checks_failed = 0;
  uint64_t health_checks_skipped = 0;  // shard 0: probes not started for want of a socket here
  uint64_t admin_refusals = 0;      // shard 0: admin requests refused (Origin, Host, token)
  uint64_t certificate_reloads_ok = 0;      // shard 0: changed TLS files loaded
  uint64_t certificate_reloads_failed = 0;  // shard 0: changed TLS files refused (the old ones serve)
  uint64_t ocsp_stale = 0;                  // shard 0: OCSP responses seen past their nextUpdate
};

struct IngressSnapshot {
  uint32_t shard = 0;
  uint64_t round = 0;  // the collection round it answers (ShardCollection)
  TunnelCounters tunnels;
  IngressCounters ingress;
  uint64_t clients = 0;  // connections not yet released, tunnels or not
  // This shard's io_uring direct-descriptor table: slots held (client,
  // backend and health-check sockets) and its size.
  uint64_t descriptors_used = 0;
  uint64_t descriptor_slots = 0;
  // This shard's view of every backend (local counts; shard 0's health).
  std::vector<Backend> backends;
  // Shard 0 only: per backend index, checks ok and failed.
  std::vector<std::pair<uint64_t, uint64_t>> health_checks;
  bool draining = false;
  // Shard 0 only: what the TLS listener serves.
  std::vector<tls::ServedCertificate> served;
};

using IngressSnapshots = std::vector<std::unique_ptr<IngressSnapshot>>;

// Prometheus text exposition format 0.0.4 (names in docs/ingress.md).
// parts[0] is shard 0's: health and drain states come from it.
std::string format_ingress_prometheus(const IngressSnapshots& parts);

// The /api/backends document; a backend up for less than `slow_start_ms`
// at `now_ms` is in slow start.
std::string format_backends_json(const IngressSnapshots& parts, uint64_t now_ms, uint64_t slow_start_ms);

}  // namespace mf::ingress
