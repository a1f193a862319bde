#pragma once
// The rendition a manifest names, derived from the playlist's path by one
// rule a player applies to the playlist URL alone (docs/origin.md,
// "Rendition names"): the name of the directory holding the playlist, ':',
// and the playlist's file name without ".m3u8". `.../live/720p/index.m3u8`
// is "720p:index"; `.../live/stream_1.m3u8` is "live:stream_1".
#include <expected>
#include <string>
#include <string_view>

namespace mf::origin {

// An identifier of the SDK protocol (streamId, rendition): 1 to 128 bytes
// of [A-Za-z0-9._:-].
bool is_protocol_identifier(std::string_view text);

// `playlist_path` is a path ("a/b/720p/index.m3u8") or a URL path; it must
// have a directory and end in ".m3u8", and the result must be an identifier.
std::expected<std::string, std::string> rendition_for_playlist(std::string_view playlist_path);

}  // namespace mf::origin
