#pragma once
// The program skeleton both binaries run on (docs/architecture.md, "The
// program skeleton"): what happens between main() and the shards serving,
// and after. A main() keeps only its own configuration and services:
//
//   Program program("mf-x", argc, argv, {"public", "admin"});
//   auto config = parse_x_arguments(program.arguments(), config::read_whole_file);
//   if (!config) return program.exit(config.error());
//   if (auto started = program.start(config->log_level); !started) return program.fail(started.error());
//   ... build the program's shared state from config and program.inherited(name) ...
//   auto options = program.shard_options(config->shards);
//   if (config->check_config) return program.check_config(addresses, describe(*config), summary);
//   return program.serve(options, factory, status, ready_line);
//
// The start fails fast: every step returns its problem as one line, and
// fail() prints it as "mf-x: <line>" on stderr with the exit code (rule 4 of
// the project; tests/system/test_check_config-style tests assert the one
// line).
#include <cstdint>
#include <expected>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/config_schema.h"
#include "common/net/listen_socket.h"
#include "common/runtime/shard_group.h"

namespace mf {

class Program {
 public:
  // `socket_names`: the FileDescriptorName= values a systemd socket unit may
  // hand over (socket activation); the first is the one an unnamed socket
  // stands for.
  Program(std::string_view name, int argc, char** argv, std::initializer_list<std::string_view> socket_names);
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  std::string_view name() const { return name_; }
  // The command line without the program name. It stays the same for the
  // process's life, so a reload reads the same file and flags again.
  std::span<const std::string_view> arguments() const { return arguments_; }

  // The exit for a configuration that did not parse: --help prints the usage
  // on stdout and exits 0; anything else is one line on stderr.
  int exit(const config::ConfigError& error) const;
  // One line on stderr, "<program>: <line>"; returns `code` for main().
  int fail(std::string_view line, int code = 1) const;

  // The steps every program takes before building its own state, in order:
  // the log level; the process's hash key (common/base/keyed_hash.h: tables keyed
  // by client-chosen bytes need it before any shard starts); the listening
  // sockets systemd handed over; the io_uring features the reactor needs.
  std::expected<void, std::string> start(std::string_view log_level);

  // The handed-over socket named `name` (an unnamed one counts as the first
  // name), or -1.
  int inherited(std::string_view name) const;

  // The descriptor table each shard's ring gets: `configured`, or with 0 the
  // process's descriptor limit (raised to its hard limit first). `setting`
  // names the configuration that asked for more than the limit allows.
  std::expected<uint32_t, std::string> descriptor_table(uint32_t configured, std::string_view setting) const;

  // Shard options every program shares: `shards` (0: one per online CPU), a
  // descriptor table of `max_sockets` and `dispose` for messages still queued
  // at the end. With -Dtest_hooks=true, MF_TEST_MAILBOX_CAPACITY=N (a power
  // of two) makes every mailbox hold N messages (tests/system/
  // test_mailbox_overflow.py).
  std::expected<ShardGroupOptions, std::string> shard_options(uint32_t shards, uint32_t max_sockets,
                                                              std::function<void(const ShardMessage&)> dispose) const;

  // --check-config: the listeners must be bindable (notes about those in
  // use go to stdout as comments), then the effective configuration and the
  // summary line "# <program>: configuration ok (<summary>)". Serves nothing.
  int check_config(std::span<const SocketAddress* const> listeners, std::string_view effective_configuration,
                   std::string_view summary) const;

  // Runs the shards until they stop (SIGTERM, SIGINT), with the systemd
  // notify protocol wired in (common/process/systemd_notifier.h): READY=1 and
  // `ready_line` logged once every shard serves; `status` is the STATUS=
  // text. A shard that fails to start stops the process with its line.
  int serve(ShardGroupOptions options, const ShardServiceFactory& factory, const std::string& status,
            const std::function<std::string()>& ready_line) const;

 private:
  std::string name_;
  std::vector<std::string_view> arguments_;  // into argv, which lives as long as the process
  std::vector<std::string_view> socket_names_;
  struct Handed {
    std::string name;
    int fd;
  };
  std::vector<Handed> inherited_;
};

}  // namespace mf
