#include "common/runtime/test_clock.h"

#if defined(MF_TEST_HOOKS)
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace mf {

std::optional<uint64_t> test_clock_ms() {
  // Opened once; read at every call (a pread of a few bytes: test builds only).
  // Opened once; read at every call (a pread of a few bytes: test builds only).
  static const int fd = [] {
    const char* path = std::getenv("MF_TEST_CLOCK_FILE");
    if (path == nullptr || *path == '\0') return -1;
    int opened = ::open(path, O_RDONLY | O_CLOEXEC);
    if (opened < 0) {
      std::fprintf(stderr, "MF_TEST_CLOCK_FILE=%s cannot be opened: %s\n", path, std::strerror(errno));
      std::abort();  // a test that asked for a manual clock must not run on the real one
    }
    return opened;
  }();
  static std::atomic<uint64_t> last{0};
  if (fd < 0) return std::nullopt;
  // The file holds "VALUE,VALUE\n", rewritten in place: a read that raced
  // with a write sees two different halves and keeps the last value.
  char text[64];
  ssize_t n = ::pread(fd, text, sizeof text, 0);
  uint64_t value = 0;
  if (n > 0) {
    std::string_view all(text, static_cast<size_t>(n));
    size_t comma = all.find(',');
    size_t end = all.find('\n');
    if (comma != std::string_view::npos && end != std::string_view::npos && comma < end &&
        all.substr(0, comma) == all.substr(comma + 1, end - comma - 1)) {
      auto [ptr, error] = std::from_chars(text, text + comma, value);
      if (error != std::errc{} || ptr != text + comma) value = 0;
    }
  }
  uint64_t seen = last.load(std::memory_order_relaxed);
  while (value > seen && !last.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
  return value > seen ? value : seen;
}

}  // namespace mf
#endif
