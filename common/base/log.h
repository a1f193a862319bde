#pragma once
// One line per event on stderr, fit for journald: "<level> component: text".
// journald maps the "<N>" prefix to a priority when the stream is not a TTY
// (sd-daemon(3) convention), so levels survive without libsystemd.
// Nothing on the data path logs per message at the default level.
#include <fmt/core.h>

#include <atomic>
#include <cstdint>
#include <string_view>

namespace mf::log {

enum class Level : uint8_t { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

// Process-wide threshold; set once at start-up, read by every shard.
void set_level(Level level);
Level level();
bool parse_level(std::string_view text, Level& out);
bool enabled(Level level);

void write(Level level, std::string_view line);

template <class... Args>
void emit(Level lvl, fmt::format_string<Args...> format, Args&&... args) {
  if (!enabled(lvl)) return;
  char buffer[1024];
  auto result = fmt::format_to_n(buffer, sizeof buffer, format, std::forward<Args>(args)...);
  size_t size = result.size < sizeof buffer ? result.size : sizeof buffer;
  write(lvl, std::string_view(buffer, size));
}

}  // namespace mf::log

#define MF_LOG_ERROR(...) ::mf::log::emit(::mf::log::Level::error, __VA_ARGS__)
#define MF_LOG_WARN(...) ::mf::log::emit(::mf::log::Level::warning, __VA_ARGS__)
#define MF_LOG_NOTICE(...) ::mf::log::emit(::mf::log::Level::notice, __VA_ARGS__)
#define MF_LOG_INFO(...) ::mf::log::emit(::mf::log::Level::info, __VA_ARGS__)
#define MF_LOG_DEBUG(...) ::mf::log::emit(::mf::log::Level::debug, __VA_ARGS__)
