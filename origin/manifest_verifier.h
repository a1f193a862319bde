#pragma once
// What `mf-sign --verify` checks, as a player would (docs/origin.md,
// "Verifying"): each manifest's JWS (ES256 under the given public key, the
// expected kid and typ), its payload (v 1, the stream, the rendition the
// playlist's path gives, the playlist's name, not expired), that it covers
// the playlist as it is now (same media sequence, same segments), and the
// size and SHA-256 of the init segment, every segment and every chunk
// against the files. Each problem is one line naming the file it is about.
#include <cstdint>
#include <string>
#include <vector>

#include "origin/p256_key.h"

namespace mf::origin {

struct VerifySettings {
  std::string stream;
  std::string kid;
  int64_t now = 0;  // seconds since the epoch
};

// The problems with `playlist_path` and its manifest; empty: all good.
// Multivariant playlists have nothing to check.
std::vector<std::string> verify_playlist(const std::string& playlist_path, const P256PublicKey& key,
                                         const VerifySettings& settings);

}  // namespace mf::origin
