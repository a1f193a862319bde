#pragma once
// Stream policy (docs/protocol.md section 6): what the edge tells players about their
// stream's mesh, and the operator's document that sets it.
//
// The operator's document is JSON:
//   {"defaults": {<partial policy>},
//    "streams":  {"<streamId>": {<partial policy>}, ...}}
// Both members and every policy field are optional. The effective policy of a
// stream is the built-in defaults (Policy{}), overlaid field by field with the
// document's `defaults`, overlaid with that stream's entry. Unknown or
// duplicated fields, wrong types, out-of-range values and invalid streamIds
// reject the whole document (a typo must not silently fall back to a default).
//
// Loading is control plane (it may allocate); effective() is called per join
// and does not allocate.
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/base/transparent_string_hash.h"

namespace mf::edge {

// Ranges the document is validated against (inclusive).
inline constexpr uint32_t max_policy_peers = 64;               // maxPeers 0..64 (as `caps.maxPeers`, docs/protocol.md section 3)
inline constexpr uint32_t min_offer_timeout_ms = 1000;         // below this ICE gathering cannot finish
inline constexpr uint32_t max_offer_timeout_ms = 120000;

// The effective policy of one stream. The defaults are what a stream gets
// when the operator configures nothing: the mesh on, 8 peers (enough
// redundancy for one rendition's segments without flooding a player's
// uplink), no viewer cap, no upload cap, CMAF exchange off until the player
// fleet supports it, 10 s for a peer to answer an offer.
struct Policy {
  // cmafMode: what players do with low-latency CMAF chunks over the mesh.
  enum class CmafMode : uint8_t {
    off,             // "off": not at all
    advertise_only,  // "advertise-only": announce chunks to peers, serve none
    on,              // "on": exchange chunks
  };

  bool mesh_enabled = true;            // meshEnabled
  uint32_t max_peers = 8;              // maxPeers, 0..64
  uint32_t max_viewers = 0;            // maxViewers, 0 = unlimited
  uint32_t upload_cap_kbps = 0;        // uploadCapKbps, 0 = none
  CmafMode cmaf_mode = CmafMode::off;  // cmafMode
  uint32_t offer_timeout_ms = 10000;   // offerTimeoutMs, 1000..120000

  bool operator==(const Policy&) const = default;
};

// "off", "advertise-only", "on".
std::string_view cmaf_mode_text(Policy::CmafMode mode);

// The longest text write_policy_json can produce (every number at its widest).
inline constexpr size_t max_policy_json_bytes = 192;

// Writes the spec's policy object:
//   {"meshEnabled":true,"maxPeers":8,"maxViewers":0,"uploadCapKbps":0,
//    "cmafMode":"off","offerTimeoutMs":10000}
// Returns the number of bytes written, or 0 when `out` is too small (nothing
// usable is written then). No allocation.
size_t write_policy_json(std::span<char> out, const Policy& policy);

class PolicyDocument {
 public:
  // The document with nothing in it: every stream gets Policy{}.
  PolicyDocument();

  // Parses and validates the operator's document. The error is one line
  // naming the offending field, e.g. `streams."live-1".maxPeers: must be an
  // integer 0..64 (got 65)`.
  static std::expected<PolicyDocument, std::string> parse(std::string_view json);

  // Built-in defaults, overlaid with `defaults`, overlaid with the stream's
  // entry when it has one. Allocation-free.
  Policy effective(std::string_view stream_id) const;
  // The policy of every stream the document does not name.
  const Policy& defaults() const { return defaults_; }
  bool names_stream(std::string_view stream_id) const;
  // The streams with an entry, sorted.
  std::vector<std::string> stream_ids() const;

  // A hash of the effective content (defaults and each named stream's
  // effective policy, in streamId order): documents that give every stream
  // the same policy through the same entries have the same version, whatever
  // their formatting or member order. Edges compare it to tell whether they
  // serve the same document.
  uint64_t version() const { return version_; }

 private:
  Policy defaults_;
  // Each named stream's effective policy, computed once at load.
  std::unordered_map<std::string, Policy, TransparentStringHash, std::equal_to<>> streams_;
  uint64_t version_ = 0;
};

// What a reload changes, so the edge pushes `policy` only where it must:
// - streams_changed: the streams named in either document whose effective
//   policy differs (sorted);
// - defaults_changed: the policy of streams named in neither document
//   differs, so every joined stream outside streams_changed that neither
//   document names is affected too.
// Together they are exact: a stream in neither result keeps its policy.
std::vector<std::string> streams_changed(const PolicyDocument& before, const PolicyDocument& after);
bool defaults_changed(const PolicyDocument& before, const PolicyDocument& after);

}  // namespace mf::edge
