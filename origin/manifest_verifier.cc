#include "origin/manifest_verifier.h"

#include <fmt/core.h>
#include <simdjson.h>

#include "common/config/config_schema.h"
#include "origin/hls_media_playlist.h"
#include "origin/jws_compact.h"
#include "origin/playlist_signer.h"
#include "origin/rendition_name.h"
#include "origin/segment_digester.h"

namespace mf::origin {
namespace {

// The header's problem, if any.
std::optional<std::string> check_header(std::string_view header_json, std::string_view kid) {
  simdjson::dom::parser parser;
  simdjson::dom::object header;
  if (parser.parse(header_json.data(), header_json.size()).get_object().get(header) != simdjson::SUCCESS)
    return "header is not a JSON object";
  std::string_view alg, typ, header_kid;
  if (header["alg"].get_string().get(alg) != simdjson::SUCCESS || alg != "ES256")
    return "header alg is not ES256";
  if (header["typ"].get_string().get(typ) != simdjson::SUCCESS || typ != manifest_jws_type)
    return fmt::format("header typ is not {}", manifest_jws_type);
  if (header["kid"].get_string().get(header_kid) != simdjson::SUCCESS)
    return "header has no kid";
  if (header_kid != kid)
    return fmt::format("kid {} is not the key's {}", config::printable(header_kid), config::printable(kid));
  return std::nullopt;
}

void compare(const std::string& path, const DigestedBytes& expected, const DigestedBytes& actual,
             std::string_view what, std::vector<std::string>& problems) {
  if (expected.size != actual.size)
    problems.push_back(fmt::format("{}: {} is {} bytes, the manifest says {}", path, what, actual.size, expected.size));
  else if (expected.sha256 != actual.sha256)
    problems.push_back(fmt::format("{}: {} sha256 differs from the manifest", path, what));
}

}  // namespace

std::vector<std::string> verify_playlist(const std::string& playlist_path, const P256PublicKey& key,
                                         const VerifySettings& settings) {
  std::vector<std::string> problems;
  auto fail = [&](std::string_view about, std::string_view problem) {
    problems.push_back(fmt::format("{}: {}", about, problem));
    return problems;
  };
  auto text = read_playlist_file(playlist_path);
  if (!text) return fail(playlist_path, text.error());
  auto parsed = parse_playlist(*text);
  if (!parsed) return fail(playlist_path, parsed.error());
  if (parsed->kind == PlaylistKind::multivariant) return problems;
  const MediaPlaylist& playlist = parsed->media;

  std::string manifest_path = manifest_path_for(playlist_path);
  auto jws_text = read_playlist_file(manifest_path);
  if (!jws_text) return fail(manifest_path, jws_text.error());
  auto jws = parse_jws_compact(*jws_text);
  if (!jws) return fail(manifest_path, jws.error());
  if (auto problem = check_header(jws->header_json, settings.kid)) return fail(manifest_path, *problem);
  if (!key.verify(jws->signing_input, jws->signature))
    return fail(manifest_path, "the signature does not verify with the public key");
  auto manifest = parse_manifest_payload(jws->payload_json);
  if (!manifest) return fail(manifest_path, manifest.error());

  auto rendition = rendition_for_playlist(playlist_path);
  if (manifest->stream != settings.stream)
    fail(manifest_path, fmt::format("stream {} is not {}", config::printable(manifest->stream),
                                    config::printable(settings.stream)));
  if (!rendition)
    fail(manifest_path, rendition.error());
  else if (manifest->rendition != *rendition)
    fail(manifest_path, fmt::format("rendition {} is not {}", config::printable(manifest->rendition),
                                    config::printable(*rendition)));
  std::string playlist_name = file_name_of(playlist_path);
  if (manifest->playlist != playlist_name)
    fail(manifest_path, fmt::format("playlist {} is not {}", config::printable(manifest->playlist),
                                    config::printable(playlist_name)));
  if (manifest->expires_at < settings.now)
    fail(manifest_path, fmt::format("expired {} s ago", settings.now - manifest->expires_at));
  if (manifest->media_sequence != playlist.media_sequence || manifest->segments.size() != playlist.segments.size())
    return fail(manifest_path, "does not cover the playlist as it is now (media sequence or segment count differ)");

  std::string directory = directory_of(playlist_path);
  SegmentDigester digester;
  if (playlist.init.has_value() != manifest->init.has_value() ||
      (playlist.init && playlist.init->uri != manifest->init->uri)) {
    fail(manifest_path, "its init segment is not the playlist's EXT-X-MAP");
  } else if (playlist.init) {
    std::string path = directory + playlist.init->uri;
    auto digest = digester.digest(path, playlist.init->range, false);
    if (!digest) fail(path, digest.error());
    else compare(path, manifest->init->bytes, digest->bytes, "init segment", problems);
  }
  for (size_t i = 0; i < playlist.segments.size(); ++i) {
    const PlaylistSegment& listed = playlist.segments[i];
    const ManifestSegment& signed_segment = manifest->segments[i];
    std::string path = directory + listed.uri;
    if (listed.uri != signed_segment.uri || listed.sequence_number != signed_segment.sequence_number) {
      fail(manifest_path, fmt::format("segments[{}] is {} sn {}, the playlist lists {} sn {}", i,
                                      config::printable(signed_segment.uri), signed_segment.sequence_number,
                                      config::printable(listed.uri), listed.sequence_number));
      continue;
    }
    bool with_chunks = !signed_segment.chunks.empty();
    auto digest = digester.digest(path, listed.range, with_chunks);
    if (!digest) {
      fail(path, digest.error());
      continue;
    }
    size_t before = problems.size();
    compare(path, signed_segment.bytes, digest->bytes, "segment", problems);
    if (problems.size() != before || !with_chunks) continue;
    if (digest->chunks.size() != signed_segment.chunks.size()) {
      fail(path, fmt::format("{} chunks, the manifest lists {}", digest->chunks.size(), signed_segment.chunks.size()));
      continue;
    }
    for (size_t c = 0; c < digest->chunks.size(); ++c)
      compare(path, signed_segment.chunks[c], digest->chunks[c], fmt::format("chunk {}", c), problems);
  }
  return problems;
}

}  // namespace mf::origin
