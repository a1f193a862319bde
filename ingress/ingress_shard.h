#pragma once
// One shard of mf-ingress: its listener, its tunnels, its view of the
// backends, and the slice of per-source counts it owns. Shard 0 also runs
// the health checks, the admin listener, ticket-key rotation and reloads.
//
// Who decides what (all by message, see ingress/ingress_messages.h):
//   health      shard 0 checks every backend and broadcasts each result's
//               state; a shard whose connect fails ejects the backend at
//               once and tells shard 0, which ejects it everywhere
//   source      the shard of hash(address) counts that address's
//               connections and rate, process-wide
//   reload      shard 0 reads the file, then every shard builds its own TLS
//               contexts and applies the same backend list (so backend
//               indices agree across shards)
//   drain API   shard 0 broadcasts drain/enable of one backend index
//   certificates shard 0 watches the certificate, key and OCSP files; when
//               they change and load, every shard rebuilds its TLS contexts
//               from the same settings (docs/security.md, "Certificate reload")
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/http/admin_guard.h"
#include "common/net/listen_socket.h"
#include "common/runtime/shard_collection.h"
#include "common/runtime/shard_group.h"
#include "common/base/slot_array.h"
#include "common/net/source_admission.h"
#include "common/tls/tls_ticket_keys.h"
#include "common/net/token_bucket.h"
#include "common/config/watched_files.h"
#include "common/http/websocket_server.h"
#include "ingress/backend_pool.h"
#include "ingress/health_checker.h"
#include "ingress/ingress_messages.h"
#include "ingress/ingress_metrics.h"
#include "ingress/sni_router.h"
#include "ingress/tunnel_server.h"

namespace mf::ingress {

// Everything a reload may change, resolved and validated; immutable once
// built and shared by every shard.
struct IngressRuntime {
  TunnelSettings tunnel;
  SniRouterOptions tls;
  struct BackendEntry {
    BackendSpec spec;
    SocketAddress address;  // tunnels
    SocketAddress check;    // health probes
  };
  std::vector<BackendEntry> backends;
  PoolSettings pool;
  HealthCheckSettings health;
  uint32_t max_connections = 0;  // clients process-wide; 0: the descriptor tables
  SourceLimitSettings per_source;
  uint32_t handshakes_per_second = 0;  // process-wide; 0: unlimited
  uint32_t drain_deadline_ms = 30000;
  uint32_t ticket_rotation_s = 3600;
};

using RuntimeLoader = std::function<std::expected<std::shared_ptr<const IngressRuntime>, std::string>()>;

// Built once at start-up, shared by every shard.
struct IngressShared {
  std::shared_ptr<const IngressRuntime> initial;
  RuntimeLoader reload;  // runs on shard 0 on SIGHUP
  uint32_t tls_watch_interval_ms = 0;  // shard 0 checks the TLS files this often; 0: SIGHUP only
  std::optional<SocketAddress> listen_address;
  int inherited_listen_fd = -1;
  std::optional<SocketAddress> admin_address;
  int inherited_admin_fd = -1;
  std::string admin_token;                       // read from admin.token_file; empty: drain/enable refused
  std::vector<std::string> admin_allowed_hosts;  // Host names besides IP literals and localhost
  std::shared_ptr<TicketKeys> ticket_keys;

  // Rule 2 is broken here on purpose: a connection cap is one number for
  // the whole process and is checked on every accept and every pick. A
  // relaxed atomic add costs nanoseconds where asking an owner shard would
  // cost a message round trip per connection; nothing else is shared.
  static constexpr uint32_t max_backend_indices = 1024;
  mutable std::atomic<uint32_t> clients{0};
  mutable std::unique_ptr<std::atomic<uint32_t>[]> backend_active =
      std::make_unique<std::atomic<uint32_t>[]>(max_backend_indices);
};

class IngressShard final : public ShardService, public TunnelHost {
 public:
  static std::expected<std::unique_ptr<ShardService>, std::string> create(Shard& shard, const IngressShared& shared);
  static void dispose(const ShardMessage& message);
  ~IngressShard() override;

  // ShardService
  void on_message(const ShardMessage& message) override;
  void on_stop_requested() override;
  bool stopped() const override;
  void on_reload() override;
  // Client connections of this shard, tunnels or not (STATUS=).
  uint64_t live_count() const override { return tunnels_->clients(); }

 private:
  // The admin listener (shard 0): /healthz, /metrics, /api/backends.
  class AdminApp final : public WebSocketApp {
   public:
    explicit AdminApp(IngressShard& ingress) : ingress_(ingress) {}
    Admission admit(SocketHandle, const http::RequestHead&) override { return Admission{404, "not found\n", {}}; }
    void on_open(SocketHandle) override {}
    void on_message(SocketHandle, std::string_view) override {}
    void on_closed(SocketHandle) override {}
    bool healthy() const override { return ingress_.healthy(); }
    bool on_http_request(SocketHandle connection, const http::RequestHead& head) override;

   private:
    IngressShard& ingress_;
  };

  struct ClientState {
    SocketHandle socket;
    bool counted = false;          // in IngressShared::clients
    bool source_pending = false;   // waiting for the owner's verdict
    bool source_acquired = false;  // counted by the owner of `source`
    SourceKey source;
  };
  enum class CollectionKind : uint8_t { metrics, backends };

  IngressShard(Shard& shard, const IngressShared& shared);

  // TunnelHost
  Verdict admit_client(SocketHandle client, const proxy::Endpoint* peer, RejectReason& reason) override;
  std::expected<BackendTarget, RejectReason> select_backend(std::optional<uint64_t> key_hash,
                                                            std::span<const uint32_t> exclude) override;
  void release_backend(uint32_t backend) override;
  void on_connect_failed(uint32_t backend, int error) override;
  void on_client_released(SocketHandle client) override;

  bool healthy() const { return !stopping_ && pool_.any_up(); }
  // Sends a message of IngressMessages to shard `to` (in place when it is
  // this shard); the payload's type decides the delivery
  // (common/runtime/shard_messages.h). A request returns false when the target's
  // mailbox is full (counted as a drop; the payload is freed); a must_arrive
  // type returns nothing and is never dropped.
  template <class P>
  auto send(uint32_t to, P payload);
  // Shard messages (IngressMessages::dispatch).
  template <class...>
  friend class mf::ShardMessageList;
  void on(SourceAcquire request);
  void on(SourceAnswer request);
  void on(SourceRelease request);
  void on(BackendHealth m);
  void on(BackendEject m);
  void on(BackendDrain m);
  void on(RuntimeChanged runtime);
  void on(CertificatesChanged runtime);
  void on(CollectSnapshot m);
  void on(SnapshotReady part);
  void apply_runtime(std::shared_ptr<const IngressRuntime> runtime);
  void on_health_result(uint32_t index, bool ok, std::string_view reason);
  void set_health_everywhere(uint32_t index, bool up);
  void check_drain_deadline();
  void start_collection(SocketHandle waiter, CollectionKind kind, bool head_only);
  std::unique_ptr<IngressSnapshot> snapshot(uint64_t round);
  void on_snapshot(std::unique_ptr<IngressSnapshot> part);
  void handle_backend_admin(SocketHandle connection, const http::RequestHead& head, bool drain);
  void refuse_admin(SocketHandle connection, const AdminRefusal& refusal);
  // Shard 0, every tls_watch_interval_ms: reloads the certificates when
  // their files changed, and reports an OCSP response gone stale.
  void check_certificate_files();
  void report_stale_ocsp_responses();
  void use_router(std::unique_ptr<SniRouter> router);

  Shard& shard_;
  const IngressShared& shared_;
  std::shared_ptr<const IngressRuntime> runtime_;
  std::shared_ptr<SniRouter> router_;
  BackendPool pool_;
  std::vector<const IngressRuntime::BackendEntry*> entries_;  // by pool index; null: removed
  std::vector<uint32_t> global_active_view_;                  // scratch for caps
  bool any_backend_capped_ = false;  // some backend has max_connections: picks read the global counts
  uint32_t handshake_share_ = 0;     // this shard's handshakes per second; 0: unlimited
  std::unique_ptr<TunnelServer> tunnels_;
  SlotArray<ClientState> clients_;
  // The three source messages (ingress/ingress_messages.h) for the one
  // per-source admission (common/net/source_admission.h).
  using SourceMessages = TypedSourceMessenger<IngressShard, SourceAcquire, SourceAnswer, SourceRelease>;
  friend SourceMessages;
  SourceMessages source_messages_{*this};
  SourceAdmission sources_{shard_.id(), shard_.count(), source_messages_};
  TokenBucket handshake_bucket_;
  IngressCounters counters_;
  int listen_fd_ = -1;
  // Shard 0.
  std::unique_ptr<HealthChecker> checker_;
  std::vector<std::pair<uint64_t, uint64_t>> health_checks_;  // by index: ok, failed
  std::unique_ptr<AdminApp> admin_app_;
  std::unique_ptr<WebSocketServer> admin_server_;
  std::optional<AdminGuard> admin_guard_;
  int admin_fd_ = -1;
  ShardCollection<IngressSnapshot, CollectionKind> collection_;
  std::optional<TicketKeyRotation> ticket_rotation_;  // shard 0 only
  std::optional<WatchedFiles> certificate_files_;     // shard 0 with a watch interval
  std::vector<std::pair<std::string, int64_t>> stale_ocsp_reported_;  // shard 0: response file, nextUpdate
  bool stopping_ = false;
  uint64_t stop_deadline_ms_ = 0;
};

template <class P>
auto IngressShard::send(uint32_t to, P payload) {
  return IngressMessages::send(shard_, *this, to, std::move(payload), counters_.mailbox_drops);
}

}  // namespace mf::ingress
