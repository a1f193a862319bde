#pragma once
// The data path of mf-ingress on one shard: each accepted client gets TLS
// terminated here and one plain TCP connection to an edge, which first
// receives a PROXY v2 header (the client's address and port, its SNI and
// ALPN) and then the client's bytes, unchanged, both ways.
//
// Life of a tunnel (phases):
//   admitting   the host checks caps and the source address (perhaps on
//               another shard); reading is paused meanwhile
//   handshake   TLS handshake, bounded by handshake_timeout_ms
//   head        stream affinity only: the first HTTP request head is read
//               (and kept, to be forwarded unchanged) to hash its stream
//   connecting  connect to the chosen backend; a refused or failed connect
//               ejects that backend and retries another within
//               connect_timeout_ms; client bytes wait in `pending`
//   open        bytes flow; each direction stops reading while the other
//               side has buffer_bytes queued (memory per tunnel bounded)
//   closing     both sockets are closing; the slot waits for release
// Half-close: when one side ends (TCP FIN or TLS close_notify) the other
// side's write half is shut after its queue drains, and the tunnel lives on
// for at most half_closed_ms. A tunnel with no byte either way for
// idle_timeout_ms is closed.
//
// Both sockets of a tunnel live in this shard's reactor (two direct
// descriptors). The client socket's slot indexes the tunnel; a backend
// socket's slot records which client it serves.
#include <array>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/runtime/block_pool.h"
#include "common/codec/proxy_protocol.h"
#include "common/runtime/reactor.h"
#include "common/base/slot_array.h"
#include "common/base/slot_fifo.h"
#include "common/tls/tls_session.h"
#include "common/tls/transport_stream.h"
#include "ingress/sni_router.h"

namespace mf::ingress {

// Why a connection was refused before it became a tunnel (metrics label).
enum class RejectReason : uint8_t {
  max_connections,
  per_source_connections,
  per_source_rate,
  handshake_rate,
  no_backend,    // no backend is up and enabled
  backend_full,  // every eligible backend is at its connection cap
  no_descriptor,  // no socket or descriptor index for the backend connection here (not the backend's fault)
  count
};
std::string_view reject_reason_name(RejectReason reason);

// Why a TLS handshake failed (metrics label).
enum class TlsFailure : uint8_t { handshake_timeout, protocol, unknown_sni, version, other, first_bytes_timeout, count };
std::string_view tls_failure_name(TlsFailure failure);

struct TunnelSettings {
  uint32_t handshake_timeout_ms = 5000;  // accept to the first request head (affinity) or TLS done
  uint32_t first_bytes_timeout_ms = 3000;  // accept to the first byte (ClientHello); 0: handshake only
  // % of the reactor's slots kept for admitted tunnels: above the rest,
  // each accept closes the oldest client not yet past its handshake
  // (docs/security.md, "Connection admission"). 0: none.
  uint32_t reserve_percent = 10;
  uint32_t connect_timeout_ms = 3000;    // first connect attempt to a connected backend, retries included
  uint32_t idle_timeout_ms = 600000;
  uint32_t half_closed_ms = 30000;
  uint32_t buffer_bytes = 65536;         // per direction
  bool stream_affinity = false;
  std::string affinity_parameter = "stream";
  proxy::Endpoint listen_endpoint;       // the PROXY header's destination
};

struct BackendTarget {
  uint32_t index = 0;  // BackendPool index
  const sockaddr_storage* address = nullptr;
  socklen_t length = 0;
};

// What the shard decides for the tunnel server. Called on the shard thread.
class TunnelHost {
 public:
  enum class Verdict : uint8_t { admit, refuse, pending };
  // A new client: admit, refuse (with `reason`), or pending (the host calls
  // TunnelServer::complete_admission later). `peer` is the client address.
  virtual Verdict admit_client(SocketHandle client, const proxy::Endpoint* peer, RejectReason& reason) = 0;
  // A backend for a new tunnel; `key_hash` is set under stream affinity
  // when the head named a stream. `exclude` lists backends that already
  // failed for this client. A backend returned is reserved (it counts as
  // one more tunnel, so the next pick sees it) until release_backend(),
  // called exactly once per reservation: after a failed connect, or when
  // the tunnel ends.
  virtual std::expected<BackendTarget, RejectReason> select_backend(std::optional<uint64_t> key_hash,
                                                                    std::span<const uint32_t> exclude) = 0;
  virtual void release_backend(uint32_t backend) = 0;
  // The connect to a reserved backend failed (passive health: eject it).
  virtual void on_connect_failed(uint32_t backend, int error) = 0;
  // The client's slot is free again (per-source accounting ends here).
  virtual void on_client_released(SocketHandle client) = 0;

 protected:
  ~TunnelHost() = default;
};

struct TunnelCounters {
  uint64_t accepted = 0;
  uint64_t tls_full = 0;
  uint64_t tls_resumed = 0;
  std::array<uint64_t, static_cast<size_t>(TlsFailure::count)> tls_failures{};
  std::array<uint64_t, static_cast<size_t>(RejectReason::count)> rejects{};
  uint64_t tunnels_opened = 0;
  uint64_t tunnels_closed = 0;
  uint64_t bytes_to_backend = 0;
  uint64_t bytes_to_client = 0;
  uint64_t connect_failures = 0;
  uint64_t connect_retries = 0;
  uint64_t idle_closes = 0;
  uint64_t half_close_timeouts = 0;
  uint64_t flow_pauses = 0;  // a side stopped reading because the other's queue was full
  uint64_t reserve_evictions = 0;  // clients closed before their handshake to keep the reserve

  TunnelCounters& operator+=(const TunnelCounters& other);
  uint64_t active() const { return tunnels_opened - tunnels_closed; }
};

class TunnelServer final : public SocketService {
 public:
  TunnelServer(Reactor& reactor, const TunnelSettings& settings, TunnelHost& host);
  TunnelServer(const TunnelServer&) = delete;
  TunnelServer& operator=(const TunnelServer&) = delete;
  ~TunnelServer();

  // Certificates for new handshakes (start and reload). Sessions already in
  // their handshake keep the router they started with.
  void set_router(std::shared_ptr<SniRouter> router) { router_ = std::move(router); }
  // New timeouts and buffer size for new tunnels and for timers armed from
  // now on (reload).
  void set_settings(const TunnelSettings& settings) { settings_ = settings; }
  const TunnelSettings& settings() const { return settings_; }

  void complete_admission(SocketHandle client, bool admitted, RejectReason reason);
  // Shutdown: refuses what is not yet a tunnel; with `close_open`, closes
  // the open tunnels too (the drain deadline).
  void close_all(bool close_open);
  // Tunnels and clients not yet released (a stopping shard waits for 0).
  size_t clients() const { return clients_; }
  const TunnelCounters& counters() const { return counters_; }

  // SocketService
  void on_accepted(SocketHandle socket, const sockaddr_storage* peer) override;
  void on_received(SocketHandle socket, std::span<uint8_t> bytes) override;
  void on_peer_closed(SocketHandle socket, int error) override;
  void on_timer(SocketHandle socket) override;
  void on_connected(SocketHandle socket, int error) override;
  void on_sent(SocketHandle socket, size_t queued_bytes) override;
  void on_released(SocketHandle socket) override;
  // Reading pauses while the other side's queue is full (see the reactor).
  bool receive_one_shot() const override { return true; }

 private:
  enum class Phase : uint8_t { idle, admitting, handshake, head, connecting, open, closing };
  static constexpr size_t max_attempts = 3;

  struct Tunnel {
    SocketHandle client;
    SocketHandle backend;
    TransportStream transport;  // the client's side: always TLS here
    std::shared_ptr<SniRouter> router;  // held until the handshake is over
    ByteQueue pending;                  // client bytes before the backend is connected
    proxy::Endpoint source{};
    bool has_source = false;
    Phase phase = Phase::idle;
    bool reserved = false;     // backend_index is reserved (TunnelHost::select_backend)
    bool opened = false;       // connected: counted in tunnels_opened
    bool client_ended = false;  // no more bytes from the client
    bool backend_ended = false;
    bool client_paused = false;
    bool backend_paused = false;
    bool has_key = false;
    uint8_t attempts = 0;
    uint32_t backend_index = 0;
    std::array<uint32_t, max_attempts> failed{};
    uint64_t key_hash = 0;
    uint64_t last_traffic_ms = 0;
    uint64_t connect_deadline_ms = 0;
    uint64_t half_closed_since_ms = 0;  // 0: both directions open
    uint64_t accepted_ms = 0;
    bool got_bytes = false;  // the first-bytes deadline is met
    // In `unadmitted_` (accept order) until past the handshake, for the
    // reserve.
    SlotFifo::Links unadmitted;
  };
  enum class Role : uint8_t { none, client, backend };
  struct SlotRole {
    Role role = Role::none;
    SocketHandle owner;  // backend: the client socket of its tunnel
  };

  void enqueue_unadmitted(Tunnel& t);
  void dequeue_unadmitted(Tunnel& t);
  void keep_reserve(const Tunnel& fresh);
  Tunnel* tunnel_of_client(SocketHandle client);
  Tunnel* tunnel_of_backend(SocketHandle backend);
  void on_client_bytes(Tunnel& t, std::span<uint8_t> bytes);
  void on_client_plaintext(Tunnel& t, std::span<uint8_t> plain);
  void after_handshake(Tunnel& t);
  void on_head_bytes(Tunnel& t, std::span<uint8_t> plain);
  void start_connect(Tunnel& t);
  void on_backend_connected(Tunnel& t);
  void retry_or_fail(Tunnel& t, int error);
  void refuse_for_descriptors(Tunnel& t, int error);
  bool hold_pending(Tunnel& t, std::span<const uint8_t> bytes);
  void send_to_backend(Tunnel& t, std::span<const uint8_t> bytes);
  void client_ended(Tunnel& t);
  void backend_ended(Tunnel& t);
  void refuse(Tunnel& t, RejectReason reason);
  void fail_tls(Tunnel& t, const tls::Failure& failure);
  // Closes both sockets: graceful sends what is queued first.
  void finish(Tunnel& t, bool graceful);
  void arm_timer(Tunnel& t);

  Reactor& reactor_;
  TunnelSettings settings_;
  TunnelHost& host_;
  std::shared_ptr<SniRouter> router_;
  SlotArray<Tunnel> tunnels_;
  SlotArray<SlotRole> roles_;
  std::vector<uint8_t> plaintext_scratch_;
  std::vector<uint8_t> head_scratch_;
  size_t clients_ = 0;
  SlotFifo unadmitted_;
  TunnelCounters counters_;
};

}  // namespace mf::ingress
