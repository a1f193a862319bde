#include "edge/swarm.h"

#include <algorithm>
#include <cstdlib>
#include <numeric>

#include "common/base/json_writer.h"

namespace mf::edge {

namespace {

// splitmix64's output function: a bijective 64-bit avalanche.
uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// Ranking key of one candidate, smaller is better:
//   bit 63      region differs (or undeclared)
//   bit 62      asn differs
//   bit 61      country differs
//   bits 60..32 current proposals, saturated at 2^29 - 1
//   bits 31..0  random: equal ranks come out in random order
constexpr uint64_t region_miss_bit = 1ULL << 63;
constexpr uint64_t asn_miss_bit = 1ULL << 62;
constexpr uint64_t country_miss_bit = 1ULL << 61;
constexpr uint32_t max_ranked_proposals = (1U << 29) - 1;

struct Candidate {
  uint64_t key;
  uint32_t dense;
};

// The `want` best candidates offered so far, as a max-heap on the key (the
// worst kept candidate on top, the one a better offer replaces).
class BestCandidates {
 public:
  explicit BestCandidates(size_t want) : want_(want) {}

  // dedupe: the member may already be held (it can be offered by both the
  // region search and the whole-swarm sample).
  void offer(uint64_t key, uint32_t dense, bool dedupe) {
    if (size_ == want_ && key >= heap_[0].key) return;
    if (dedupe && holds(dense)) return;
    if (size_ == want_) {
      std::pop_heap(heap_, heap_ + size_, worse_last);
      heap_[size_ - 1] = {key, dense};
    } else {
      heap_[size_++] = {key, dense};
    }
    std::push_heap(heap_, heap_ + size_, worse_last);
  }
  // Best first; ends the heap.
  std::span<const Candidate> sorted() {
    std::sort_heap(heap_, heap_ + size_, worse_last);
    return {heap_, size_};
  }

 private:
  struct ByKey {
    bool operator()(const Candidate& a, const Candidate& b) const { return a.key < b.key; }
  };
  static constexpr ByKey worse_last{};
  bool holds(uint32_t dense) const {
    for (size_t i = 0; i < size_; ++i)
      if (heap_[i].dense == dense) return true;
    return false;
  }
  Candidate heap_[Swarm::max_pick];
  size_t want_;
  size_t size_ = 0;
};

// The positions of [0, n) that one source contributes: all of them when
// n <= full_limit, else `sample` distinct ones (random start, random stride
// coprime with n: no position repeats within n steps, and every position is
// visited with the same probability sample / n).
class Walk {
 public:
  Walk(uint32_t n, uint32_t full_limit, uint32_t sample, Rng& rng) : n_(n) {
    if (n <= full_limit) {
      steps_ = n;
      return;
    }
    // At least a sixth of all strides are coprime with any n < 2^32 (the
    // worst is a product of the first primes): 64 tries fall back to the
    // plain window (step 1) with probability below 1e-5.
    for (int tries = 0; tries < 64; ++tries) {
      uint32_t candidate = 1 + rng.below(n - 1);
      if (std::gcd(candidate, n) == 1) {
        step_ = candidate;
        break;
      }
    }
    start_ = rng.below(n);
    steps_ = sample;
  }
  bool covers_all() const { return steps_ == n_; }

  // visit(position) for each position in turn. To overlap cache misses,
  // far(position) runs 16 positions ahead and near(position) 8 ahead (a
  // two-level lookup prefetches its index far and its record near).
  template <class Far, class Near, class Visit>
  void run(Far far, Near near, Visit visit) const {
    constexpr uint32_t far_lead = 16, near_lead = 8;
    Cursor far_cursor{start_, 0}, near_cursor{start_, 0};
    for (; far_cursor.done < std::min(far_lead, steps_); step(far_cursor)) far(far_cursor.position);
    for (; near_cursor.done < std::min(near_lead, steps_); step(near_cursor)) near(near_cursor.position);
    for (Cursor at{start_, 0}; at.done < steps_; step(at)) {
      if (far_cursor.done < steps_) {
        far(far_cursor.position);
        step(far_cursor);
      }
      if (near_cursor.done < steps_) {
        near(near_cursor.position);
        step(near_cursor);
      }
      visit(at.position);
    }
  }

 private:
  struct Cursor {
    uint32_t position;
    uint32_t done;
  };
  void step(Cursor& c) const {
    // (position + step_) mod n_, without overflowing for n_ near 2^32.
    c.position = c.position >= n_ - step_ ? c.position - (n_ - step_) : c.position + step_;
    ++c.done;
  }
  uint32_t n_;
  uint32_t start_ = 0;
  uint32_t step_ = 1;
  uint32_t steps_ = 0;
};

}  // namespace

std::optional<Topology> make_topology(std::string_view region, std::string_view country, int64_t asn,
                                      std::string_view network) {
  Topology t;
  t.asn = asn < 0 ? -1 : asn;
  if (!t.region.assign(region) || !t.country.assign(country) || !t.network.assign(network)) return std::nullopt;
  return t;
}

size_t write_topology_json(std::span<char> out, const Topology& topology) {
  JsonWriter w(out);
  char separator = '{';
  auto key = [&](std::string_view name) {
    w.raw(std::string_view(&separator, 1));
    separator = ',';
    w.string(name);
    w.raw(":");
  };
  if (!topology.region.empty()) {
    key("region");
    w.string(topology.region.view());
  }
  if (!topology.country.empty()) {
    key("country");
    w.string(topology.country.view());
  }
  if (topology.asn >= 0) {
    key("asn");
    w.number(topology.asn);
  }
  if (!topology.network.empty()) {
    key("network");
    w.string(topology.network.view());
  }
  w.raw(separator == '{' ? "{}" : "}");
  return w.ok() ? w.size() : 0;
}

Rng::Rng(uint64_t seed) {
  for (auto& word : s_) {
    seed += 0x9e3779b97f4a7c15ULL;
    word = mix64(seed);
  }
}

uint64_t Rng::next() {
  uint64_t result = rotl(s_[1] * 5, 7) * 9;
  uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

uint32_t Rng::below(uint32_t bound) {
  // Multiply-shift with rejection of the biased low products (Lemire).
  uint64_t product = (next() >> 32) * bound;
  auto low = static_cast<uint32_t>(product);
  if (low < bound) {
    uint32_t threshold = -bound % bound;
    while (low < threshold) {
      product = (next() >> 32) * bound;
      low = static_cast<uint32_t>(product);
    }
  }
  return static_cast<uint32_t>(product >> 32);
}

Swarm::Swarm(uint64_t hash_seed, SwarmTuning tuning) : tuning_(tuning), hash_seed_(mix64(hash_seed)) {
  if (tuning_.min_sample == 0 || tuning_.min_sample > tuning_.max_sample) std::abort();  // a programming error
}

uint64_t Swarm::hash_text(std::string_view text) const {
  // Length first, so zero padding of the tail cannot alias a longer text.
  uint64_t h = hash_seed_ ^ (text.size() * 0x9e3779b97f4a7c15ULL);
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    h = mix64(h ^ word);
  }
  if (i < text.size()) {
    uint64_t word = 0;
    std::memcpy(&word, text.data() + i, text.size() - i);
    h = mix64(h ^ word ^ 0xff51afd7ed558ccdULL);
  }
  return h == 0 ? 1 : h;  // 0 is reserved for "undeclared"
}

uint32_t Swarm::dense_of(MemberHandle handle) const {
  if (handle.slot >= handles_.size()) return npos;
  const HandleSlot& s = handles_[handle.slot];
  if (!s.live || s.generation != handle.generation) return npos;
  return s.dense;
}

void Swarm::set_keys(Entry& entry) {
  const Member& m = entry.member;
  entry.peer_hash = hash_text(m.peer_id.view());
  entry.region_hash = m.topology.region.empty() ? 0 : hash_text(m.topology.region.view());
  entry.country_hash = m.topology.country.empty() ? 0 : hash_text(m.topology.country.view());
  entry.asn = m.topology.asn < 0 ? -1 : m.topology.asn;
  entry.accepting = m.accepting_peers;
}

void Swarm::index_region(uint32_t dense) {
  Entry& e = entries_[dense];
  e.region_position = npos;
  if (e.region_hash == 0) return;
  auto [it, inserted] = regions_.try_emplace(e.region_hash);
  RegionList& list = it->second;
  if (inserted) list.region = e.member.topology.region;
  else if (!(list.region == e.member.topology.region)) return;  // hash collision: stays unindexed
  e.region_position = static_cast<uint32_t>(list.members.size());
  list.members.push_back(dense);
}

void Swarm::unindex_region(uint32_t dense) {
  Entry& e = entries_[dense];
  if (e.region_position == npos) return;
  auto it = regions_.find(e.region_hash);
  if (it == regions_.end()) std::abort();  // indexed entries always have their list
  std::vector<uint32_t>& members = it->second.members;
  uint32_t moved = members.back();
  members[e.region_position] = moved;
  entries_[moved].region_position = e.region_position;
  members.pop_back();
  e.region_position = npos;
  if (members.empty()) regions_.erase(it);
}

MemberHandle Swarm::add(const Member& member) {
  uint32_t slot;
  if (free_handle_ != npos) {
    slot = free_handle_;
    free_handle_ = handles_[slot].dense;
  } else {
    slot = static_cast<uint32_t>(handles_.size());
    handles_.emplace_back();
  }
  auto dense = static_cast<uint32_t>(entries_.size());
  Entry& e = entries_.emplace_back();
  e.member = member;
  e.handle_slot = slot;
  set_keys(e);
  index_region(dense);
  HandleSlot& s = handles_[slot];
  s.dense = dense;
  s.live = true;
  return {slot, s.generation};
}

bool Swarm::remove(MemberHandle handle) {
  uint32_t dense = dense_of(handle);
  if (dense == npos) return false;
  unindex_region(dense);
  auto last = static_cast<uint32_t>(entries_.size() - 1);
  if (dense != last) {
    entries_[dense] = entries_[last];
    Entry& moved = entries_[dense];
    handles_[moved.handle_slot].dense = dense;
    if (moved.region_position != npos) regions_.find(moved.region_hash)->second.members[moved.region_position] = dense;
  }
  entries_.pop_back();
  HandleSlot& s = handles_[handle.slot];
  s.live = false;
  ++s.generation;
  s.dense = free_handle_;
  free_handle_ = handle.slot;
  return true;
}

bool Swarm::update(MemberHandle handle, const Topology& topology, bool accepting_peers) {
  uint32_t dense = dense_of(handle);
  if (dense == npos) return false;
  unindex_region(dense);
  Entry& e = entries_[dense];
  e.member.topology = topology;
  e.member.accepting_peers = accepting_peers;
  set_keys(e);
  index_region(dense);
  return true;
}

const Member* Swarm::find(MemberHandle handle) const {
  uint32_t dense = dense_of(handle);
  return dense == npos ? nullptr : &entries_[dense].member;
}

const Member& Swarm::at(MemberHandle handle) const {
  const Member* m = find(handle);
  if (m == nullptr) std::abort();
  return *m;
}

uint32_t Swarm::epoch(uint64_t now_ms) const {
  if (tuning_.proposal_half_life_ms == 0) return 0;
  return static_cast<uint32_t>(std::min<uint64_t>(now_ms / tuning_.proposal_half_life_ms, UINT32_MAX));
}

uint32_t Swarm::current_proposals(const Entry& entry, uint32_t now_epoch) const {
  if (now_epoch <= entry.proposal_epoch) return entry.proposals;  // the clock never runs the count up
  uint32_t halvings = now_epoch - entry.proposal_epoch;
  return halvings >= 32 ? 0 : entry.proposals >> halvings;
}

uint32_t Swarm::proposals(MemberHandle handle, uint64_t now_ms) const {
  uint32_t dense = dense_of(handle);
  return dense == npos ? 0 : current_proposals(entries_[dense], epoch(now_ms));
}

void Swarm::forget_proposal(MemberHandle handle, uint64_t now_ms) {
  uint32_t dense = dense_of(handle);
  if (dense == npos) return;
  Entry& e = entries_[dense];
  uint32_t now_epoch = epoch(now_ms);
  uint32_t current = current_proposals(e, now_epoch);
  e.proposals = current == 0 ? 0 : current - 1;
  e.proposal_epoch = std::max(e.proposal_epoch, now_epoch);
}

namespace {

// The requester and the excluded peer ids, by hash (open addressing, linear
// probing; hash 0 marks an empty slot). A hash match is confirmed on the text.
class ExcludedPeers {
 public:
  static constexpr size_t slots = 256;  // > 2 * (Swarm::max_exclude + 1): short probes
  static_assert(Swarm::max_exclude + 1 <= UINT8_MAX);

  void insert(uint64_t hash, std::string_view peer_id) {
    size_t i = hash & (slots - 1);
    while (hashes_[i] != 0) i = (i + 1) & (slots - 1);
    hashes_[i] = hash;
    which_[i] = count_;
    ids_[count_++] = peer_id;
  }
  bool contains(uint64_t hash, std::string_view peer_id) const {
    for (size_t i = hash & (slots - 1); hashes_[i] != 0; i = (i + 1) & (slots - 1))
      if (hashes_[i] == hash && ids_[which_[i]] == peer_id) return true;
    return false;
  }

 private:
  uint64_t hashes_[slots] = {};
  uint8_t which_[slots];
  std::string_view ids_[Swarm::max_exclude + 1];
  uint8_t count_ = 0;
};

}  // namespace

size_t Swarm::pick(const PickRequest& request, std::span<MemberHandle> out, Rng& rng) {
  if (request.exclude.size() > max_exclude) std::abort();
  size_t want = std::min<size_t>({request.count, out.size(), max_pick});
  if (want == 0 || entries_.empty()) return 0;

  ExcludedPeers excluded;
  excluded.insert(hash_text(request.requester), request.requester);
  for (std::string_view id : request.exclude) excluded.insert(hash_text(id), id);

  const Topology& mine = request.requester_topology;
  const uint64_t region_hash = mine.region.empty() ? 0 : hash_text(mine.region.view());
  const uint64_t country_hash = mine.country.empty() ? 0 : hash_text(mine.country.view());
  const int64_t asn = mine.asn;
  const uint32_t now_epoch = epoch(request.now_ms);
  const auto sample = static_cast<uint32_t>(std::clamp<uint64_t>(uint64_t{tuning_.sample_per_wanted} * want,
                                                                 tuning_.min_sample, tuning_.max_sample));
  const uint32_t full_limit = std::max(tuning_.scan_limit, sample);

  // The requester's region list, if its region owns one (see RegionList).
  const RegionList* region_list = nullptr;
  if (region_hash != 0) {
    auto it = regions_.find(region_hash);
    if (it != regions_.end() && it->second.region == mine.region) region_list = &it->second;
  }

  auto region_matches = [&](const Entry& e) {
    if (region_hash == 0 || e.region_hash != region_hash) return false;
    // Indexed under this hash means "holds the list's region string".
    if (e.region_position != npos) return region_list != nullptr;
    return e.member.topology.region == mine.region;
  };

  BestCandidates best(want);
  // Offers one member; false when it is not eligible at all.
  auto consider = [&](uint32_t dense, bool dedupe) {
    const Entry& e = entries_[dense];
    if (!e.accepting) return false;
    if (excluded.contains(e.peer_hash, e.member.peer_id.view())) return false;
    uint64_t key = std::min(current_proposals(e, now_epoch), max_ranked_proposals);
    key <<= 32;
    if (!region_matches(e)) key |= region_miss_bit;
    if (asn < 0 || e.asn != asn) key |= asn_miss_bit;
    if (country_hash == 0 || e.country_hash != country_hash || !(e.member.topology.country == mine.country))
      key |= country_miss_bit;
    key |= rng.next() >> 32;
    best.offer(key, dense, dedupe);
    return true;
  };

  auto prefetch_entry = [&](uint32_t dense) { __builtin_prefetch(&entries_[dense]); };

  // 1. The requester's region.
  bool region_fully_scanned = false;
  bool search_whole_swarm = true;
  if (region_list != nullptr) {
    const std::vector<uint32_t>& members = region_list->members;
    Walk walk(static_cast<uint32_t>(members.size()), full_limit, sample, rng);
    region_fully_scanned = walk.covers_all();
    size_t eligible = 0;
    walk.run([&](uint32_t i) { __builtin_prefetch(&members[i]); }, [&](uint32_t i) { prefetch_entry(members[i]); },
             [&](uint32_t i) { eligible += consider(members[i], false); });
    // Every other member ranks below these: the whole swarm cannot improve
    // the first `want` places.
    search_whole_swarm = eligible < want;
  }

  // 2. The whole swarm.
  if (search_whole_swarm) {
    Walk walk(static_cast<uint32_t>(entries_.size()), full_limit, sample, rng);
    walk.run([](uint32_t) {}, prefetch_entry, [&](uint32_t dense) {
      const Entry& e = entries_[dense];
      bool in_region_list = region_list != nullptr && e.region_position != npos && e.region_hash == region_hash;
      // Fully scanned region members were all offered already; sampled ones
      // may come again.
      if (!(in_region_list && region_fully_scanned)) consider(dense, in_region_list);
    });
  }

  std::span<const Candidate> chosen = best.sorted();
  for (size_t i = 0; i < chosen.size(); ++i) {
    Entry& e = entries_[chosen[i].dense];
    out[i] = {e.handle_slot, handles_[e.handle_slot].generation};
    uint32_t current = current_proposals(e, now_epoch);
    e.proposals = current == UINT32_MAX ? current : current + 1;
    e.proposal_epoch = std::max(e.proposal_epoch, now_epoch);
  }
  return chosen.size();
}

}  // namespace mf::edge
