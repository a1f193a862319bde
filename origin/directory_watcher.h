#pragma once
// Watches a directory tree with inotify for the changes that make a
// playlist need signing: a file closed after writing or renamed into place
// (how packagers publish a playlist), a new subdirectory (watched at once,
// and its existing files reported, so nothing created before the watch is
// missed), a watched directory removed. Hidden names (".x") are skipped:
// they are temporary files, ours included. A queue overflow is reported so
// the caller re-scans everything.
#include <cstdint>
#include <expected>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

namespace mf::origin {

struct DirectoryChanges {
  std::vector<std::string> files;         // written or moved in, full paths, in event order
  std::vector<std::string> lost_directories;
  bool overflowed = false;                // events were lost: re-scan
  bool root_lost = false;                 // the watched directory itself is gone
};

class DirectoryWatcher {
 public:
  static std::expected<DirectoryWatcher, std::string> open(const std::string& root);

  int fd() const { return fd_; }
  // Reads the events that are ready (call when fd() is readable); never blocks.
  std::expected<DirectoryChanges, std::string> read_changes();

  DirectoryWatcher(DirectoryWatcher&& other) noexcept;
  DirectoryWatcher& operator=(DirectoryWatcher&&) = delete;
  DirectoryWatcher(const DirectoryWatcher&) = delete;
  ~DirectoryWatcher();

 private:
  DirectoryWatcher(int fd, std::string root) : fd_(fd), root_(std::move(root)) {}
  // Watches `directory` and its subdirectories; their files go to `found`.
  std::expected<void, std::string> watch_tree(const std::string& directory, std::vector<std::string>* found);

  int fd_ = -1;
  std::string root_;
  int root_watch_ = -1;
  std::unordered_map<int, std::string> directories_;  // watch descriptor -> path
};

// Every file under `root` whose name ends with `suffix`, hidden names
// skipped, sorted; a directory that cannot be read is one line.
std::expected<std::vector<std::string>, std::string> find_files(const std::string& root, std::string_view suffix);

}  // namespace mf::origin
