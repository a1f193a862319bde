#include "common/config/watched_files.h"

#include <sys/stat.h>

#include <algorithm>

namespace mf {

FileVersion file_version(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return FileVersion{};
  return FileVersion{true, static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                     static_cast<int64_t>(st.st_size),
                     static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

WatchedFiles::WatchedFiles(std::vector<std::string> paths) : paths_(std::move(paths)) {
  accepted_.reserve(paths_.size());
  for (const std::string& path : paths_) accepted_.push_back(file_version(path));
}

WatchedFiles::Step WatchedFiles::check() {
  std::vector<FileVersion> seen;
  seen.reserve(paths_.size());
  for (const std::string& path : paths_) seen.push_back(file_version(path));
  return check(seen);
}

WatchedFiles::Step WatchedFiles::check(std::span<const FileVersion> seen) {
  seen_.assign(seen.begin(), seen.end());
  if (std::ranges::equal(seen_, accepted_)) {
    // Back to what serves (a renewal undone): nothing pending any more.
    failed_once_.reset();
    reported_.reset();
    return Step::nothing;
  }
  if (reported_ && *reported_ == seen_) return Step::nothing;
  return Step::attempt;
}

WatchedFiles::Verdict WatchedFiles::attempted(bool ok) {
  if (ok) {
    accepted_ = seen_;
    failed_once_.reset();
    reported_.reset();
    return Verdict::accepted;
  }
  if (failed_once_ && *failed_once_ == seen_) {
    failed_once_.reset();
    reported_ = seen_;
    return Verdict::refused;
  }
  failed_once_ = seen_;
  return Verdict::waiting;
}

}  // namespace mf
