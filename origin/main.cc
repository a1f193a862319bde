// mf-sign: signs the segment manifests of the media playlists under a
// directory, once or (--watch) whenever a playlist changes. docs/origin.md.
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include <fmt/core.h>

#include "common/config/config_schema.h"
#include "common/base/log.h"
#include "common/process/systemd_notifier.h"
#include "origin/directory_watcher.h"
#include "origin/manifest_verifier.h"
#include "origin/p256_key.h"
#include "origin/playlist_signer.h"
#include "origin/rendition_name.h"
#include "origin/sign_config.h"

namespace {

using namespace mf;
using namespace mf::origin;

constexpr std::string_view playlist_suffix = ".m3u8";

int fail_start(const std::string& line, int code = 1) {
  std::fprintf(stderr, "mf-sign: %s\n", line.c_str());
  return code;
}

int64_t now_s() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return now.tv_sec;
}

int generate_key(const SignConfig& config) {
  auto key = P256PrivateKey::generate();
  if (!key) return fail_start(key.error());
  if (auto written = key->write_pem_file(config.generate_key); !written) return fail_start(written.error());
  const P256PublicKey& public_key = key->public_key();
  std::string kid = config.kid.empty() ? public_key.default_kid() : config.kid;
  std::printf("# mf-sign: new P-256 key in %s (kid %s); the player's manifest keys:\n%s\n%s",
              config.generate_key.c_str(), kid.c_str(), public_key.jwk(kid).c_str(), public_key.spki_pem().c_str());
  return 0;
}

int verify(const SignConfig& config, const std::string& dir, const std::string& stream) {
  auto key = P256PublicKey::load_pem_file(config.verify_key);
  if (!key) return fail_start(key.error());
  VerifySettings settings{stream, config.kid.empty() ? key->default_kid() : config.kid, now_s()};
  auto playlists = find_files(dir, playlist_suffix);
  if (!playlists) return fail_start(playlists.error());
  size_t problems = 0;
  for (const std::string& playlist : *playlists) {
    for (const std::string& problem : verify_playlist(playlist, *key, settings)) {
      std::printf("%s\n", problem.c_str());
      ++problems;
    }
  }
  std::fflush(stdout);
  std::fprintf(stderr, "mf-sign: %zu playlists checked, %zu problems\n", playlists->size(), problems);
  return problems == 0 ? 0 : 1;
}

// Signs one playlist and says so: one line for a problem, debug otherwise.
bool sign_one(PlaylistSigner& signer, const std::string& playlist) {
  auto signed_playlist = signer.sign(playlist);
  if (!signed_playlist) {
    MF_LOG_ERROR("{}: not signed: {}", playlist, signed_playlist.error());
    return false;
  }
  if (*signed_playlist)
    MF_LOG_DEBUG("{}: signed {} segments from {} as {}", playlist, (*signed_playlist)->segments,
                 (*signed_playlist)->media_sequence, (*signed_playlist)->rendition);
  return true;
}

bool under(const std::string& path, const std::string& directory) {
  return path.size() > directory.size() && path.compare(0, directory.size(), directory) == 0 &&
         path[directory.size()] == '/';
}

// --watch: every change to a playlist re-signs it at once; a playlist that
// could not be signed is tried again on any change in its directory (the
// missing segment may have arrived).
int watch(PlaylistSigner& signer, const std::string& dir) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (sigprocmask(SIG_BLOCK, &stop_signals, nullptr) != 0) return fail_start("sigprocmask failed");
  int signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd < 0) return fail_start(fmt::format("signalfd: {}", std::strerror(errno)));
  auto watcher = DirectoryWatcher::open(dir);
  if (!watcher) return fail_start(watcher.error());

  std::set<std::string> failed;
  std::set<std::string> known;  // every playlist looked at: what a lost directory takes away
  auto sign_all = [&]() -> bool {
    auto playlists = find_files(dir, playlist_suffix);
    if (!playlists) {
      MF_LOG_ERROR("{}", playlists.error());
      return false;
    }
    for (const std::string& playlist : *playlists) {
      known.insert(playlist);
      if (sign_one(signer, playlist)) failed.erase(playlist);
      else failed.insert(playlist);
    }
    return true;
  };
  // Watch first, then sign: a change during the first pass is not missed.
  if (!sign_all()) return 1;
  const SystemdNotifier notifier = SystemdNotifier::from_environment();
  notifier.ready(fmt::format("watching {}", dir));
  MF_LOG_NOTICE("watching {} ({} playlists could not be signed)", dir, failed.size());

  int timeout_ms = static_cast<int>(notifier.watchdog_interval_ms().value_or(0));
  if (timeout_ms == 0) timeout_ms = -1;
  uint64_t signed_count = 0;
  while (true) {
    pollfd fds[2] = {{watcher->fd(), POLLIN, 0}, {signal_fd, POLLIN, 0}};
    int ready = ::poll(fds, 2, timeout_ms);
    if (ready < 0 && errno != EINTR) return fail_start(fmt::format("poll: {}", std::strerror(errno)));
    if (fds[1].revents & POLLIN) {
      notifier.stopping();
      MF_LOG_NOTICE("stopping: {} manifests signed while watching", signed_count);
      ::close(signal_fd);
      return 0;
    }
    if (fds[0].revents & POLLIN) {
      auto changes = watcher->read_changes();
      if (!changes) return fail_start(changes.error());
      for (const std::string& lost : changes->lost_directories) {
        MF_LOG_ERROR("{}: the directory is gone; its playlists are no longer signed", lost);
        std::erase_if(failed, [&](const std::string& playlist) { return under(playlist, lost); });
        std::erase_if(known, [&](const std::string& playlist) {
          if (!under(playlist, lost)) return false;
          signer.forget(playlist);
          return true;
        });
      }
      // After the lines of the directories that went with it, in event order.
      if (changes->root_lost) return fail_start(fmt::format("{}: the directory is gone", dir));
      if (changes->overflowed) {
        MF_LOG_WARN("inotify queue overflowed: signing every playlist again");
        sign_all();
      }
      std::vector<std::string> due;
      std::set<std::string> touched_directories;
      for (const std::string& file : changes->files) {
        touched_directories.insert(directory_of(file));
        if (file.ends_with(playlist_suffix) && std::find(due.begin(), due.end(), file) == due.end())
          due.push_back(file);
      }
      for (const std::string& playlist : failed)
        if (touched_directories.count(directory_of(playlist)) &&
            std::find(due.begin(), due.end(), playlist) == due.end())
          due.push_back(playlist);
      for (const std::string& playlist : due) {
        known.insert(playlist);
        if (sign_one(signer, playlist)) {
          failed.erase(playlist);
          ++signed_count;
        } else {
          failed.insert(playlist);
        }
      }
    }
    if (notifier.watchdog_interval_ms())
      notifier.notify(fmt::format("WATCHDOG=1\nSTATUS=watching {}, {} manifests signed, {} playlists failing", dir,
                                  signed_count, failed.size()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = parse_sign_arguments(argc, argv);
  if (!parsed) {
    if (parsed.error().exit_code == 0) return 0;
    return fail_start(parsed.error().message, parsed.error().exit_code);
  }
  const SignConfig& config = *parsed;
  log::Level level;
  if (!log::parse_level(config.log_level, level)) return fail_start("log_level: unknown level " + config.log_level);
  log::set_level(level);

  if (!config.generate_key.empty()) return generate_key(config);

  char resolved[PATH_MAX];
  if (!::realpath(config.dir.c_str(), resolved))
    return fail_start(fmt::format("--dir {}: {}", config::printable(config.dir), std::strerror(errno)));
  struct stat status;
  if (::stat(resolved, &status) != 0 || !S_ISDIR(status.st_mode))
    return fail_start(fmt::format("--dir {}: not a directory", config::printable(config.dir)));
  std::string dir = resolved;
  std::string stream = config.stream;
  if (stream.empty()) {
    stream = dir.substr(dir.rfind('/') + 1);
    if (!is_protocol_identifier(stream))
      return fail_start(fmt::format("--stream: needed: the directory's name {} is not 1..128 bytes of [A-Za-z0-9._:-]",
                                    config::printable(stream)));
  }

  if (!config.verify_key.empty()) return verify(config, dir, stream);

  // Manifests are renamed into place beside the playlists: fail now, not at the first one.
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    return fail_start(fmt::format("--dir {}: cannot write manifests there: {}", config::printable(dir),
                                  std::strerror(errno)));
  auto key = P256PrivateKey::load_pem_file(config.key);
  if (!key) return fail_start(key.error());
  std::string kid = config.kid.empty() ? key->public_key().default_kid() : config.kid;

  if (config.check_config) {
    auto playlists = find_files(dir, playlist_suffix);
    if (!playlists) return fail_start(playlists.error());
    std::printf("%s", describe(config).c_str());
    std::printf("# mf-sign: configuration ok (stream %s, kid %s, %zu playlists under %s)\n", stream.c_str(),
                kid.c_str(), playlists->size(), dir.c_str());
    return 0;
  }

  PlaylistSigner signer(*key, SignerSettings{stream, kid, config.ttl_s, config.cmaf_chunks}, now_s);
  if (config.watch) return watch(signer, dir);

  auto playlists = find_files(dir, playlist_suffix);
  if (!playlists) return fail_start(playlists.error());
  size_t failures = 0;
  for (const std::string& playlist : *playlists)
    if (!sign_one(signer, playlist)) ++failures;
  MF_LOG_INFO("{} playlists, {} not signed", playlists->size(), failures);
  return failures == 0 ? 0 : 1;
}
