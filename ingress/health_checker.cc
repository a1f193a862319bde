#include "ingress/health_checker.h"

#include <algorithm>
#include <cstring>

namespace mf::ingress {

HealthChecker::HealthChecker(Reactor& reactor, ResultCallback on_result)
    : reactor_(reactor), on_result_(std::move(on_result)) {
  // Deadlines are checked here rather than with the socket timer, which a
  // socket gets only once connected.
  reactor_.add_periodic(20, [this] { tick(); });
}

void HealthChecker::configure(const HealthCheckSettings& settings, std::vector<HealthTarget> targets) {
  settings_ = settings;
  std::vector<Probe> next;
  next.reserve(targets.size());
  uint64_t now = reactor_.now_ms();
  for (size_t i = 0; i < targets.size(); ++i) {
    Probe probe;
    probe.target = std::move(targets[i]);
    // Spread the first probes over the interval so checks do not bunch.
    probe.next_ms = now + (settings_.interval_ms * i) / std::max<size_t>(1, targets.size());
    auto same = std::find_if(probes_.begin(), probes_.end(), [&](const Probe& p) {
      return p.target.index == probe.target.index && p.target.address.text == probe.target.address.text;
    });
    if (same != probes_.end()) {
      probe.socket = same->socket;
      probe.reader = same->reader;
      probe.next_ms = same->next_ms;
      probe.deadline_ms = same->deadline_ms;
      same->socket = {};
    }
    next.push_back(std::move(probe));
  }
  for (Probe& old : probes_)
    if (old.socket.valid()) reactor_.close(old.socket, CloseMode::abort);
  probes_ = std::move(next);
}

void HealthChecker::stop() {
  stopped_ = true;
  for (Probe& probe : probes_) {
    if (probe.socket.valid()) reactor_.close(probe.socket, CloseMode::abort);
    probe.socket = {};
  }
}

HealthChecker::Probe* HealthChecker::probe_of(SocketHandle socket) {
  for (Probe& probe : probes_)
    if (probe.socket == socket) return &probe;
  return nullptr;
}

void HealthChecker::tick() {
  if (stopped_) return;
  uint64_t now = reactor_.now_ms();
  for (Probe& probe : probes_) {
    if (probe.socket.valid()) {
      if (now >= probe.deadline_ms) conclude(probe, false, "timeout");
      continue;
    }
    if (now >= probe.next_ms) start(probe);
  }
}

void HealthChecker::start(Probe& probe) {
  uint64_t now = reactor_.now_ms();
  probe.next_ms = now + settings_.interval_ms;
  probe.deadline_ms = now + settings_.timeout_ms;
  probe.reader = HealthResponseReader{};
  const SocketAddress& address = probe.target.address;
  // No socket or no descriptor index for the probe is this process's
  // shortage, not the backend's: no verdict this interval (a full table
  // must not take healthy backends down).
  auto fd = open_outbound_socket(address.storage.ss_family);
  if (!fd) {
    ++skipped_;
    return;
  }
  auto handle = reactor_.connect_adopted(*fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length, this);
  if (!handle) {
    ++skipped_;
    return;
  }
  ++sockets_;
  probe.socket = *handle;
}

void HealthChecker::conclude(Probe& probe, bool ok, std::string_view reason) {
  SocketHandle socket = probe.socket;
  probe.socket = {};
  reactor_.close(socket, ok ? CloseMode::graceful : CloseMode::abort);
  on_result_(probe.target.index, ok, reason);
}

void HealthChecker::on_connected(SocketHandle socket, int error) {
  Probe* probe = probe_of(socket);
  if (probe == nullptr) return;
  if (error != 0) {
    conclude(*probe, false, error == -ECONNREFUSED ? "connection refused" : "connect failed");
    return;
  }
  uint8_t request[512];
  size_t n = format_health_request(request, probe->target.address.text, settings_.path);
  if (n == 0 || !reactor_.send(socket, {request, n})) conclude(*probe, false, "request not sent");
}

void HealthChecker::on_received(SocketHandle socket, std::span<uint8_t> bytes) {
  Probe* probe = probe_of(socket);
  if (probe == nullptr) return;
  switch (probe->reader.feed(bytes)) {
    case HealthVerdict::incomplete: return;
    case HealthVerdict::healthy: conclude(*probe, true, {}); return;
    case HealthVerdict::unhealthy: conclude(*probe, false, "unhealthy status"); return;
    case HealthVerdict::malformed: conclude(*probe, false, "malformed answer"); return;
  }
}

void HealthChecker::on_peer_closed(SocketHandle socket, int error) {
  Probe* probe = probe_of(socket);
  if (probe == nullptr) return;
  conclude(*probe, false, error == 0 ? "closed without an answer" : "connection reset");
}

void HealthChecker::on_timer(SocketHandle socket) { (void)socket; }

void HealthChecker::on_released(SocketHandle socket) {
  (void)socket;
  --sockets_;
}

}  // namespace mf::ingress
