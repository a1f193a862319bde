#include "origin/playlist_signer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/config/config_schema.h"
#include "origin/atomic_file.h"
#include "origin/hls_media_playlist.h"
#include "origin/jws_compact.h"
#include "origin/rendition_name.h"

namespace mf::origin {
std::string directory_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

std::string file_name_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::expected<std::string, std::string> read_playlist_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not hang the signer
  if (fd < 0) return std::unexpected(std::strerror(errno));
  struct stat status;
  if (::fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
    ::close(fd);
    return std::unexpected("not a regular file");
  }
  std::string text;
  char buffer[65536];
  while (true) {
    ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      std::string reason = std::strerror(errno);
      ::close(fd);
      return std::unexpected(reason);
    }
    if (got == 0) break;
    if (text.size() + static_cast<size_t>(got) > max_playlist_bytes) {
      ::close(fd);
      return std::unexpected(fmt::format("larger than {} bytes: not a playlist", max_playlist_bytes));
    }
    text.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return text;
}

PlaylistSigner::PlaylistSigner(const P256PrivateKey& key, SignerSettings settings, Clock clock)
    : key_(key), settings_(std::move(settings)), clock_(std::move(clock)),
      header_json_(manifest_jws_header(settings_.kid)) {}

SegmentDigester::Stats PlaylistSigner::digest_stats() const {
  SegmentDigester::Stats total;
  for (const auto& [path, digester] : digesters_) {
    total.files_read += digester.stats().files_read;
    total.bytes_read += digester.stats().bytes_read;
    total.reused += digester.stats().reused;
  }
  return total;
}

void PlaylistSigner::forget(const std::string& playlist_path) {
  digesters_.erase(playlist_path);
  std::erase_if(rendition_owners_, [&](const auto& item) { return item.second == playlist_path; });
}

std::expected<std::optional<SegmentManifest>, std::string> PlaylistSigner::build(const std::string& playlist_path,
                                                                                 std::string_view playlist_text) {
  auto parsed = parse_playlist(playlist_text);
  if (!parsed) return std::unexpected(parsed.error());
  if (parsed->kind == PlaylistKind::multivariant) return std::nullopt;
  const MediaPlaylist& playlist = parsed->media;

  auto rendition = rendition_for_playlist(playlist_path);
  if (!rendition) return std::unexpected(rendition.error());
  auto [owner, inserted] = rendition_owners_.try_emplace(*rendition, playlist_path);
  if (!inserted && owner->second != playlist_path)
    return std::unexpected(fmt::format("rendition {} is already {}'s: rename one of the directories",
                                       *rendition, owner->second));

  SegmentDigester& digester = digesters_[playlist_path];
  std::string directory = directory_of(playlist_path);
  SegmentManifest manifest;
  manifest.stream = settings_.stream;
  manifest.rendition = *rendition;
  manifest.playlist = file_name_of(playlist_path);
  manifest.media_sequence = playlist.media_sequence;
  if (playlist.init) {
    auto digest = digester.digest(directory + playlist.init->uri, playlist.init->range, false);
    if (!digest)
      return std::unexpected(fmt::format("init segment {}: {}", config::printable(playlist.init->uri), digest.error()));
    manifest.init = ManifestInit{playlist.init->uri, digest->bytes};
  }
  manifest.segments.reserve(playlist.segments.size());
  for (const PlaylistSegment& segment : playlist.segments) {
    auto digest = digester.digest(directory + segment.uri, segment.range, settings_.cmaf_chunks);
    if (!digest)
      return std::unexpected(fmt::format("segment {}: {}", config::printable(segment.uri), digest.error()));
    manifest.segments.push_back(
        ManifestSegment{segment.uri, segment.sequence_number, digest->bytes, std::move(digest->chunks)});
  }
  digester.forget_unused();
  manifest.issued_at = clock_();
  uint32_t ttl = settings_.ttl_s != 0 ? settings_.ttl_s
                 : playlist.ended      ? vod_ttl_s
                                       : 3 * playlist.target_duration_s;
  manifest.expires_at = manifest.issued_at + ttl;
  return manifest;
}

std::expected<std::optional<SignedPlaylist>, std::string> PlaylistSigner::sign_unchecked(
    const std::string& playlist_path) {
  auto text = read_playlist_file(playlist_path);
  if (!text) return std::unexpected(text.error());
  auto manifest = build(playlist_path, *text);
  if (!manifest) return std::unexpected(manifest.error());
  if (!*manifest) return std::nullopt;
  std::string signing_input = jws_signing_input(header_json_, manifest_payload_json(**manifest));
  auto signature = key_.sign(signing_input);
  if (!signature) return std::unexpected(signature.error());
  if (auto written = replace_file_atomically(manifest_path_for(playlist_path), jws_compact(signing_input, *signature));
      !written)
    return std::unexpected(written.error());
  const SegmentManifest& m = **manifest;
  return SignedPlaylist{m.rendition, m.media_sequence, m.segments.size()};
}

std::expected<std::optional<SignedPlaylist>, std::string> PlaylistSigner::sign(const std::string& playlist_path) {
  auto result = sign_unchecked(playlist_path);
  if (!result) {
    // Fail closed: no manifest for a version that could not be signed.
    ::unlink(manifest_path_for(playlist_path).c_str());
  }
  return result;
}

}  // namespace mf::origin
