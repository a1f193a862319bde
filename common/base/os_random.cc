#include "common/base/os_random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

namespace mf {

std::expected<void, std::string> fill_os_random(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    // Blocks only until the kernel's pool is initialised (early boot).
    ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(std::string("getrandom: ") + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

std::expected<uint64_t, std::string> os_random_u64() {
  uint8_t bytes[8];
  if (auto ok = fill_os_random(bytes); !ok) return std::unexpected(ok.error());
  uint64_t value;
  std::memcpy(&value, bytes, sizeof value);
  return value;
}

}  // namespace mf
