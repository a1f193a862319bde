#include "origin/hls_media_playlist.h"

#include <fmt/core.h>

#include <charconv>

#include "common/config/config_schema.h"

namespace mf::origin {
namespace {

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

// A decimal-integer (RFC 8216 section 4.2): digits only, no sign.
std::optional<uint64_t> parse_decimal(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// "<n>[@<o>]"; `continues` is the offset when @<o> is absent (nothing: it
// may not be absent).
std::optional<ByteRange> parse_byte_range(std::string_view text, std::optional<uint64_t> continues) {
  size_t at = text.find('@');
  auto length = parse_decimal(text.substr(0, at));
  if (!length || *length == 0) return std::nullopt;
  ByteRange range{.length = *length};
  if (at == std::string_view::npos) {
    if (!continues) return std::nullopt;
    range.offset = *continues;
  } else {
    auto offset = parse_decimal(text.substr(at + 1));
    if (!offset) return std::nullopt;
    range.offset = *offset;
  }
  if (range.offset > UINT64_MAX - range.length) return std::nullopt;
  return range;
}

// The value of attribute `name` in an attribute-list (section 4.2), quotes
// removed; nothing when absent; an error when the list is malformed.
std::expected<std::optional<std::string_view>, std::string> attribute(std::string_view list, std::string_view name) {
  size_t i = 0;
  std::optional<std::string_view> found;
  while (i < list.size()) {
    size_t equals = list.find('=', i);
    if (equals == std::string_view::npos) return std::unexpected("attribute without '='");
    std::string_view key = list.substr(i, equals - i);
    std::string_view value;
    size_t next;
    if (equals + 1 < list.size() && list[equals + 1] == '"') {
      size_t close = list.find('"', equals + 2);
      if (close == std::string_view::npos) return std::unexpected("unterminated quoted string");
      value = list.substr(equals + 2, close - equals - 2);
      next = close + 1;
      if (next < list.size() && list[next] != ',') return std::unexpected("text after a quoted string");
    } else {
      next = list.find(',', equals + 1);
      if (next == std::string_view::npos) next = list.size();
      value = list.substr(equals + 1, next - equals - 1);
    }
    if (key == name) found = value;
    i = next == list.size() ? next : next + 1;
  }
  return found;
}

// A URI the signer can map to a file beside or below the playlist.
std::optional<std::string> check_uri(std::string_view uri) {
  if (uri.size() > max_uri_bytes) return fmt::format("URI longer than {} bytes", max_uri_bytes);
  if (uri.front() == '/') return "an absolute path, not a file beside the playlist";
  for (char c : uri) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '?' || c == '#' || c == '%' || c == '\\' || byte < 0x20 || byte == 0x7F)
      return "a query, fragment, percent-encoding or control byte: not a plain relative path";
  }
  size_t colon = uri.find(':');
  size_t slash = uri.find('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon < slash))
    return "has a scheme: not a file beside the playlist";
  size_t start = 0;
  while (start <= uri.size()) {
    size_t end = uri.find('/', start);
    if (end == std::string_view::npos) end = uri.size();
    std::string_view part = uri.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return "an empty, '.' or '..' path segment";
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace

std::expected<ParsedPlaylist, std::string> parse_playlist(std::string_view text) {
  if (text.size() > max_playlist_bytes)
    return std::unexpected(fmt::format("larger than {} bytes: not a playlist", max_playlist_bytes));
  if (starts_with(text, "\xEF\xBB\xBF")) text.remove_prefix(3);
  ParsedPlaylist result;
  MediaPlaylist& media = result.media;
  bool saw_header = false;
  bool saw_target_duration = false;
  bool saw_segment_tag = false;
  bool pending_segment = false;  // an EXTINF waits for its URI
  bool pending_gap = false;
  std::optional<std::string_view> pending_range;
  std::optional<uint64_t> next_offset;  // where an @-less byte range continues
  std::string last_range_uri;
  uint64_t sequence = 0;
  bool sequence_fixed = false;
  size_t line_number = 0;
  size_t position = 0;
  auto fail = [&](std::string_view problem) {
    return std::unexpected(fmt::format("line {}: {}", line_number, problem));
  };

  while (position < text.size()) {
    size_t end = text.find('\n', position);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(position, end - position);
    position = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    if (!saw_header) {
      if (line != "#EXTM3U") return fail("does not start with #EXTM3U: not an HLS playlist");
      saw_header = true;
      continue;
    }
    if (line.empty()) continue;
    if (line.front() != '#') {
      if (result.kind == PlaylistKind::multivariant) continue;  // a variant's URI
      if (!pending_segment) return fail(fmt::format("URI {} without #EXTINF", config::printable(line, '\'', 80)));
      if (auto problem = check_uri(line))
        return fail(fmt::format("segment URI {}: {}", config::printable(line, '\'', 80), *problem));
      std::optional<ByteRange> range;
      if (pending_range) {
        bool same_resource = last_range_uri == line;
        range = parse_byte_range(*pending_range, same_resource ? next_offset : std::nullopt);
        if (!range)
          return fail(fmt::format("EXT-X-BYTERANGE {} is not <n>[@<o>] continuing the same resource",
                                  config::printable(*pending_range, '\'', 40)));
        next_offset = range->offset + range->length;
        last_range_uri = line;
      } else {
        next_offset.reset();
        last_range_uri.clear();
      }
      if (!pending_gap) {
        if (media.segments.size() >= max_playlist_segments)
          return fail(fmt::format("more than {} segments", max_playlist_segments));
        media.segments.push_back(PlaylistSegment{std::string(line), sequence, range});
      }
      ++sequence;
      sequence_fixed = true;
      pending_segment = pending_gap = false;
      pending_range.reset();
      continue;
    }
    if (!starts_with(line, "#EXT")) continue;  // a comment
    if (starts_with(line, "#EXT-X-STREAM-INF:") || starts_with(line, "#EXT-X-I-FRAME-STREAM-INF:") ||
        starts_with(line, "#EXT-X-MEDIA:")) {
      if (saw_segment_tag) return fail("multivariant and media playlist tags mixed");
      result.kind = PlaylistKind::multivariant;
      continue;
    }
    if (starts_with(line, "#EXTINF:")) {
      if (pending_segment) return fail("#EXTINF twice for one segment");
      pending_segment = true;
      saw_segment_tag = true;
    } else if (starts_with(line, "#EXT-X-TARGETDURATION:")) {
      auto value = parse_decimal(line.substr(22));
      if (!value || *value == 0 || *value > 86400) return fail("EXT-X-TARGETDURATION is not 1..86400 seconds");
      media.target_duration_s = static_cast<uint32_t>(*value);
      saw_target_duration = true;
    } else if (starts_with(line, "#EXT-X-MEDIA-SEQUENCE:")) {
      auto value = parse_decimal(line.substr(22));
      if (!value || *value > (uint64_t{1} << 53)) return fail("EXT-X-MEDIA-SEQUENCE is not an integer below 2^53");
      if (sequence_fixed) return fail("EXT-X-MEDIA-SEQUENCE after the first segment");
      media.media_sequence = sequence = *value;
    } else if (starts_with(line, "#EXT-X-BYTERANGE:")) {
      pending_range = line.substr(17);
      saw_segment_tag = true;
    } else if (line == "#EXT-X-GAP") {
      pending_gap = true;
    } else if (starts_with(line, "#EXT-X-MAP:")) {
      auto uri = attribute(line.substr(11), "URI");
      if (!uri) return fail(fmt::format("EXT-X-MAP: {}", uri.error()));
      if (!*uri || (*uri)->empty()) return fail("EXT-X-MAP without URI");
      if (auto problem = check_uri(**uri))
        return fail(fmt::format("EXT-X-MAP URI {}: {}", config::printable(**uri, '\'', 80), *problem));
      auto range_text = attribute(line.substr(11), "BYTERANGE");
      if (!range_text) return fail(fmt::format("EXT-X-MAP: {}", range_text.error()));
      PlaylistInit init{std::string(**uri), std::nullopt};
      if (*range_text) {
        init.range = parse_byte_range(**range_text, uint64_t{0});
        if (!init.range) return fail("EXT-X-MAP BYTERANGE is not <n>[@<o>]");
      }
      if (media.init && *media.init != init)
        return fail("a second, different EXT-X-MAP: a manifest lists one init segment");
      media.init = std::move(init);
      saw_segment_tag = true;
    } else if (line == "#EXT-X-ENDLIST") {
      media.ended = true;
    }
  }
  if (!saw_header) return std::unexpected("empty: not an HLS playlist");
  if (result.kind == PlaylistKind::multivariant) {
    if (saw_segment_tag) return fail("multivariant and media playlist tags mixed");
    return result;
  }
  if (pending_segment) return fail("the last #EXTINF has no URI");
  if (!saw_target_duration) return std::unexpected("no EXT-X-TARGETDURATION: not a media playlist");
  return result;
}

}  // namespace mf::origin
