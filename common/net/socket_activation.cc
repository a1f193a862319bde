#include "common/net/socket_activation.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <string_view>

namespace mf {
namespace {

constexpr int first_inherited_fd = 3;  // SD_LISTEN_FDS_START

bool parse_number(const char* text, long& out) {
  if (text == nullptr) return false;
  std::string_view view(text);
  auto [ptr, ec] = std::from_chars(view.data(), view.data() + view.size(), out);
  return ec == std::errc() && ptr == view.data() + view.size();
}

}  // namespace

std::expected<std::vector<InheritedSocket>, std::string> take_inherited_sockets() {
  std::vector<InheritedSocket> sockets;
  long pid = 0;
  long count = 0;
  bool for_us = parse_number(std::getenv("LISTEN_PID"), pid) && pid == static_cast<long>(getpid());
  bool have_count = parse_number(std::getenv("LISTEN_FDS"), count);
  std::string names = std::getenv("LISTEN_FDNAMES") != nullptr ? std::getenv("LISTEN_FDNAMES") : "";
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  if (!for_us || !have_count || count <= 0) return sockets;
  if (count > 64) return std::unexpected("socket activation: LISTEN_FDS=" + std::to_string(count) + " is implausible");
  size_t start = 0;
  for (long i = 0; i < count; ++i) {
    int fd = first_inherited_fd + static_cast<int>(i);
    std::string name = "unknown";
    if (start <= names.size() && !names.empty()) {
      size_t colon = names.find(':', start);
      name = names.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      start = colon == std::string::npos ? names.size() + 1 : colon + 1;
    }
    int listening = 0;
    socklen_t length = sizeof listening;
    int type = 0;
    socklen_t type_length = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0 || listening == 0 ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_length) != 0 || type != SOCK_STREAM) {
      return std::unexpected("socket activation: descriptor " + std::to_string(fd) + " (" + name +
                             ") is not a listening stream socket");
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    sockets.push_back(InheritedSocket{fd, name});
  }
  return sockets;
}

}  // namespace mf
