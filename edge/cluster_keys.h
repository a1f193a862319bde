#pragma once
// The cross-edge layout in Valkey (docs/cluster.md): key and channel names, and the
// records stored there or published between edges. Pure: no IO, no clock.
//
// Keys, with P the configured prefix (default "mf:"); the {...} part is the
// Valkey Cluster hash tag, so everything one operation touches shares a slot:
//   P{p:<peerId>}:own             string  owner record (which edge, shard and
//                                          connection holds the peer; its stream
//                                          and rendition), PX presence TTL
//   P{s:<stream>}:idx:<rendition> zset    member peerId, score = expiry (Unix ms)
//   P{s:<stream>}:rec:<rendition> hash    field peerId -> swarm record (edge,
//                                          caps, topology); same members as idx
//   P{s:<stream>}:viewers         zset    member peerId, score = expiry: the stream's
//                                          viewers on every edge (cluster-wide maxViewers)
//   P{t:<info_hash hex>}:idx      zset    a WebTorrent tracker swarm: member peer_id
//                                          (hex), score = expiry (Unix ms)
//   P{t:<info_hash hex>}:rec      hash    field peer_id (hex) -> swarm record (edge,
//                                          the swarm's shard there, connection)
//   P{t:<info_hash hex>}:seed     zset    the seeders among :idx, same scores: the
//                                          swarm's counts are two ZCOUNTs
//   P{t:<info_hash hex>}:load     zset    member peer_id (hex), score = offers sent to
//                                          it from other edges (new members start at
//                                          the lowest): the order of offers across edges
//   P{e:<edge>}:alive             string  liveness, SET PX 3000 every second
//   Pedges                        zset    member edge id, score = expiry of its
//                                          liveness (Unix ms): the readable index
//                                          of the alive keys
//   Ppolicy                       string  the operator's policy document (JSON), optional
//   Psummaries                    hash    field edge id -> record (expiry in Unix ms,
//                                          the edge's summary JSON, edge/cluster_summary.h),
//                                          written every second: the operator page's cluster view
// Channels:
//   P{e:<edge>}:sig:<shard>       signals for the connections of one shard of
//                                 one edge, failures coming back to them, and
//                                 "replaced" notices for its connections (4001)
//   Ppolicy                       "the policy key changed" (any payload)
//
// Records are lists of fields, each written as <decimal length>:<bytes>
// (no separator can clash with the bytes, so topology strings and raw JSON
// travel unchanged). Decoding is strict: a record that does not parse is
// ignored by the caller, never trusted.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mf::edge::cluster {

// ---- names ----

// Each builder writes the name into `out` (cleared first; its capacity is
// reused) and returns a view of it.
std::string_view owner_key(std::string& out, std::string_view prefix, std::string_view peer_id);
std::string_view index_key(std::string& out, std::string_view prefix, std::string_view stream_id,
                           std::string_view rendition);
std::string_view record_key(std::string& out, std::string_view prefix, std::string_view stream_id,
                            std::string_view rendition);
std::string_view alive_key(std::string& out, std::string_view prefix, std::string_view edge_id);
std::string_view edges_key(std::string& out, std::string_view prefix);
std::string_view viewers_key(std::string& out, std::string_view prefix, std::string_view stream_id);
std::string_view summaries_key(std::string& out, std::string_view prefix);
// The policy document's key; its notification channel has the same name.
std::string_view policy_key(std::string& out, std::string_view prefix);
// Tracker swarms (docs/cluster.md, "Tracker swarms across edges"): ids are
// 20 raw bytes, named in keys and members by their lowercase hex.
std::string_view hex_id(std::string& out, std::string_view bytes);
std::string_view tracker_index_key(std::string& out, std::string_view prefix, std::string_view info_hash_hex);
std::string_view tracker_record_key(std::string& out, std::string_view prefix, std::string_view info_hash_hex);
std::string_view tracker_seeders_key(std::string& out, std::string_view prefix, std::string_view info_hash_hex);
std::string_view tracker_load_key(std::string& out, std::string_view prefix, std::string_view info_hash_hex);
// The bytes of a lowercase hex id (hex_id's inverse) into `out`; false when
// `hex` is not exactly 2 * out.size() lowercase hex digits.
bool unhex_id(std::string_view hex, std::span<uint8_t> out);

// The lowercase hex SHA-256 of a session (session_digest_bytes long): what
// Valkey holds instead of the secret itself, compared for takeovers.
inline constexpr size_t session_digest_bytes = 64;
std::string session_digest(std::string_view session);
std::string_view signal_channel(std::string& out, std::string_view prefix, std::string_view edge_id, uint32_t shard);

// ---- fields ----

// Appends one field to `out`.
void append_field(std::string& out, std::string_view field);
void append_field(std::string& out, uint64_t value);
// Splits `record` into exactly out.size() fields. False when the record is
// malformed, has fewer or more fields.
bool split_fields(std::string_view record, std::span<std::string_view> out);
// A decimal field (at most 19 digits, no sign); nullopt otherwise.
std::optional<uint64_t> parse_unsigned(std::string_view text);

// ---- records ----

// Where a peer is held: P{p:<peerId>}:own. The session digest is the last
// field and always session_digest_bytes long, so the claim script finds it
// as the record's last bytes; the holder (edge, shard, slot, generation) is
// the first four fields, so encode_holder() is a prefix of the record.
struct OwnerRecord {
  std::string_view edge_id;
  uint32_t shard = 0;
  uint32_t slot = 0;
  uint32_t generation = 0;
  std::string_view stream_id;
  std::string_view rendition;
  std::string_view session_digest;  // session_digest_bytes
};
void encode_owner(std::string& out, const OwnerRecord& record);
// The first four fields of an owner record: "is this key still mine".
std::string_view encode_holder(std::string& out, std::string_view edge_id, uint32_t shard, uint32_t slot,
                               uint32_t generation);
// Views into `text`.
std::optional<OwnerRecord> decode_owner(std::string_view text);
// The first field of every record that names `edge_id` (owner and swarm
// records): a script compares it as a prefix to tell this edge's records
// from other edges'.
std::string_view encode_edge_field(std::string& out, std::string_view edge_id);

// What matching needs about a member of a swarm: P{s:..}:rec:.. field value.
struct SwarmRecord {
  std::string_view edge_id;
  // The holding connection: a late removal by a replaced connection compares
  // the whole record and so leaves its successor's alone.
  uint32_t shard = 0;
  uint32_t slot = 0;
  uint32_t generation = 0;
  bool accepting_peers = true;
  int64_t asn = -1;  // -1: not declared
  std::string_view region;
  std::string_view country;
  std::string_view topology_json;  // as sent in `peers`: the normalized object
};
void encode_swarm(std::string& out, const SwarmRecord& record);
std::optional<SwarmRecord> decode_swarm(std::string_view text);

// Published on a shard's signal channel.
enum class EnvelopeKind : uint8_t {
  signal,  // deliver `text` to (target_slot, target_generation) if it is `to` in `stream_id`
  failed,  // the signal of (sender_slot, sender_generation) to `to` found no target: peer-not-found
  replace, // close (target_slot, target_generation) with 4001 if it still holds `to`: taken over elsewhere
  // A signal sent to a location the sender's edge had cached (docs/cluster.md,
  // "The peer-location cache"): when the target is not there any more it is
  // not failed but published back whole as `bounced`.
  signal_cached,
  // A signal_cached whose connection is gone, back at its sender's shard:
  // looked up again in Valkey and sent once more (as a plain signal, which
  // cannot bounce).
  bounced,
  // A signal_cached that found its connection in another state (another
  // stream, between joins): peer-not-found, and the sender's edge forgets
  // the cached place (target_slot, target_generation). Fields as replace.
  missed,
  // A WebTorrent tracker offer (docs/cluster.md, "Tracker swarms across
  // edges"), published to the recipient's swarm shard: `to` the recipient's
  // peer_id, `stream_id` the info_hash (20 raw bytes each), `ref_raw` the
  // offerer's peer_id then the offer_id (40 bytes), the recipient's
  // connection in target_slot/target_generation, `text` the ready offer;
  // sender_shard is the offerer's swarm shard (where the answer goes).
  tracker_offer,
  // Its answer, published back to that shard: `to` the offerer, `ref_raw`
  // the answerer's peer_id then the offer_id, `text` the ready answer.
  tracker_answer,
};
// The kinds that carry a whole signal (stream_id and text).
inline bool carries_signal(EnvelopeKind kind) {
  return kind == EnvelopeKind::signal || kind == EnvelopeKind::signal_cached || kind == EnvelopeKind::bounced ||
         kind == EnvelopeKind::tracker_offer || kind == EnvelopeKind::tracker_answer;
}
struct Envelope {
  EnvelopeKind kind = EnvelopeKind::signal;
  std::string_view origin_edge;   // the sender's edge (failures are published back there)
  uint32_t sender_shard = 0;
  uint32_t sender_slot = 0;
  uint32_t sender_generation = 0;
  uint32_t target_slot = 0;        // signal and replace
  uint32_t target_generation = 0;  // signal and replace
  std::string_view to;
  std::string_view stream_id;  // the sender's stream (the same-stream guard); carries_signal only
  std::string_view ref_raw;    // the sender's `id`, echoed as `ref` in the error
  std::string_view text;       // the ready `signal` message; carries_signal only
};
void encode_envelope(std::string& out, const Envelope& envelope);
std::optional<Envelope> decode_envelope(std::string_view text);

}  // namespace mf::edge::cluster
