#include "common/process/program.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "common/net/descriptor_limit.h"
#include "common/runtime/io_uring_ring.h"
#include "common/base/keyed_hash.h"
#include "common/base/log.h"
#include "common/net/socket_activation.h"
#include "common/process/systemd_notifier.h"

namespace mf {

Program::Program(std::string_view name, int argc, char** argv, std::initializer_list<std::string_view> socket_names)
    : name_(name), arguments_(argv + (argc > 0 ? 1 : 0), argv + std::max(argc, 0)), socket_names_(socket_names) {}

int Program::exit(const config::ConfigError& error) const {
  if (error.exit_code == 0) {
    std::fputs(error.message.c_str(), stdout);
    return 0;
  }
  return fail(error.message, error.exit_code);
}

int Program::fail(std::string_view line, int code) const {
  std::fprintf(stderr, "%s: %.*s\n", name_.c_str(), static_cast<int>(line.size()), line.data());
  return code;
}

std::expected<void, std::string> Program::start(std::string_view log_level) {
  log::Level level;
  if (!log::parse_level(log_level, level))
    return std::unexpected("log_level: unknown level '" + std::string(log_level) + "'");
  log::set_level(level);
  if (auto key = init_process_hash_key(); !key) return std::unexpected(key.error());
  // Socket activation: listeners handed over by systemd replace binding.
  auto sockets = take_inherited_sockets();
  if (!sockets) return std::unexpected(sockets.error());
  for (InheritedSocket& socket : *sockets) {
    std::string name = socket.name;
    if (name == "unknown" && !socket_names_.empty() && inherited(socket_names_.front()) < 0)
      name = std::string(socket_names_.front());
    if (inherited(name) >= 0) return std::unexpected("socket activation: two sockets named '" + name + "'");
    if (std::find(socket_names_.begin(), socket_names_.end(), name) == socket_names_.end()) {
      std::string allowed;
      for (size_t i = 0; i < socket_names_.size(); ++i)
        allowed += (i == 0 ? "" : i + 1 == socket_names_.size() ? " or " : ", ") + std::string(socket_names_[i]);
      return std::unexpected("socket activation: unknown socket name '" + socket.name +
                             "' (FileDescriptorName= must be " + allowed + ")");
    }
    inherited_.push_back(Handed{std::move(name), socket.fd});
  }
  if (auto probe = probe_io_uring_support(); !probe) return std::unexpected(probe.error());
  return {};
}

int Program::inherited(std::string_view name) const {
  for (const Handed& handed : inherited_)
    if (handed.name == name) return handed.fd;
  return -1;
}

std::expected<uint32_t, std::string> Program::descriptor_table(uint32_t configured, std::string_view setting) const {
  uint32_t limit = raise_descriptor_limit();
  uint32_t size = configured == 0 ? limit : configured;
  if (size > limit)
    return std::unexpected(std::string(setting) + " " + std::to_string(size) +
                           " exceeds the per-ring descriptor table limit " + std::to_string(limit) + " (RLIMIT_NOFILE)");
  // Below this a shard cannot hold its listeners and a few connections.
  if (size < 16) {
    if (configured == 0) return std::unexpected("RLIMIT_NOFILE is too low for a descriptor table of 16");
    return std::unexpected(std::string(setting) + " must be at least 16");
  }
  return size;
}

std::expected<ShardGroupOptions, std::string> Program::shard_options(
    uint32_t shards, uint32_t max_sockets, std::function<void(const ShardMessage&)> dispose) const {
  ShardGroupOptions options;
  options.shard_count = shards != 0 ? shards : std::max(1u, std::thread::hardware_concurrency());
  options.reactor.max_sockets = max_sockets;
  options.dispose_undelivered = std::move(dispose);
#if defined(MF_TEST_HOOKS)
  if (const char* hook = std::getenv("MF_TEST_MAILBOX_CAPACITY")) {
    unsigned long capacity = std::strtoul(hook, nullptr, 10);
    if (capacity == 0 || (capacity & (capacity - 1)) != 0)
      return std::unexpected("MF_TEST_MAILBOX_CAPACITY: not a power of two");
    options.mailbox_capacity = static_cast<uint32_t>(capacity);
  }
#endif
  return options;
}

int Program::check_config(std::span<const SocketAddress* const> listeners, std::string_view effective_configuration,
                          std::string_view summary) const {
  auto notes = check_bindable(listeners);
  if (!notes) return fail(notes.error());
  for (const std::string& note : *notes) std::printf("# %s: note: %s\n", name_.c_str(), note.c_str());
  std::fwrite(effective_configuration.data(), 1, effective_configuration.size(), stdout);
  std::printf("# %s: configuration ok (%.*s)\n", name_.c_str(), static_cast<int>(summary.size()), summary.data());
  return 0;
}

int Program::serve(ShardGroupOptions options, const ShardServiceFactory& factory, const std::string& status,
                   const std::function<std::string()>& ready_line) const {
  // Under systemd (Type=notify): READY=1 once every shard serves, STOPPING=1
  // on drain, RELOADING=1 then READY=1 on SIGHUP, and WATCHDOG=1 only while
  // every shard's loop answers the watchdog probes.
  SystemdNotifier notifier = SystemdNotifier::from_environment();
  notifier.attach(options, status);
  ShardGroup::block_process_signals();
  ShardGroup group;
  auto result = group.run(options, factory, [&] {  // on this thread, once every shard serves
    notifier.ready(status);
    MF_LOG_NOTICE("{}", ready_line());
  });
  if (!result) return fail(result.error());
  MF_LOG_NOTICE("{} stopped", name_);
  return 0;
}

}  // namespace mf
