#pragma once
// The systemd notify protocol (sd_notify(3)), spoken directly: one datagram
// per state change to the unix socket named by NOTIFY_SOCKET ("@name" is an
// abstract socket). Without NOTIFY_SOCKET every call does nothing, so the
// binaries behave the same outside systemd.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/runtime/shard_group.h"

namespace mf {

class SystemdNotifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID once, at start.
  static SystemdNotifier from_environment();

  bool enabled() const { return fd_ >= 0; }
  // Sends "KEY=value\n..." lines. Never blocks (MSG_DONTWAIT); a lost
  // datagram is not an error worth stopping for. Safe from any thread.
  void notify(std::string_view state) const;
  // READY=1 style helpers.
  void ready(std::string_view status) const;
  void reloading() const;  // RELOADING=1 with MONOTONIC_USEC (systemd 253+ needs it; older ignore it)
  void stopping() const;
  // Half of WATCHDOG_USEC in ms (ping at twice the rate systemd expects), or
  // nothing when the watchdog is off for this process.
  std::optional<uint32_t> watchdog_interval_ms() const { return watchdog_interval_ms_; }

  // Wires the protocol into a shard group (Type=notify units): WATCHDOG=1
  // with "STATUS=<status>, N connections" after every watchdog round (so a
  // stuck shard stops both), STOPPING=1 on SIGTERM, RELOADING=1 then READY=1
  // on SIGHUP. READY=1 at start stays the caller's, once every shard serves.
  // This notifier and `status` must outlive the group's run.
  void attach(ShardGroupOptions& options, const std::string& status) const;

  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;
  SystemdNotifier(SystemdNotifier&& other) noexcept;
  SystemdNotifier& operator=(SystemdNotifier&&) = delete;
  ~SystemdNotifier();

 private:
  SystemdNotifier() = default;
  int fd_ = -1;
  std::string address_;  // sun_path bytes (leading NUL for abstract)
  std::optional<uint32_t> watchdog_interval_ms_;
};

}  // namespace mf
