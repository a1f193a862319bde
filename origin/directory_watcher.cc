#include "origin/directory_watcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mf::origin {
namespace {

constexpr uint32_t watched_events =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

bool hidden(std::string_view name) { return name.empty() || name.front() == '.'; }

// Lists `directory`'s entries: files go to `files`, subdirectories to `directories`.
std::expected<void, std::string> list_directory(const std::string& directory, std::vector<std::string>& files,
                                                std::vector<std::string>& directories) {
  DIR* handle = ::opendir(directory.c_str());
  if (!handle) return std::unexpected(fmt::format("{}: {}", directory, std::strerror(errno)));
  while (dirent* entry = ::readdir(handle)) {
    std::string_view name = entry->d_name;
    if (hidden(name)) continue;
    std::string path = directory + "/" + std::string(name);
    unsigned char type = entry->d_type;
    if (type == DT_UNKNOWN || type == DT_LNK) {
      // A symbolic link to a file is followed; one to a directory is not
      // (a link back up the tree would never end).
      struct stat status;
      if (::stat(path.c_str(), &status) != 0) continue;
      type = S_ISREG(status.st_mode)                           ? DT_REG
             : S_ISDIR(status.st_mode) && type == DT_UNKNOWN ? DT_DIR
                                                               : DT_UNKNOWN;
    }
    if (type == DT_DIR) directories.push_back(std::move(path));
    else if (type == DT_REG) files.push_back(std::move(path));
  }
  ::closedir(handle);
  return {};
}

}  // namespace

std::expected<std::vector<std::string>, std::string> find_files(const std::string& root, std::string_view suffix) {
  std::vector<std::string> found;
  std::vector<std::string> pending{root};
  while (!pending.empty()) {
    std::string directory = std::move(pending.back());
    pending.pop_back();
    std::vector<std::string> files;
    if (auto ok = list_directory(directory, files, pending); !ok) return std::unexpected(ok.error());
    for (std::string& file : files)
      if (file.size() > suffix.size() && file.ends_with(suffix)) found.push_back(std::move(file));
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::expected<DirectoryWatcher, std::string> DirectoryWatcher::open(const std::string& root) {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return std::unexpected(fmt::format("inotify_init1: {}", std::strerror(errno)));
  DirectoryWatcher watcher(fd, root);
  if (auto ok = watcher.watch_tree(root, nullptr); !ok) return std::unexpected(ok.error());
  return watcher;
}

DirectoryWatcher::DirectoryWatcher(DirectoryWatcher&& other) noexcept
    : fd_(other.fd_), root_(std::move(other.root_)), root_watch_(other.root_watch_),
      directories_(std::move(other.directories_)) {
  other.fd_ = -1;
}

DirectoryWatcher::~DirectoryWatcher() {
  if (fd_ >= 0) ::close(fd_);
}

std::expected<void, std::string> DirectoryWatcher::watch_tree(const std::string& directory,
                                                              std::vector<std::string>* found) {
  std::vector<std::string> pending{directory};
  while (!pending.empty()) {
    std::string current = std::move(pending.back());
    pending.pop_back();
    int watch = ::inotify_add_watch(fd_, current.c_str(), watched_events);
    if (watch < 0) {
      // A subdirectory that vanished meanwhile is not worth an error.
      if (current != directory && errno == ENOENT) continue;
      return std::unexpected(fmt::format("{}: cannot watch: {}", current, std::strerror(errno)));
    }
    if (current == root_) root_watch_ = watch;
    directories_[watch] = current;
    std::vector<std::string> files;
    if (auto ok = list_directory(current, files, pending); !ok && current == directory) return ok;
    if (found) found->insert(found->end(), files.begin(), files.end());
  }
  return {};
}

std::expected<DirectoryChanges, std::string> DirectoryWatcher::read_changes() {
  DirectoryChanges changes;
  alignas(inotify_event) char buffer[64 * 1024];
  while (true) {
    ssize_t got = ::read(fd_, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno == EAGAIN) break;
    if (got <= 0) return std::unexpected(fmt::format("inotify read: {}", got < 0 ? std::strerror(errno) : "end"));
    for (ssize_t offset = 0; offset < got;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
      offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      if (event->mask & IN_Q_OVERFLOW) {
        changes.overflowed = true;
        continue;
      }
      auto directory = directories_.find(event->wd);
      if (directory == directories_.end()) continue;
      if (event->mask & IN_IGNORED) {
        directories_.erase(directory);
        continue;
      }
      if (event->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        if (event->wd == root_watch_) changes.root_lost = true;
        else changes.lost_directories.push_back(directory->second);
        // A moved directory's watch would report under its old path.
        if (event->mask & IN_MOVE_SELF) ::inotify_rm_watch(fd_, event->wd);
        continue;
      }
      std::string_view name(event->len > 0 ? event->name : "");
      name = name.substr(0, name.find('\0'));
      if (hidden(name)) continue;
      std::string path = directory->second + "/" + std::string(name);
      if (event->mask & IN_ISDIR) {
        if (event->mask & (IN_CREATE | IN_MOVED_TO)) {
          if (auto ok = watch_tree(path, &changes.files); !ok) return std::unexpected(ok.error());
        }
        continue;
      }
      if (event->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) changes.files.push_back(std::move(path));
    }
  }
  return changes;
}

}  // namespace mf::origin
