#include "common/net/listen_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace mf {

std::expected<SocketAddress, std::string> parse_socket_address(std::string_view text) {
  SocketAddress out;
  out.text = std::string(text);
  std::string host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::unexpected("bad address '" + out.text + "' (expected [IPv6]:PORT)");
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::unexpected("bad address '" + out.text + "' (expected HOST:PORT)");
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535 || port_text.empty())
    return std::unexpected("bad port in '" + out.text + "'");
  if (host.empty() || host == "*") host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    out.length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    out.length = sizeof(sockaddr_in6);
  } else {
    return std::unexpected("bad address '" + out.text + "' (an IPv4 or [IPv6] literal is required)");
  }
  return out;
}

std::expected<int, std::string> open_listener(const SocketAddress& address, int backlog) {
  int fd = ::socket(address.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::unexpected(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (address.storage.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) < 0) {
    int err = errno;
    ::close(fd);
    return std::unexpected("cannot listen on " + address.text + ": " + std::strerror(err));
  }
  if (::listen(fd, backlog) < 0) {
    int err = errno;
    ::close(fd);
    return std::unexpected("cannot listen on " + address.text + ": " + std::strerror(err));
  }
  return fd;
}

uint16_t bound_port(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) < 0) return 0;
  if (storage.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
}

std::expected<std::vector<std::string>, std::string> check_bindable(std::span<const SocketAddress* const> addresses) {
  std::vector<std::string> notes;
  for (const SocketAddress* address : addresses) {
    if (address == nullptr) continue;
    auto fd = open_listener(*address, 16);
    if (!fd) {
      if (fd.error().find(std::strerror(EADDRINUSE)) == std::string::npos) return std::unexpected(fd.error());
      notes.push_back(fd.error());
      continue;
    }
    ::close(*fd);
  }
  return notes;
}

std::expected<int, std::string> shard_listener(int inherited_fd, const SocketAddress* address, int backlog) {
  if (inherited_fd >= 0) {
    int fd = ::fcntl(inherited_fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return std::unexpected(std::string("cannot duplicate the inherited socket: ") + std::strerror(errno));
    return fd;
  }
  if (address == nullptr) return std::unexpected(std::string("no address to listen on"));
  return open_listener(*address, backlog);
}

std::expected<int, int> open_outbound_socket(int family) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::unexpected(-errno);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

}  // namespace mf
