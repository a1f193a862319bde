#include "edge/cluster_keys.h"

#include <openssl/sha.h>

#include <charconv>

namespace mf::edge::cluster {
namespace {

std::string_view tagged(std::string& out, std::string_view prefix, char tag, std::string_view id,
                        std::string_view suffix) {
  out.clear();
  out.append(prefix);
  out.push_back('{');
  out.push_back(tag);
  out.push_back(':');
  out.append(id);
  out.push_back('}');
  out.append(suffix);
  return out;
}

// A key outside any hash tag: one per cluster, not per stream or edge.
std::string_view untagged(std::string& out, std::string_view prefix, std::string_view name) {
  out.clear();
  out.append(prefix);
  out.append(name);
  return out;
}

// Fields as numbers: false when any does not parse or exceeds 32 bits.
bool to_u32(std::string_view text, uint32_t& out) {
  auto v = parse_unsigned(text);
  if (!v || *v > UINT32_MAX) return false;
  out = static_cast<uint32_t>(*v);
  return true;
}

// The holder of a peer, first in both records: edge, shard, slot, generation.
void append_holder(std::string& out, std::string_view edge_id, uint32_t shard, uint32_t slot, uint32_t generation) {
  out.clear();
  append_field(out, edge_id);
  append_field(out, shard);
  append_field(out, slot);
  append_field(out, generation);
}

bool read_holder(std::span<const std::string_view> f, std::string_view& edge_id, uint32_t& shard, uint32_t& slot,
                 uint32_t& generation) {
  edge_id = f[0];
  return !f[0].empty() && to_u32(f[1], shard) && to_u32(f[2], slot) && to_u32(f[3], generation);
}

constexpr std::string_view signal_tag = "S";
constexpr std::string_view failed_tag = "F";
constexpr std::string_view replace_tag = "R";
constexpr std::string_view signal_cached_tag = "C";
constexpr std::string_view bounced_tag = "B";
constexpr std::string_view missed_tag = "M";
constexpr std::string_view tracker_offer_tag = "O";
constexpr std::string_view tracker_answer_tag = "A";

std::string_view kind_tag(EnvelopeKind kind) {
  switch (kind) {
    case EnvelopeKind::signal: return signal_tag;
    case EnvelopeKind::failed: return failed_tag;
    case EnvelopeKind::replace: return replace_tag;
    case EnvelopeKind::signal_cached: return signal_cached_tag;
    case EnvelopeKind::bounced: return bounced_tag;
    case EnvelopeKind::missed: return missed_tag;
    case EnvelopeKind::tracker_offer: return tracker_offer_tag;
    case EnvelopeKind::tracker_answer: return tracker_answer_tag;
  }
  return signal_tag;
}
constexpr size_t signal_fields = 11;
constexpr size_t failed_fields = 7;
constexpr size_t replace_fields = 9;

}  // namespace

std::string_view owner_key(std::string& out, std::string_view prefix, std::string_view peer_id) {
  return tagged(out, prefix, 'p', peer_id, ":own");
}

std::string_view index_key(std::string& out, std::string_view prefix, std::string_view stream_id,
                           std::string_view rendition) {
  tagged(out, prefix, 's', stream_id, ":idx:");
  out.append(rendition);
  return out;
}

std::string_view record_key(std::string& out, std::string_view prefix, std::string_view stream_id,
                            std::string_view rendition) {
  tagged(out, prefix, 's', stream_id, ":rec:");
  out.append(rendition);
  return out;
}

std::string_view alive_key(std::string& out, std::string_view prefix, std::string_view edge_id) {
  return tagged(out, prefix, 'e', edge_id, ":alive");
}

std::string_view edges_key(std::string& out, std::string_view prefix) { return untagged(out, prefix, "edges"); }

std::string_view viewers_key(std::string& out, std::string_view prefix, std::string_view stream_id) {
  return tagged(out, prefix, 's', stream_id, ":viewers");
}

std::string_view policy_key(std::string& out, std::string_view prefix) { return untagged(out, prefix, "policy"); }

std::string_view hex_id(std::string& out, std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  out.clear();
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

bool unhex_id(std::string_view hex, std::span<uint8_t> out) {
  if (hex.size() != 2 * out.size()) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < out.size(); ++i) {
    int high = nibble(hex[2 * i]), low = nibble(hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    out[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return true;
}

std::string_view tracker_index_key(std::string& out, std::string_view prefix, std::string_view info_hash_hex) {
  return tagged(out, prefix, 't', info_hash_hex, ":idx");
}

std::string_view tracker_record_key(std::string& out, std::string_view prefix, std::string_view info_hash_hex) {
  return tagged(out, prefix, 't', info_hash_hex, ":rec");
}

std::string_view tracker_seeders_key(std::string& out, std::string_view prefix, std::string_view info_hash_hex) {
  return tagged(out, prefix, 't', info_hash_hex, ":seed");
}

std::string_view tracker_load_key(std::string& out, std::string_view prefix, std::string_view info_hash_hex) {
  return tagged(out, prefix, 't', info_hash_hex, ":load");
}

std::string_view summaries_key(std::string& out, std::string_view prefix) {
  return untagged(out, prefix, "summaries");
}

std::string session_digest(std::string_view session) {
  unsigned char hash[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(session.data()), session.size(), hash);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(session_digest_bytes, '0');
  for (size_t i = 0; i < SHA256_DIGEST_LENGTH; ++i) {
    out[2 * i] = hex[hash[i] >> 4];
    out[2 * i + 1] = hex[hash[i] & 15];
  }
  return out;
}

std::string_view encode_holder(std::string& out, std::string_view edge_id, uint32_t shard, uint32_t slot,
                               uint32_t generation) {
  append_holder(out, edge_id, shard, slot, generation);
  return out;
}

std::string_view encode_edge_field(std::string& out, std::string_view edge_id) {
  out.clear();
  append_field(out, edge_id);
  return out;
}

std::string_view signal_channel(std::string& out, std::string_view prefix, std::string_view edge_id, uint32_t shard) {
  tagged(out, prefix, 'e', edge_id, ":sig:");
  char digits[16];
  auto end = std::to_chars(digits, digits + sizeof digits, shard).ptr;
  out.append(digits, end);
  return out;
}

void append_field(std::string& out, std::string_view field) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, field.size()).ptr;
  out.append(digits, end);
  out.push_back(':');
  out.append(field);
}

void append_field(std::string& out, uint64_t value) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  append_field(out, std::string_view(digits, static_cast<size_t>(end - digits)));
}

std::optional<uint64_t> parse_unsigned(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

bool split_fields(std::string_view record, std::span<std::string_view> out) {
  size_t at = 0;
  for (std::string_view& field : out) {
    size_t colon = record.find(':', at);
    if (colon == std::string_view::npos || colon == at || colon - at > 10) return false;
    auto length = parse_unsigned(record.substr(at, colon - at));
    if (!length || *length > record.size() - colon - 1) return false;
    field = record.substr(colon + 1, *length);
    at = colon + 1 + *length;
  }
  return at == record.size();
}

void encode_owner(std::string& out, const OwnerRecord& r) {
  append_holder(out, r.edge_id, r.shard, r.slot, r.generation);
  append_field(out, r.stream_id);
  append_field(out, r.rendition);
  append_field(out, r.session_digest);
}

std::optional<OwnerRecord> decode_owner(std::string_view text) {
  std::string_view f[7];
  OwnerRecord r;
  if (!split_fields(text, f) || !read_holder(f, r.edge_id, r.shard, r.slot, r.generation) ||
      f[6].size() != session_digest_bytes)
    return std::nullopt;
  r.stream_id = f[4];
  r.rendition = f[5];
  r.session_digest = f[6];
  return r;
}

void encode_swarm(std::string& out, const SwarmRecord& r) {
  append_holder(out, r.edge_id, r.shard, r.slot, r.generation);
  append_field(out, std::string_view(r.accepting_peers ? "1" : "0"));
  // asn + 1 keeps the field unsigned: 0 means not declared.
  append_field(out, static_cast<uint64_t>(r.asn < 0 ? 0 : r.asn + 1));
  append_field(out, r.region);
  append_field(out, r.country);
  append_field(out, r.topology_json);
}

std::optional<SwarmRecord> decode_swarm(std::string_view text) {
  std::string_view f[9];
  SwarmRecord r;
  if (!split_fields(text, f) || !read_holder(f, r.edge_id, r.shard, r.slot, r.generation) ||
      (f[4] != "0" && f[4] != "1"))
    return std::nullopt;
  auto asn = parse_unsigned(f[5]);
  if (!asn || *asn > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  r.accepting_peers = f[4] == "1";
  r.asn = static_cast<int64_t>(*asn) - 1;
  r.region = f[6];
  r.country = f[7];
  r.topology_json = f[8];
  if (r.topology_json.empty() || r.topology_json.front() != '{' || r.topology_json.back() != '}') return std::nullopt;
  return r;
}

void encode_envelope(std::string& out, const Envelope& e) {
  out.clear();
  bool signal = carries_signal(e.kind);
  append_field(out, kind_tag(e.kind));
  append_field(out, e.origin_edge);
  append_field(out, e.sender_shard);
  append_field(out, e.sender_slot);
  append_field(out, e.sender_generation);
  append_field(out, e.to);
  append_field(out, e.ref_raw);
  if (e.kind == EnvelopeKind::failed) return;
  append_field(out, e.target_slot);
  append_field(out, e.target_generation);
  if (!signal) return;
  append_field(out, e.stream_id);
  append_field(out, e.text);
}

std::optional<Envelope> decode_envelope(std::string_view text) {
  std::string_view f[signal_fields];
  Envelope e;
  size_t count;
  if (split_fields(text, std::span<std::string_view>(f, failed_fields)) && f[0] == failed_tag) {
    e.kind = EnvelopeKind::failed;
    count = failed_fields;
  } else if (split_fields(text, std::span<std::string_view>(f, replace_fields)) &&
             (f[0] == replace_tag || f[0] == missed_tag)) {
    e.kind = f[0] == replace_tag ? EnvelopeKind::replace : EnvelopeKind::missed;
    count = replace_fields;
  } else if (split_fields(text, f) && (f[0] == signal_tag || f[0] == signal_cached_tag || f[0] == bounced_tag ||
                                        f[0] == tracker_offer_tag || f[0] == tracker_answer_tag)) {
    e.kind = f[0] == signal_tag            ? EnvelopeKind::signal
             : f[0] == signal_cached_tag   ? EnvelopeKind::signal_cached
             : f[0] == bounced_tag         ? EnvelopeKind::bounced
             : f[0] == tracker_offer_tag   ? EnvelopeKind::tracker_offer
                                           : EnvelopeKind::tracker_answer;
    count = signal_fields;
  } else {
    return std::nullopt;
  }
  if (f[1].empty() || f[5].empty() || !to_u32(f[2], e.sender_shard) || !to_u32(f[3], e.sender_slot) ||
      !to_u32(f[4], e.sender_generation))
    return std::nullopt;
  e.origin_edge = f[1];
  e.to = f[5];
  e.ref_raw = f[6];
  if (count >= replace_fields && (!to_u32(f[7], e.target_slot) || !to_u32(f[8], e.target_generation)))
    return std::nullopt;
  if (count == signal_fields) {
    if (f[9].empty() || f[10].empty()) return std::nullopt;
    e.stream_id = f[9];
    e.text = f[10];
  }
  return e;
}

}  // namespace mf::edge::cluster
