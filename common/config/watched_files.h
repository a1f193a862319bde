#pragma once
// When to reload something built from a set of files that change on disk:
// certificates renewed by certbot (a new file renamed into place, or the
// symlinks of its live/ directory swapped), the edge's policy document.
// A periodic check on one shard stats every file (following symlinks) and
// compares what it sees with the versions last accepted; files caught
// half-written (a certificate written before its key) are retried at the
// next check, and a refusal is reported once, only when the files stayed the
// same across two checks (docs/security.md, "Certificate reload").
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace mf {

// What stat() says of a file's content: a rename or a symlink swap changes
// the inode, an in-place write the size or the modification time.
struct FileVersion {
  bool exists = false;
  uint64_t device = 0;
  uint64_t inode = 0;
  int64_t size = 0;
  int64_t modified_ns = 0;

  bool operator==(const FileVersion&) const = default;
};

// stat(2) of `path`, symlinks followed; `exists` false when it fails.
FileVersion file_version(const std::string& path);

class WatchedFiles {
 public:
  // Records the files' current versions as accepted (they were just loaded).
  explicit WatchedFiles(std::vector<std::string> paths);

  enum class Step : uint8_t { nothing, attempt };
  // Stats every file: `attempt` when they differ from the accepted versions
  // and were not already refused as they are.
  Step check();
  // The pure core of check(), with the versions seen.
  Step check(std::span<const FileVersion> seen);

  enum class Verdict : uint8_t {
    accepted,  // the new files serve from now on
    waiting,   // refused, but they changed since the last check: retried at the next one
    refused,   // refused twice as they are: report it (once); retried when they change
  };
  // The result of the attempt the last check() asked for.
  Verdict attempted(bool ok);

  const std::vector<std::string>& paths() const { return paths_; }

 private:
  std::vector<std::string> paths_;
  std::vector<FileVersion> accepted_;
  std::vector<FileVersion> seen_;
  std::optional<std::vector<FileVersion>> failed_once_;  // refused at the previous check, not yet reported
  std::optional<std::vector<FileVersion>> reported_;     // refused and reported: no attempt until they change
};

}  // namespace mf
