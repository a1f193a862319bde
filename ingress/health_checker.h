#pragma once
// Active health checks of the backends, run by shard 0 on its own ring:
// every interval each backend gets a fresh TCP connection to its check
// address, a PROXY v2 LOCAL header (the edge's plain listener expects a
// PROXY header; LOCAL says "the proxy's own connection") and
// `GET <path>`; a 2xx status line within the timeout is a success,
// anything else (refused, reset, timeout, another status, garbage) a
// failure. Results go to a callback; what they mean (fall/rise) is the
// BackendPool's business.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/net/listen_socket.h"
#include "common/runtime/reactor.h"
#include "ingress/health_probe.h"

namespace mf::ingress {

struct HealthCheckSettings {
  uint32_t interval_ms = 2000;
  uint32_t timeout_ms = 1000;
  std::string path = "/healthz";
};

struct HealthTarget {
  uint32_t index = 0;  // BackendPool index
  SocketAddress address;
};

class HealthChecker final : public SocketService {
 public:
  // `reason` is empty on success, else a short static text for the log.
  using ResultCallback = std::function<void(uint32_t index, bool ok, std::string_view reason)>;

  HealthChecker(Reactor& reactor, ResultCallback on_result);
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Replaces the targets and settings (start, reload). A probe in flight to
  // a target that stays keeps running; the others are dropped.
  void configure(const HealthCheckSettings& settings, std::vector<HealthTarget> targets);
  // Stops probing and closes probes in flight (shutdown).
  void stop();
  // Probes not yet released.
  size_t sockets() const { return sockets_; }
  // Probes not started for want of a socket or a descriptor index: no
  // verdict, the backend's state stays as it was.
  uint64_t skipped() const { return skipped_; }

  // SocketService
  void on_accepted(SocketHandle, const sockaddr_storage*) override {}
  void on_received(SocketHandle socket, std::span<uint8_t> bytes) override;
  void on_peer_closed(SocketHandle socket, int error) override;
  void on_timer(SocketHandle socket) override;
  void on_connected(SocketHandle socket, int error) override;
  void on_released(SocketHandle socket) override;

 private:
  struct Probe {
    HealthTarget target;
    SocketHandle socket;  // invalid: no probe in flight
    HealthResponseReader reader;
    uint64_t next_ms = 0;      // when the next probe starts
    uint64_t deadline_ms = 0;  // of the probe in flight
  };
  void tick();
  void start(Probe& probe);
  void conclude(Probe& probe, bool ok, std::string_view reason);
  Probe* probe_of(SocketHandle socket);

  Reactor& reactor_;
  ResultCallback on_result_;
  HealthCheckSettings settings_;
  std::vector<Probe> probes_;
  size_t sockets_ = 0;
  uint64_t skipped_ = 0;
  bool stopped_ = false;
};

}  // namespace mf::ingress
