#pragma once
// Replaces a file so that a reader sees the old content or the new, never a
// mix or a prefix: the content goes to a temporary file in the same
// directory, is fsync'ed (so that after a crash the name never points at
// unwritten blocks), then renamed over the target. The temporary name starts
// with '.' and ends with ".tmp" so that directory watchers and CDN
// synchronisation can skip it.
#include <expected>
#include <string>
#include <string_view>

namespace mf::origin {

std::expected<void, std::string> replace_file_atomically(const std::string& path, std::string_view content);

}  // namespace mf::origin
