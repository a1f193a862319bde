#pragma once
// Signs media playlists: reads one, digests the init segment and every
// segment it lists (through a SegmentDigester kept per playlist), and writes
// PLAYLIST.mfsig atomically (docs/origin.md). The playlist is the only
// source of which segments exist: a packager lists a segment once it is
// complete, so a manifest never names a segment still being written.
//
// A playlist that cannot be signed (not HLS, a segment missing or
// truncated, a rendition name that is not an identifier) gets no manifest:
// an older one is removed, so nothing vouches for bytes that were not
// hashed for the current version. A multivariant playlist is not signed and
// not an error.
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "origin/p256_key.h"
#include "origin/segment_digester.h"
#include "origin/segment_manifest.h"

namespace mf::origin {

struct SignerSettings {
  std::string stream;     // the streamId players join with
  std::string kid;        // the JWS header's kid
  uint32_t ttl_s = 0;     // expiresAt - issuedAt; 0: 3 target durations live, a day once ended
  bool cmaf_chunks = false;
};

struct SignedPlaylist {
  std::string rendition;
  uint64_t media_sequence = 0;
  size_t segments = 0;
};

inline constexpr std::string_view manifest_suffix = ".mfsig";
inline constexpr uint32_t vod_ttl_s = 86400;

class PlaylistSigner {
 public:
  using Clock = std::function<int64_t()>;  // seconds since the epoch

  PlaylistSigner(const P256PrivateKey& key, SignerSettings settings, Clock clock);

  // Nothing for a multivariant playlist; the manifest's summary once it is
  // written; or one line saying why there is no manifest.
  std::expected<std::optional<SignedPlaylist>, std::string> sign(const std::string& playlist_path);

  // The manifest for the playlist text as it would be signed, without
  // writing it (sign() is this plus the write).
  std::expected<std::optional<SegmentManifest>, std::string> build(const std::string& playlist_path,
                                                                    std::string_view playlist_text);

  // Drops what is kept about a playlist that is gone.
  void forget(const std::string& playlist_path);

  const SignerSettings& settings() const { return settings_; }
  SegmentDigester::Stats digest_stats() const;

 private:
  std::expected<std::optional<SignedPlaylist>, std::string> sign_unchecked(const std::string& playlist_path);

  const P256PrivateKey& key_;
  SignerSettings settings_;
  Clock clock_;
  std::string header_json_;
  std::map<std::string, SegmentDigester> digesters_;  // by playlist path
  std::map<std::string, std::string> rendition_owners_;  // rendition -> playlist path
};

// Reads a playlist (at most max_playlist_bytes).
std::expected<std::string, std::string> read_playlist_file(const std::string& path);

// "a/b/index.m3u8" is in directory "a/b/" (with its '/'; "" without one)
// and has file name "index.m3u8". Segment URIs are relative to the former.
std::string directory_of(const std::string& path);
std::string file_name_of(const std::string& path);

// The manifest's path for a playlist's.
inline std::string manifest_path_for(const std::string& playlist_path) {
  return playlist_path + std::string(manifest_suffix);
}

}  // namespace mf::origin
