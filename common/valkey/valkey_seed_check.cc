#include "common/valkey/valkey_seed_check.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "common/base/log.h"
#include "common/codec/resp_codec.h"
#include "common/net/listen_socket.h"

namespace mf::valkey {

namespace {

uint64_t monotonic_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

// A socket closed when it goes out of scope.
struct OwnedSocket {
  int fd = -1;
  ~OwnedSocket() {
    if (fd >= 0) ::close(fd);
  }
};

// Waits until `fd` is ready for `events` or the deadline passes; false on
// timeout or a poll error.
bool wait_for(int fd, short events, uint64_t deadline_ms) {
  for (;;) {
    const uint64_t now = monotonic_ms();
    if (now >= deadline_ms) return false;
    pollfd p{fd, events, 0};
    int ready = ::poll(&p, 1, static_cast<int>(deadline_ms - now));
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) return false;
  }
}

SeedVerdict unknown(std::string detail) { return {SeedKind::unknown, std::move(detail)}; }

}  // namespace

std::optional<bool> cluster_enabled_of(std::string_view info_text) {
  constexpr std::string_view field = "cluster_enabled:";
  size_t at = 0;
  while (at < info_text.size()) {
    size_t end = info_text.find('\n', at);
    if (end == std::string_view::npos) end = info_text.size();
    std::string_view line = info_text.substr(at, end - at);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.starts_with(field)) {
      std::string_view value = line.substr(field.size());
      if (value == "1") return true;
      if (value == "0") return false;
      return std::nullopt;
    }
    at = end + 1;
  }
  return std::nullopt;
}

SeedVerdict probe_seed(std::string_view address, std::string_view username, std::string_view password,
                       uint32_t timeout_ms) {
  const uint64_t deadline = monotonic_ms() + timeout_ms;
  auto parsed = parse_socket_address(address);
  if (!parsed) return unknown(parsed.error());
  OwnedSocket s;
  s.fd = ::socket(parsed->storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s.fd < 0) return unknown(std::string("socket: ") + std::strerror(errno));
  if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&parsed->storage), parsed->length) != 0) {
    if (errno != EINPROGRESS) return unknown(std::string("connect: ") + std::strerror(errno));
    if (!wait_for(s.fd, POLLOUT, deadline)) return unknown("connect: timed out");
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0)
      return unknown(std::string("connect: ") + std::strerror(error != 0 ? error : errno));
  }

  std::string request;
  size_t replies = 1;
  if (!password.empty()) {
    std::vector<std::string_view> auth{"AUTH"};
    if (!username.empty()) auth.push_back(username);
    auth.push_back(password);
    resp::append_command(request, auth);
    ++replies;
  }
  std::string_view info[] = {"INFO", "cluster"};
  resp::append_command(request, info);
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = ::send(s.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_for(s.fd, POLLOUT, deadline)) return unknown("send: timed out");
    } else {
      return unknown(std::string("send: ") + std::strerror(errno));
    }
  }

  // INFO cluster is a few dozen bytes; the bound only keeps a stranger
  // from filling memory.
  resp::ReplyReader reader(resp::ReaderLimits{.max_reply_bytes = 64 * 1024, .max_elements = 16});
  uint8_t buffer[4096];
  for (;;) {
    for (;;) {
      auto next = reader.next();
      if (!next) return unknown("not a RESP answer");
      if (!next->has_value()) break;
      const resp::ReplyView& reply = **next;
      if (reply.is_error()) return unknown(std::string(reply.text()));
      if (--replies > 0) continue;  // AUTH's OK
      auto enabled = cluster_enabled_of(reply.text());
      if (!enabled) return unknown("INFO cluster has no cluster_enabled");
      return {*enabled ? SeedKind::cluster : SeedKind::standalone, {}};
    }
    if (!wait_for(s.fd, POLLIN, deadline)) return unknown("no answer in time");
    ssize_t n = ::recv(s.fd, buffer, sizeof buffer, 0);
    if (n == 0) return unknown("closed the connection");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return unknown(std::string("recv: ") + std::strerror(errno));
    }
    if (!reader.feed(std::span<const uint8_t>(buffer, static_cast<size_t>(n)))) return unknown("not a RESP answer");
  }
}

std::expected<void, std::string> check_cluster_seeds(std::span<const std::string> seeds, std::string_view username,
                                                     std::string_view password, uint32_t timeout_ms) {
  const uint64_t deadline = monotonic_ms() + timeout_ms;
  for (const std::string& seed : seeds) {
    const uint64_t now = monotonic_ms();
    if (now >= deadline) break;
    SeedVerdict verdict = probe_seed(seed, username, password, static_cast<uint32_t>(deadline - now));
    if (verdict.kind == SeedKind::unknown) MF_LOG_INFO("valkey cluster: seed {} not checked at start: {}", seed, verdict.detail);
    if (verdict.kind == SeedKind::standalone)
      return std::unexpected("valkey.cluster_seeds: " + seed +
                             " is not a cluster node (INFO cluster: cluster_enabled:0); give a standalone server as "
                             "valkey.address (--valkey) instead");
  }
  return {};
}

}  // namespace mf::valkey
