#include "origin/atomic_file.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mf::origin {

std::expected<void, std::string> replace_file_atomically(const std::string& path, std::string_view content) {
  size_t slash = path.rfind('/');
  std::string directory = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string temporary = fmt::format("{}.{}.{}.tmp", directory, name, ::getpid());
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return std::unexpected(fmt::format("cannot create {}: {}", temporary, std::strerror(errno)));
  auto fail = [&](std::string_view what) {
    std::string reason = fmt::format("{} {}: {}", what, temporary, std::strerror(errno));
    ::close(fd);
    ::unlink(temporary.c_str());
    return std::unexpected(reason);
  };
  size_t done = 0;
  while (done < content.size()) {
    ssize_t wrote = ::write(fd, content.data() + done, content.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) return fail("cannot write");
    done += static_cast<size_t>(wrote);
  }
  if (::fsync(fd) != 0) return fail("cannot fsync");
  if (::close(fd) != 0) {
    fd = -1;
    ::unlink(temporary.c_str());
    return std::unexpected(fmt::format("cannot close {}: {}", temporary, std::strerror(errno)));
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    std::string reason = fmt::format("cannot rename {} to {}: {}", temporary, path, std::strerror(errno));
    ::unlink(temporary.c_str());
    return std::unexpected(reason);
  }
  return {};
}

}  // namespace mf::origin
