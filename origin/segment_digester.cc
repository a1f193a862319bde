#include "origin/segment_digester.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "origin/cmaf_chunks.h"

namespace mf::origin {
namespace {

struct FileIdentity {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

std::expected<FileIdentity, std::string> identity_of(int fd) {
  struct stat status;
  if (::fstat(fd, &status) != 0) return std::unexpected(std::strerror(errno));
  if (!S_ISREG(status.st_mode)) return std::unexpected("not a regular file");
  return FileIdentity{static_cast<uint64_t>(status.st_size),
                      int64_t{status.st_mtim.tv_sec} * 1'000'000'000 + status.st_mtim.tv_nsec};
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::expected<SegmentDigest, std::string> SegmentDigester::digest(const std::string& path,
                                                                  std::optional<ByteRange> range, bool with_chunks) {
  // O_NONBLOCK: a FIFO named by a playlist must not hang the signer (it is
  // then refused as not a regular file).
  FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (file.get() < 0) return std::unexpected(std::strerror(errno));
  auto before = identity_of(file.get());
  if (!before) return std::unexpected(before.error());
  uint64_t offset = range ? range->offset : 0;
  uint64_t length = range ? range->length : before->size;
  if (range && (range->offset > before->size || range->length > before->size - range->offset))
    return std::unexpected(fmt::format("byte range {}@{} runs past the end of the file ({} bytes)", range->length,
                                       range->offset, before->size));
  if (length > max_segment_bytes) return std::unexpected(fmt::format("larger than {} bytes", max_segment_bytes));
  if (length == 0) return std::unexpected("empty file: not a media segment");

  std::string key = fmt::format("{}{}{}{}{}", path, '\0', offset, '\0', range ? length : 0);
  auto found = entries_.find(key);
  if (found != entries_.end() && found->second.file_size == before->size && found->second.mtime_ns == before->mtime_ns &&
      (found->second.with_chunks || !with_chunks)) {
    found->second.used = true;
    ++stats_.reused;
    return found->second.digest;
  }

  buffer_.resize(length);
  uint64_t done = 0;
  while (done < length) {
    ssize_t got = ::pread(file.get(), buffer_.data() + done, length - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return std::unexpected(std::strerror(errno));
    if (got == 0) return std::unexpected("the file got shorter while being read");
    done += static_cast<uint64_t>(got);
  }
  auto after = identity_of(file.get());
  if (!after) return std::unexpected(after.error());
  if (*after != *before) return std::unexpected("the file changed while being read");
  ++stats_.files_read;
  stats_.bytes_read += length;

  std::span<const uint8_t> bytes(buffer_.data(), length);
  SegmentDigest result{DigestedBytes{length, sha256(bytes)}, {}};
  if (with_chunks) {
    auto chunks = split_cmaf_chunks(bytes);
    if (!chunks) return std::unexpected(chunks.error());
    result.chunks.reserve(chunks->size());
    for (const ChunkRange& chunk : *chunks)
      result.chunks.push_back(DigestedBytes{chunk.size, sha256(bytes.subspan(chunk.offset, chunk.size))});
  }
  entries_[key] = Entry{before->size, before->mtime_ns, with_chunks, true, result};
  return result;
}

void SegmentDigester::forget_unused() {
  std::erase_if(entries_, [](const auto& item) { return !item.second.used; });
  for (auto& [key, entry] : entries_) entry.used = false;
}

}  // namespace mf::origin
