#pragma once
// Listening sockets: one SO_REUSEPORT listener per shard on the same address,
// so the kernel spreads new connections over the shards and no accept is
// shared between threads.
#include <sys/socket.h>

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mf {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string text;  // as given, for messages
};

// "127.0.0.1:8445", "[::1]:8445", "0.0.0.0:80", ":8445" (all IPv4 addresses).
std::expected<SocketAddress, std::string> parse_socket_address(std::string_view text);

// A listening socket with SO_REUSEPORT (and TCP_NODELAY, which accepted
// sockets inherit: there is no setsockopt on a direct descriptor).
std::expected<int, std::string> open_listener(const SocketAddress& address, int backlog);

// --check-config: binds each address once (then closes it) to prove it is
// usable. An address in use is not a configuration error (a systemd socket
// unit, or the instance being restarted, may hold it right now): it is
// returned as a note. Null entries are skipped. The error is one line.
std::expected<std::vector<std::string>, std::string> check_bindable(std::span<const SocketAddress* const> addresses);

// A shard's own listening socket: a dup of `inherited_fd` (socket
// activation: every shard accepts on the same socket) when it is >= 0, else
// a fresh SO_REUSEPORT listener on `address`.
std::expected<int, std::string> shard_listener(int inherited_fd, const SocketAddress* address, int backlog);

// A non-blocking TCP socket with TCP_NODELAY for an outbound connection
// (Reactor::connect_adopted), or -errno. The caller may bind it first.
std::expected<int, int> open_outbound_socket(int family);

// The port actually bound (for port 0).
uint16_t bound_port(int fd);

}  // namespace mf
