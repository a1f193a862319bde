#include "common/process/systemd_notifier.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

namespace mf {

SystemdNotifier SystemdNotifier::from_environment() {
  SystemdNotifier n;
  const char* socket_path = std::getenv("NOTIFY_SOCKET");
  if (socket_path != nullptr && socket_path[0] != '\0' && std::strlen(socket_path) < sizeof(sockaddr_un::sun_path)) {
    n.address_ = socket_path;
    if (n.address_[0] == '@') n.address_[0] = '\0';  // abstract namespace
    n.fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  }
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  bool for_us = pid == nullptr || std::strtol(pid, nullptr, 10) == static_cast<long>(getpid());
  if (usec != nullptr && for_us) {
    uint64_t value = 0;
    std::string_view text(usec);
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc() && value >= 2000) n.watchdog_interval_ms_ = static_cast<uint32_t>(value / 2000);
  }
  return n;
}

SystemdNotifier::SystemdNotifier(SystemdNotifier&& other) noexcept
    : fd_(other.fd_), address_(std::move(other.address_)), watchdog_interval_ms_(other.watchdog_interval_ms_) {
  other.fd_ = -1;
}

SystemdNotifier::~SystemdNotifier() {
  if (fd_ >= 0) ::close(fd_);
}

void SystemdNotifier::notify(std::string_view state) const {
  if (fd_ < 0) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, address_.data(), address_.size());
  socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
  ::sendto(fd_, state.data(), state.size(), MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr),
           length);
}

void SystemdNotifier::ready(std::string_view status) const {
  std::string message = "READY=1\nSTATUS=";
  message += status;
  notify(message);
}

void SystemdNotifier::reloading() const {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t usec = static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
  notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void SystemdNotifier::stopping() const { notify("STOPPING=1"); }

void SystemdNotifier::attach(ShardGroupOptions& options, const std::string& status) const {
  options.watchdog_interval_ms = watchdog_interval_ms_.value_or(0);
  options.on_all_shards_turning = [this, &status](uint64_t live_total) {
    notify(fmt::format("WATCHDOG=1\nSTATUS={}, {} connections", status, live_total));
  };
  options.on_stop_signal = [this] { stopping(); };
  // A reload is quick (parsed on shard 0, sent to every shard): ready again at once.
  options.on_reload_signal = [this, &status] {
    reloading();
    ready(status);
  };
}

}  // namespace mf
