#pragma once
// An HLS media playlist (RFC 8216 section 4.3) reduced to what a segment
// manifest needs: the segments in playlist order with their media sequence
// numbers and byte ranges, the EXT-X-MAP init segment, the target duration
// and whether the playlist is complete (EXT-X-ENDLIST). Pure: text in,
// a value or one line out. docs/origin.md says which playlists are signed.
//
// What a manifest can vouch for decides what is refused: a segment URI must
// name a file beside (or below) the playlist, so URIs with a scheme, an
// absolute path, "..", a query, a fragment or percent-encoding are errors,
// as is a second, different EXT-X-MAP (manifest version 1 has one init).
// LL-HLS parts and preload hints are not segments and are ignored; an
// EXT-X-GAP segment has no bytes and is left out.
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mf::origin {

// EXT-X-BYTERANGE / BYTERANGE=: `length` bytes from `offset`.
struct ByteRange {
  uint64_t length = 0;
  uint64_t offset = 0;
  bool operator==(const ByteRange&) const = default;
};

struct PlaylistSegment {
  std::string uri;  // as written in the playlist
  uint64_t sequence_number = 0;
  std::optional<ByteRange> range;  // nothing: the whole file
  bool operator==(const PlaylistSegment&) const = default;
};

struct PlaylistInit {
  std::string uri;
  std::optional<ByteRange> range;
  bool operator==(const PlaylistInit&) const = default;
};

struct MediaPlaylist {
  uint32_t target_duration_s = 0;
  uint64_t media_sequence = 0;
  bool ended = false;  // EXT-X-ENDLIST: VOD, or a live stream that finished
  std::optional<PlaylistInit> init;
  std::vector<PlaylistSegment> segments;
};

enum class PlaylistKind : uint8_t { media, multivariant };

struct ParsedPlaylist {
  PlaylistKind kind = PlaylistKind::media;
  MediaPlaylist media;  // kind == media only
};

// Limits that keep a hostile playlist from costing more than a real one.
inline constexpr size_t max_playlist_bytes = 16u << 20;
inline constexpr size_t max_playlist_segments = 100000;
inline constexpr size_t max_uri_bytes = 1024;

// A multivariant (master) playlist is recognised, not an error: it has no
// segments to sign. Anything that is not an HLS playlist, or a media
// playlist that breaks the rules above, is one line saying why (with the
// line number).
std::expected<ParsedPlaylist, std::string> parse_playlist(std::string_view text);

}  // namespace mf::origin
