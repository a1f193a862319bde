#include "ingress/backend_pool.h"

#include <algorithm>
#include <cstdlib>
#include <unordered_set>

namespace mf::ingress {
namespace {

// Virtual nodes per unit of weight: enough that a backend's share of the
// key space is within a few percent of its weight's share.
constexpr uint64_t points_per_weight = 100;
// Ring size cap (16 bytes a point: 1 MiB per shard). Above it the points
// per unit of weight shrink proportionally, each backend keeping at least 1.
constexpr uint64_t max_ring_points = 65536;

// Slow start never gives a returning backend less than this share (in
// thousandths) of its weight.
constexpr uint64_t min_ramp_permille = 100;

// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
uint64_t avalanche(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// Point `replica` of the backend whose address hashes to `address_hash`.
// Depends on the address only, so a backend's points do not move when other
// backends come or go.
uint64_t point_hash(uint64_t address_hash, uint64_t replica) {
  return avalanche(address_hash + (replica + 1) * 0x9e3779b97f4a7c15ULL);
}

}  // namespace

bool ExcludeSet::add(uint32_t index) {
  if (contains(index)) return true;
  if (size_ == capacity) return false;
  indices_[size_++] = index;
  return true;
}

bool ExcludeSet::contains(uint32_t index) const {
  return std::find(indices_.begin(), indices_.begin() + size_, index) != indices_.begin() + size_;
}

BackendPool::BackendPool(PoolSettings settings) { set_settings(settings); }

void BackendPool::set_settings(const PoolSettings& settings) {
  // The ramp computes weight * 1000 * elapsed (below 2^18 * slow_start_ms)
  // and the affinity bound factor * total * 1000 * weight in 128 bits.
  if (settings.health.fall == 0 || settings.health.rise == 0 ||
      settings.affinity_load_factor_percent < 100 || settings.affinity_load_factor_percent > 100000 ||
      settings.health.slow_start_ms > max_slow_start_ms) {
    std::abort();  // the configuration validates these ranges
  }
  settings_ = settings;
  recount_ring();  // the slow start's end may have moved
}

Backend& BackendPool::at(uint32_t index) {
  if (index >= backends_.size()) std::abort();  // indices come from this pool
  return backends_[index];
}

std::expected<void, ApplyError> BackendPool::apply(std::span<const BackendSpec> specs) {
  std::unordered_set<std::string_view> seen;
  for (const BackendSpec& spec : specs) {
    if (spec.address.empty()) return std::unexpected(ApplyError::empty_address);
    if (spec.weight == 0 || spec.weight > max_backend_weight) return std::unexpected(ApplyError::bad_weight);
    if (!seen.insert(spec.address).second) return std::unexpected(ApplyError::duplicate_address);
  }

  std::vector<bool> listed(backends_.size(), false);
  for (const BackendSpec& spec : specs) {
    uint32_t index;
    if (auto found = find(spec.address)) {
      index = *found;
      Backend& b = backends_[index];
      if (b.removed) {
        b.removed = false;
        b.health = HealthState::up;
        b.consecutive_successes = b.consecutive_failures = 0;
        b.up_since_ms.reset();
      }
      listed[index] = true;
    } else {
      index = static_cast<uint32_t>(backends_.size());
      backends_.emplace_back().address = spec.address;
      by_address_.emplace(spec.address, index);
      listed.push_back(true);
    }
    Backend& b = backends_[index];
    b.weight = spec.weight;
    b.max_connections = spec.max_connections;
    b.drained = spec.drained;
  }
  for (size_t i = 0; i < backends_.size(); ++i) {
    if (!listed[i]) backends_[i].removed = true;
  }
  visit_mark_.assign(backends_.size(), 0);
  visit_epoch_ = 0;
  rebuild_all_points();
  return {};
}

std::optional<uint32_t> BackendPool::find(std::string_view address) const {
  const auto it = by_address_.find(address);
  if (it == by_address_.end()) return std::nullopt;
  return it->second;
}

void BackendPool::rebuild_all_points() {
  uint64_t weight_sum = 0;
  for (const Backend& b : backends_) weight_sum += b.removed ? 0 : b.weight;
  all_points_.clear();
  for (uint32_t i = 0; i < backends_.size(); ++i) {
    const Backend& b = backends_[i];
    if (b.removed) continue;
    const uint64_t points = weight_sum * points_per_weight <= max_ring_points
                                ? b.weight * points_per_weight
                                : std::max<uint64_t>(1, b.weight * max_ring_points / weight_sum);
    const uint64_t address_hash = hash_key(b.address);
    for (uint64_t r = 0; r < points; ++r) all_points_.push_back({point_hash(address_hash, r), i});
  }
  std::sort(all_points_.begin(), all_points_.end(), [](const RingPoint& a, const RingPoint& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.index < b.index;
  });
  all_points_.shrink_to_fit();
  ring_.clear();
  ring_.reserve(all_points_.size());
  rebuild_ring();
}

void BackendPool::rebuild_ring() {
  // Within the capacity apply() reserved: no allocation.
  ring_.clear();
  for (const RingPoint& p : all_points_) {
    if (on_ring(backends_[p.index])) ring_.push_back(p);
  }
  recount_ring();
}

void BackendPool::recount_ring() {
  ring_backends_ = 0;
  ring_active_ = ring_weight_ = ring_ramp_end_ms_ = 0;
  for (const Backend& b : backends_) {
    if (!on_ring(b)) continue;
    ++ring_backends_;
    ring_active_ += b.active;
    ring_weight_ += uint64_t{b.weight} * 1000;
    if (b.up_since_ms && settings_.health.slow_start_ms != 0) {
      ring_ramp_end_ms_ = std::max(ring_ramp_end_ms_, *b.up_since_ms + settings_.health.slow_start_ms);
    }
  }
}

HealthTransition BackendPool::go(Backend& b, HealthState state, uint64_t now_ms) {
  b.consecutive_successes = b.consecutive_failures = 0;
  if (b.health == state) return HealthTransition::none;
  b.health = state;
  b.last_change_ms = now_ms;
  if (state == HealthState::up) {
    b.up_since_ms = now_ms;
  } else {
    b.up_since_ms.reset();
  }
  rebuild_ring();
  return state == HealthState::up ? HealthTransition::went_up : HealthTransition::went_down;
}

HealthTransition BackendPool::record_check(uint32_t index, bool ok, uint64_t now_ms) {
  Backend& b = at(index);
  if (ok) {
    b.consecutive_failures = 0;
    ++b.consecutive_successes;
    if (b.health == HealthState::down && b.consecutive_successes >= settings_.health.rise) {
      return go(b, HealthState::up, now_ms);
    }
  } else {
    b.consecutive_successes = 0;
    ++b.consecutive_failures;
    if (b.health == HealthState::up && b.consecutive_failures >= settings_.health.fall) {
      return go(b, HealthState::down, now_ms);
    }
  }
  return HealthTransition::none;
}

HealthTransition BackendPool::eject(uint32_t index, uint64_t now_ms) {
  Backend& b = at(index);
  const uint32_t failures = b.consecutive_failures;
  const HealthTransition t = go(b, HealthState::down, now_ms);
  b.consecutive_failures = failures;  // the checks' own streak is theirs
  return t;
}

HealthTransition BackendPool::set_health(uint32_t index, bool up, uint64_t now_ms) {
  return go(at(index), up ? HealthState::up : HealthState::down, now_ms);
}

void BackendPool::set_drained(uint32_t index, bool drained) {
  Backend& b = at(index);
  if (b.drained == drained) return;
  b.drained = drained;
  rebuild_ring();
}

uint64_t BackendPool::effective_weight(uint32_t index, uint64_t now_ms) const {
  if (index >= backends_.size()) std::abort();
  return weight_now(backends_[index], now_ms);
}

uint64_t BackendPool::weight_now(const Backend& b, uint64_t now_ms) const {
  const uint64_t full = uint64_t{b.weight} * 1000;
  const uint64_t ramp = settings_.health.slow_start_ms;
  if (!b.up_since_ms || ramp == 0) return full;
  const uint64_t elapsed = now_ms > *b.up_since_ms ? now_ms - *b.up_since_ms : 0;
  if (elapsed >= ramp) return full;
  return std::max(uint64_t{b.weight} * min_ramp_permille, full * elapsed / ramp);
}

bool BackendPool::eligible(uint32_t index, const ExcludeSet& exclude, GlobalActive global_active) const {
  const Backend& b = backends_[index];
  if (!on_ring(b) || exclude.contains(index)) return false;
  if (b.max_connections == 0) return true;
  const uint32_t process_wide = index < global_active.size() ? std::max(b.active, global_active[index]) : b.active;
  return process_wide < b.max_connections;
}

std::optional<uint32_t> BackendPool::pick_least_connections(uint64_t now_ms, const ExcludeSet& exclude,
                                                            GlobalActive global_active) {
  const uint32_t n = static_cast<uint32_t>(backends_.size());
  std::optional<uint32_t> best;
  uint64_t best_load = 0, best_weight = 1;  // best's (active + 1) and weight
  for (uint32_t k = 0; k < n; ++k) {
    uint32_t i = next_start_ + k;
    if (i >= n) i -= n;
    if (!eligible(i, exclude, global_active)) continue;
    const uint64_t load = uint64_t{backends_[i].active} + 1, weight = weight_now(backends_[i], now_ms);
    // load / weight < best_load / best_weight, exactly (both products < 2^51).
    if (!best || load * best_weight < best_load * weight) {
      best = i;
      best_load = load;
      best_weight = weight;
    }
  }
  if (best) next_start_ = *best + 1 < n ? *best + 1 : 0;
  return best;
}

std::optional<uint32_t> BackendPool::pick_by_key(uint64_t key_hash, uint64_t now_ms, const ExcludeSet& exclude,
                                                 GlobalActive global_active) {
  if (ring_.empty()) return std::nullopt;
  const uint64_t total_active = ring_active_;
  uint64_t weight_sum = ring_weight_;
  if (now_ms < ring_ramp_end_ms_) {
    weight_sum = 0;
    for (const Backend& b : backends_) weight_sum += on_ring(b) ? weight_now(b, now_ms) : 0;
  }
  // factor * (total + 1) / 100, to be scaled by w / W per backend. The
  // comparison below is in 128 bits: factor < 2^17, total and active < 2^40
  // in any real process, w < 2^18, W < 2^18 per backend.
  using Wide = unsigned __int128;
  const Wide scaled_demand = Wide{settings_.affinity_load_factor_percent} * (total_active + 1);

  if (++visit_epoch_ == 0) {
    std::fill(visit_mark_.begin(), visit_mark_.end(), 0);
    visit_epoch_ = 1;
  }
  const auto start = std::lower_bound(ring_.begin(), ring_.end(), key_hash,
                                      [](const RingPoint& p, uint64_t h) { return p.hash < h; });
  size_t at = static_cast<size_t>(start - ring_.begin());
  std::optional<uint32_t> first_eligible;
  uint32_t seen = 0;
  for (size_t step = 0; step < ring_.size() && seen < ring_backends_; ++step, ++at) {
    if (at == ring_.size()) at = 0;
    const uint32_t i = ring_[at].index;
    if (visit_mark_[i] == visit_epoch_) continue;
    visit_mark_[i] = visit_epoch_;
    ++seen;
    if (!eligible(i, exclude, global_active)) continue;
    if (!first_eligible) first_eligible = i;
    // active < ceil(demand * w / (100 * W))  <=>  active * 100 * W < demand * w
    const uint64_t w = weight_now(backends_[i], now_ms);
    if (Wide{backends_[i].active} * 100 * weight_sum < scaled_demand * w) return i;
  }
  return first_eligible;
}

uint64_t BackendPool::hash_key(std::string_view key) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a offset basis and prime
  for (const char c : key) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return avalanche(h);
}

void BackendPool::on_tunnel_opened(uint32_t index) {
  Backend& b = at(index);
  ++b.active;
  ++b.tunnels_total;
  if (on_ring(b)) ++ring_active_;
}

void BackendPool::on_tunnel_closed(uint32_t index) {
  Backend& b = at(index);
  if (b.active == 0) std::abort();  // closed more often than opened
  --b.active;
  if (on_ring(b)) --ring_active_;
}

void BackendPool::on_connect_failed(uint32_t index) { ++at(index).connect_failures; }

bool BackendPool::any_up() const {
  return std::any_of(backends_.begin(), backends_.end(), [this](const Backend& b) { return on_ring(b); });
}

}  // namespace mf::ingress
