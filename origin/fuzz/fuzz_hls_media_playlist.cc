// Arbitrary bytes as a playlist: the parser returns a value or one line,
// and every value keeps its promises: segments numbered consecutively from
// the media sequence (gaps aside), URIs plain relative paths within limits,
// byte ranges inside uint64. Aborts when an invariant breaks.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "origin/hls_media_playlist.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool plain_relative(std::string_view uri) {
  if (uri.empty() || uri.size() > mf::origin::max_uri_bytes || uri.front() == '/' ||
      uri.find_first_of("?#%") != std::string_view::npos)
    return false;
  std::string_view rest = uri;
  while (true) {
    size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string_view::npos) return true;
    rest.remove_prefix(slash + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = mf::origin::parse_playlist(text);
  if (!parsed) {
    check(!parsed.error().empty() && parsed.error().find('\n') == std::string::npos);
    return 0;
  }
  if (parsed->kind == mf::origin::PlaylistKind::multivariant) {
    check(parsed->media.segments.empty());
    return 0;
  }
  const auto& media = parsed->media;
  check(media.target_duration_s >= 1 && media.target_duration_s <= 86400);
  check(media.segments.size() <= mf::origin::max_playlist_segments);
  uint64_t previous = 0;
  bool first = true;
  for (const auto& segment : media.segments) {
    check(plain_relative(segment.uri));
    check(segment.sequence_number >= media.media_sequence);
    check(first || segment.sequence_number > previous);
    if (segment.range) check(segment.range->length > 0 && segment.range->offset <= UINT64_MAX - segment.range->length);
    previous = segment.sequence_number;
    first = false;
  }
  if (media.init) check(plain_relative(media.init->uri));
  return 0;
}
