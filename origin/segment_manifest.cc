#include "origin/segment_manifest.h"

#include <fmt/core.h>
#include <simdjson.h>

#include <algorithm>

#include "common/base/base64url.h"
#include "common/base/json_writer.h"

namespace mf::origin {
namespace {

void write_digest(JsonWriter& json, const DigestedBytes& bytes) {
  json.raw(R"("size":)");
  json.unsigned_number(bytes.size);
  json.raw(R"(,"sha256":")");
  std::string digest = base64url(bytes.sha256);
  json.raw(digest);
  json.raw("\"");
}

// An upper bound of the JSON text's size, so that one buffer holds it.
size_t payload_bound(const SegmentManifest& m) {
  size_t bound = 512 + 6 * (m.stream.size() + m.rendition.size() + m.playlist.size());
  if (m.init) bound += 128 + 6 * m.init->uri.size();
  for (const ManifestSegment& s : m.segments) bound += 160 + 6 * s.uri.size() + 96 * s.chunks.size();
  return bound;
}

using simdjson::dom::element;
using simdjson::dom::object;

std::expected<uint64_t, std::string> unsigned_field(object o, std::string_view name) {
  uint64_t value = 0;
  if (o[name].get_uint64().get(value) != simdjson::SUCCESS)
    return std::unexpected(fmt::format("\"{}\" is missing or not a non-negative integer", name));
  return value;
}

std::expected<std::string, std::string> string_field(object o, std::string_view name) {
  std::string_view value;
  if (o[name].get_string().get(value) != simdjson::SUCCESS)
    return std::unexpected(fmt::format("\"{}\" is missing or not a string", name));
  return std::string(value);
}

std::expected<DigestedBytes, std::string> digest_fields(object o) {
  auto size = unsigned_field(o, "size");
  if (!size) return std::unexpected(size.error());
  auto text = string_field(o, "sha256");
  if (!text) return std::unexpected(text.error());
  auto digest = decode_base64url(*text);
  if (!digest || digest->size() != 32) return std::unexpected("\"sha256\" is not 32 bytes of base64url");
  DigestedBytes bytes{.size = *size};
  std::copy(digest->begin(), digest->end(), bytes.sha256.begin());
  return bytes;
}

}  // namespace

std::string manifest_payload_json(const SegmentManifest& m) {
  std::string buffer(payload_bound(m), '\0');
  JsonWriter json(buffer);
  json.raw(R"({"v":1,"stream":)");
  json.string(m.stream);
  json.raw(R"(,"rendition":)");
  json.string(m.rendition);
  json.raw(R"(,"playlist":)");
  json.string(m.playlist);
  json.raw(R"(,"mediaSequence":)");
  json.unsigned_number(m.media_sequence);
  json.raw(R"(,"issuedAt":)");
  json.number(m.issued_at);
  json.raw(R"(,"expiresAt":)");
  json.number(m.expires_at);
  if (m.init) {
    json.raw(R"(,"init":{"uri":)");
    json.string(m.init->uri);
    json.raw(",");
    write_digest(json, m.init->bytes);
    json.raw("}");
  }
  json.raw(R"(,"segments":[)");
  for (size_t i = 0; i < m.segments.size(); ++i) {
    const ManifestSegment& s = m.segments[i];
    json.raw(i == 0 ? R"({"uri":)" : R"(,{"uri":)");
    json.string(s.uri);
    json.raw(R"(,"sn":)");
    json.unsigned_number(s.sequence_number);
    json.raw(",");
    write_digest(json, s.bytes);
    if (!s.chunks.empty()) {
      json.raw(R"(,"chunks":[)");
      for (size_t c = 0; c < s.chunks.size(); ++c) {
        json.raw(c == 0 ? "{" : ",{");
        write_digest(json, s.chunks[c]);
        json.raw("}");
      }
      json.raw("]");
    }
    json.raw("}");
  }
  json.raw("]}");
  if (!json.ok()) std::abort();  // payload_bound() is an upper bound
  buffer.resize(json.size());
  return buffer;
}

std::expected<SegmentManifest, std::string> parse_manifest_payload(std::string_view text) {
  simdjson::dom::parser parser;
  element root;
  if (parser.parse(text.data(), text.size()).get(root) != simdjson::SUCCESS) return std::unexpected("not JSON");
  object o;
  if (root.get_object().get(o) != simdjson::SUCCESS) return std::unexpected("not a JSON object");
  auto version = unsigned_field(o, "v");
  if (!version || *version != 1) return std::unexpected("\"v\" is not 1");
  SegmentManifest m;
  auto stream = string_field(o, "stream");
  auto rendition = string_field(o, "rendition");
  auto playlist = string_field(o, "playlist");
  auto media_sequence = unsigned_field(o, "mediaSequence");
  for (auto* field : {&stream, &rendition, &playlist})
    if (!*field) return std::unexpected(field->error());
  if (!media_sequence) return std::unexpected(media_sequence.error());
  int64_t issued_at = 0, expires_at = 0;
  if (o["issuedAt"].get_int64().get(issued_at) != simdjson::SUCCESS ||
      o["expiresAt"].get_int64().get(expires_at) != simdjson::SUCCESS)
    return std::unexpected("\"issuedAt\" or \"expiresAt\" is missing or not an integer");
  m.stream = *stream;
  m.rendition = *rendition;
  m.playlist = *playlist;
  m.media_sequence = *media_sequence;
  m.issued_at = issued_at;
  m.expires_at = expires_at;
  object init;
  auto init_error = o["init"].get_object().get(init);
  if (init_error == simdjson::SUCCESS) {
    auto uri = string_field(init, "uri");
    if (!uri) return std::unexpected("init: " + uri.error());
    auto bytes = digest_fields(init);
    if (!bytes) return std::unexpected("init: " + bytes.error());
    m.init = ManifestInit{*uri, *bytes};
  } else if (init_error != simdjson::NO_SUCH_FIELD) {
    return std::unexpected("\"init\" is not an object");
  }
  simdjson::dom::array segments;
  if (o["segments"].get_array().get(segments) != simdjson::SUCCESS)
    return std::unexpected("\"segments\" is missing or not an array");
  for (element item : segments) {
    object s;
    if (item.get_object().get(s) != simdjson::SUCCESS) return std::unexpected("a segment is not an object");
    size_t index = m.segments.size();
    auto uri = string_field(s, "uri");
    auto sn = unsigned_field(s, "sn");
    auto bytes = digest_fields(s);
    if (!uri) return std::unexpected(fmt::format("segments[{}]: {}", index, uri.error()));
    if (!sn) return std::unexpected(fmt::format("segments[{}]: {}", index, sn.error()));
    if (!bytes) return std::unexpected(fmt::format("segments[{}]: {}", index, bytes.error()));
    ManifestSegment segment{*uri, *sn, *bytes, {}};
    simdjson::dom::array chunks;
    auto chunks_error = s["chunks"].get_array().get(chunks);
    if (chunks_error == simdjson::SUCCESS) {
      for (element chunk_item : chunks) {
        object chunk;
        if (chunk_item.get_object().get(chunk) != simdjson::SUCCESS)
          return std::unexpected(fmt::format("segments[{}]: a chunk is not an object", index));
        auto chunk_bytes = digest_fields(chunk);
        if (!chunk_bytes) return std::unexpected(fmt::format("segments[{}] chunk: {}", index, chunk_bytes.error()));
        segment.chunks.push_back(*chunk_bytes);
      }
    } else if (chunks_error != simdjson::NO_SUCH_FIELD) {
      return std::unexpected(fmt::format("segments[{}]: \"chunks\" is not an array", index));
    }
    m.segments.push_back(std::move(segment));
  }
  return m;
}

}  // namespace mf::origin
