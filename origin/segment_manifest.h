#pragma once
// The payload of a signed segment manifest, version 1 (docs/origin.md, "The
// manifest"): what the signer writes and what --verify reads back. Pure:
// values to JSON text and back.
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "origin/sha256.h"

namespace mf::origin {

struct DigestedBytes {
  uint64_t size = 0;
  Sha256Digest sha256{};
  bool operator==(const DigestedBytes&) const = default;
};

struct ManifestInit {
  std::string uri;
  DigestedBytes bytes;
  bool operator==(const ManifestInit&) const = default;
};

struct ManifestSegment {
  std::string uri;  // as written in the playlist
  uint64_t sequence_number = 0;
  DigestedBytes bytes;
  std::vector<DigestedBytes> chunks;  // empty: not listed (no --cmaf-chunks)
  bool operator==(const ManifestSegment&) const = default;
};

struct SegmentManifest {
  std::string stream;
  std::string rendition;
  std::string playlist;  // the playlist's file name, beside the manifest
  uint64_t media_sequence = 0;
  int64_t issued_at = 0;
  int64_t expires_at = 0;
  std::optional<ManifestInit> init;
  std::vector<ManifestSegment> segments;
  bool operator==(const SegmentManifest&) const = default;
};

// {"v":1,"stream":..,"rendition":..,"playlist":..,"mediaSequence":..,
//  "issuedAt":..,"expiresAt":..,"init":{..},"segments":[..]}
std::string manifest_payload_json(const SegmentManifest& manifest);

// Reads a payload back; refuses a `v` other than 1, a missing or mistyped
// field, and a digest that is not 32 bytes of base64url.
std::expected<SegmentManifest, std::string> parse_manifest_payload(std::string_view json);

}  // namespace mf::origin
