#include "common/base/log.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace mf::log {
namespace {
std::atomic<uint8_t> threshold{static_cast<uint8_t>(Level::info)};
}

void set_level(Level lvl) { threshold.store(static_cast<uint8_t>(lvl), std::memory_order_relaxed); }
Level level() { return static_cast<Level>(threshold.load(std::memory_order_relaxed)); }
bool enabled(Level lvl) { return static_cast<uint8_t>(lvl) <= threshold.load(std::memory_order_relaxed); }

bool parse_level(std::string_view text, Level& out) {
  if (text == "error") out = Level::error;
  else if (text == "warning" || text == "warn") out = Level::warning;
  else if (text == "notice") out = Level::notice;
  else if (text == "info") out = Level::info;
  else if (text == "debug") out = Level::debug;
  else return false;
  return true;
}

void write(Level lvl, std::string_view line) {
  // One write(2) per line so lines from different shards never interleave.
  char buffer[2048];
  static const char* const names[] = {"", "", "", "error", "warning", "notice", "info", "debug"};
  int n = std::snprintf(buffer, sizeof buffer, "<%d>%s: ", static_cast<int>(lvl),
                        names[static_cast<int>(lvl)]);
  size_t room = sizeof buffer - static_cast<size_t>(n) - 1;
  size_t len = line.size() < room ? line.size() : room;
  std::memcpy(buffer + n, line.data(), len);
  buffer[static_cast<size_t>(n) + len] = '\n';
  ssize_t ignored = ::write(STDERR_FILENO, buffer, static_cast<size_t>(n) + len + 1);
  (void)ignored;
}

}  // namespace mf::log
