#pragma once
// The members of one swarm, (streamId, rendition), and peer matching
// (docs/protocol.md section 4, `peers` rules). Pure and single-threaded: the shard that
// owns hash(streamId) holds every swarm of that stream and is the only one
// that touches it; members joined on other shards or other edges are entered
// here by message and carry an opaque MemberLocation back to the caller.
//
// Cost model: add() is O(1) amortized, remove() and update() O(1) (each with
// a hash-map step or two for the region index), pick() is bounded by a constant
// independent of the swarm's size: small swarms are scanned, large ones are
// sampled (see Swarm::pick). pick() never allocates.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mf::edge {

// A string of at most N bytes stored inline, so a Member is one flat,
// allocation-free record.
template <size_t N>
struct InlineString {
  static_assert(N <= 255, "the length is one byte");
  static constexpr size_t capacity = N;

  uint8_t size = 0;
  char bytes[N] = {};

  // False (and unchanged) when text is longer than N.
  bool assign(std::string_view text) {
    if (text.size() > N) return false;
    size = static_cast<uint8_t>(text.size());
    if (!text.empty()) std::memcpy(bytes, text.data(), text.size());
    return true;
  }
  static std::optional<InlineString> from(std::string_view text) {
    InlineString s;
    if (!s.assign(text)) return std::nullopt;
    return s;
  }
  std::string_view view() const { return {bytes, size}; }
  bool empty() const { return size == 0; }
  friend bool operator==(const InlineString& a, const InlineString& b) { return a.view() == b.view(); }
};

// Same bounds as the SDK parser enforces (docs/protocol.md section 2 for peer ids; the
// edge's own 64-byte cap for declared topology strings).
inline constexpr size_t peer_id_capacity = 128;
inline constexpr size_t topology_string_capacity = 64;

using PeerId = InlineString<peer_id_capacity>;
using TopologyString = InlineString<topology_string_capacity>;

// What a peer declared about its network position (join/update `topology`).
// An empty string and asn < 0 mean "not declared".
struct Topology {
  int64_t asn = -1;
  TopologyString region;
  TopologyString country;
  TopologyString network;
};

// nullopt when a string exceeds topology_string_capacity (the edge answers
// bad-request before it gets here); asn < 0 means absent.
std::optional<Topology> make_topology(std::string_view region, std::string_view country, int64_t asn,
                                      std::string_view network);

// A field matches only when both sides declared it and the values are equal:
// two peers that declared no region are not "in the same region".
inline bool same_region(const Topology& a, const Topology& b) { return !a.region.empty() && a.region == b.region; }
inline bool same_country(const Topology& a, const Topology& b) { return !a.country.empty() && a.country == b.country; }
inline bool same_asn(const Topology& a, const Topology& b) { return a.asn >= 0 && a.asn == b.asn; }

// Largest output of write_topology_json: three strings whose every byte is a
// control character (\u00XX, 6 bytes each), an int64 and the keys.
inline constexpr size_t max_topology_json_bytes = 3 * (topology_string_capacity * 6 + 2) + 20 + 48;

// Writes the topology as the JSON object sent in `peers` (docs/protocol.md section 4):
// the NORMALIZED form of what the candidate declared, not its original text.
// Fields in the order region, country, asn, network, each only when present;
// `{}` when none is. Strings are escaped per RFC 8259. Returns the bytes
// written, or 0 when `out` is too small (max_topology_json_bytes always fits).
size_t write_topology_json(std::span<char> out, const Topology& topology);

// Where a member's connection lives; opaque to the swarm, carried for the
// caller that routes `peers` entries and signals.
struct MemberLocation {
  uint32_t edge_index = 0;  // 0 = this edge
  uint16_t shard = 0;
  uint32_t connection_slot = 0;
  uint32_t connection_generation = 0;
  // The connection's join sequence that entered it: a late leave of an
  // abandoned join never removes a newer entry of the same connection.
  uint32_t join_sequence = 0;
};

// What the caller declares about a member. The swarm also keeps, per member,
// a proposal counter it owns (see Swarm::proposals).
struct Member {
  PeerId peer_id;
  Topology topology;
  MemberLocation location;
  bool accepting_peers = true;  // caps.acceptingPeers; false: never proposed
};

// Names a member for as long as it stays in the swarm. Handles are stable
// across other members' removal (the dense storage moves records, the handle
// table follows). A removed member's handle goes stale: its slot's generation
// advances, so a late message carrying it (a leave crossing a re-join, say)
// misses instead of reaching whoever reuses the slot.
struct MemberHandle {
  uint32_t slot = UINT32_MAX;
  uint32_t generation = 0;
  friend bool operator==(const MemberHandle&, const MemberHandle&) = default;
};

// xoshiro256** seeded through splitmix64: a small, fast, non-cryptographic
// generator. One per shard, seeded from the shard's own entropy; it decides
// sampling and tie-breaking only.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  // Uniform in [0, bound); bound > 0.
  uint32_t below(uint32_t bound);

 private:
  uint64_t s_[4];
};

// Tunables of the bounded search (defaults are the documented behaviour).
struct SwarmTuning {
  // A candidate source (the whole swarm, or the requester's region) with at
  // most max(scan_limit, S) members is scanned completely; a larger one
  // contributes a sample of S.
  uint32_t scan_limit = 256;
  // Sample size S = clamp(sample_per_wanted * count, min_sample, max_sample).
  uint32_t sample_per_wanted = 8;
  uint32_t min_sample = 64;   // 1 <= min_sample <= max_sample (the constructor aborts otherwise)
  uint32_t max_sample = 512;
  // "Current" proposals: every counter halves once per this many ms.
  uint32_t proposal_half_life_ms = 30'000;
};

struct PickRequest {
  std::string_view requester;  // its peer id: never returned
  Topology requester_topology;  // what the requester declared (default: nothing)
  uint32_t count = 0;  // min(requested, effective maxPeers), by the caller
  std::span<const std::string_view> exclude;  // at most Swarm::max_exclude peer ids
  uint64_t now_ms = 0;  // ages the proposal counters
};

class Swarm {
 public:
  static constexpr uint32_t max_pick = 64;     // spec: count and maxPeers <= 64
  static constexpr size_t max_exclude = 64;    // spec: need-peers exclude <= 64

  // hash_seed keys the hashes of peer ids and topology strings (draw it from
  // the shard's Rng) so clients cannot aim collisions at the region map.
  explicit Swarm(uint64_t hash_seed, SwarmTuning tuning = {});

  // Enters a member. The caller guarantees peer ids are unique within the
  // swarm (the peer directory enforces one live holder per peer id); the
  // swarm does not index them. O(1) amortized: allocates only to grow past
  // the swarm's high-water mark, or for the first member of a new region.
  MemberHandle add(const Member& member);
  // Leaves. False (and nothing happens) for a stale handle. O(1): the last
  // record moves into the hole, handles are unaffected.
  bool remove(MemberHandle handle);
  // Replaces what matching knows (spec `update`). False for a stale handle.
  bool update(MemberHandle handle, const Topology& topology, bool accepting_peers);

  bool contains(MemberHandle handle) const { return dense_of(handle) != npos; }
  // nullptr for a stale handle.
  const Member* find(MemberHandle handle) const;
  // The handle must be live (aborts otherwise).
  const Member& at(MemberHandle handle) const;
  uint32_t size() const { return static_cast<uint32_t>(entries_.size()); }
  bool empty() const { return entries_.empty(); }
  // Regions that currently hold an index list (one per declared region with
  // members; a region's list goes with its last member).
  size_t region_count() const { return regions_.size(); }

  // Up to request.count (and at most out.size(), max_pick) distinct members,
  // written to out best first; returns how many. Never the requester, never an
  // excluded peer, never a member with accepting_peers false. Order: same
  // region, then same asn, then same country, then fewest current proposals;
  // equal ranks in random order (a fresh random key per candidate and pick).
  // Each returned member's proposal counter is incremented.
  //
  // Bounded work (the quality trade-off). With
  // S = clamp(sample_per_wanted * count, min_sample, max_sample), a source of
  // at most max(scan_limit, S) members is scanned in full, and the result is
  // then exactly the best members. A larger source contributes a uniform
  // sample of S distinct members (random start, random stride coprime with
  // its size), so every member is equally likely to be considered, but the
  // result is the best of the sample, not of the swarm. To keep the first
  // criterion strong in huge swarms, members are also indexed by region: the
  // requester's region is searched first (scanned or sampled the same way),
  // and the whole swarm is searched only when that yields fewer than count
  // eligible members. So a requester gets same-region peers whenever its
  // region has enough eligible ones; within the region, asn, country and
  // proposals are ranked over the sample only, and a region that is sampled
  // and then completed from a whole-swarm sample may miss some of its own
  // members. Work is at most two sources of max(scan_limit, max_sample)
  // records each, whatever the swarm's size.
  //
  // Precondition: request.exclude.size() <= max_exclude (aborts otherwise;
  // the SDK parser refuses longer lists).
  size_t pick(const PickRequest& request, std::span<MemberHandle> out, Rng& rng);

  // The member's current proposal count: how often pick() returned it,
  // halved once per proposal_half_life_ms (decay is lazy, per member, on
  // read and increment; no sweep over the swarm). 0 for a stale handle.
  uint32_t proposals(MemberHandle handle, uint64_t now_ms) const;
  // Takes one proposal back (e.g. the requester reported the candidate
  // useless, or the connection attempt ended); saturates at 0.
  void forget_proposal(MemberHandle handle, uint64_t now_ms);

 private:
  static constexpr uint32_t npos = UINT32_MAX;

  // One member. The first cache line holds everything ranking and filtering
  // read (hashes and copies of asn and accepting_peers), so a sampled record
  // costs one miss; the strings behind it are read only when a hash matches.
  struct alignas(64) Entry {
    uint64_t peer_hash = 0;
    uint64_t region_hash = 0;   // 0: no region declared
    uint64_t country_hash = 0;  // 0: no country declared
    int64_t asn = -1;
    uint32_t handle_slot = 0;
    uint32_t region_position = npos;  // index in its region's list; npos: not indexed
    uint32_t proposals = 0;
    uint32_t proposal_epoch = 0;  // epoch at which `proposals` was last normalised
    bool accepting = true;
    Member member;
  };

  struct HandleSlot {
    uint32_t dense = npos;  // entries_ index when live; next free slot when free
    uint32_t generation = 1;
    bool live = false;
  };

  // Members of one region, as dense indices. Keyed by the region's hash; the
  // first region string to claim a hash owns the list, and a member whose
  // (different) region collides on the hash is simply left unindexed: it is
  // still found by the whole-swarm search, and ranking compares the strings.
  struct RegionList {
    TopologyString region;
    std::vector<uint32_t> members;
  };

  uint32_t dense_of(MemberHandle handle) const;
  void set_keys(Entry& entry);
  void index_region(uint32_t dense);
  void unindex_region(uint32_t dense);
  uint32_t epoch(uint64_t now_ms) const;
  uint32_t current_proposals(const Entry& entry, uint32_t epoch) const;

  uint64_t hash_text(std::string_view text) const;

  SwarmTuning tuning_;
  uint64_t hash_seed_;
  std::vector<Entry> entries_;
  std::vector<HandleSlot> handles_;
  uint32_t free_handle_ = npos;
  std::unordered_map<uint64_t, RegionList> regions_;
};

}  // namespace mf::edge
