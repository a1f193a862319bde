#pragma once
// A log-linear latency histogram (the HdrHistogram idea, written for this
// project): exact below 256 ns, then every power-of-two octave is split into
// 128 equal buckets, so a recorded value is known within 1/128 (< 0.8 %) of
// itself. Values are nanoseconds from 0 to max_trackable_ns (60 s); larger
// ones are counted in the last bucket and flagged as saturated. Fixed size
// (about 3,800 counters, 30 KiB), no allocation: one per shard, merged at the end.
//
// Bucket index of a value v (B = sub_bucket_bits = 7):
//   v < 2^(B+1):  index = v
//   otherwise:    h = floor(log2 v), shift = h - B, index = (shift + 1) * 2^B + (v >> shift) - 2^B
// so bucket `index` covers [lowest(index), lowest(index) + 2^shift).
#include <array>
#include <bit>
#include <cstdint>

namespace mf::perf {

inline constexpr uint32_t histogram_sub_bucket_bits = 7;
inline constexpr uint64_t histogram_sub_buckets = uint64_t{1} << histogram_sub_bucket_bits;

constexpr uint32_t histogram_bucket_index(uint64_t ns) {
  if (ns < 2 * histogram_sub_buckets) return static_cast<uint32_t>(ns);
  const uint32_t highest_bit = 63 - static_cast<uint32_t>(std::countl_zero(ns));
  const uint32_t shift = highest_bit - histogram_sub_bucket_bits;
  return static_cast<uint32_t>((shift + 1) * histogram_sub_buckets + (ns >> shift) - histogram_sub_buckets);
}

class LatencyHistogram {
 public:
  static constexpr uint32_t sub_bucket_bits = histogram_sub_bucket_bits;
  static constexpr uint64_t sub_buckets = histogram_sub_buckets;
  static constexpr uint64_t max_trackable_ns = 60'000'000'000;  // 60 s
  static constexpr uint32_t bucket_count = histogram_bucket_index(max_trackable_ns) + 1;

  static constexpr uint32_t bucket_index(uint64_t ns) { return histogram_bucket_index(ns); }
  // Smallest value that falls in bucket `index`.
  static constexpr uint64_t bucket_lowest(uint32_t index) {
    if (index < 2 * sub_buckets) return index;
    const uint32_t shift = index / sub_buckets - 1;
    return (index % sub_buckets + sub_buckets) << shift;
  }
  // Largest value that falls in bucket `index`.
  static constexpr uint64_t bucket_highest(uint32_t index) {
    if (index < 2 * sub_buckets) return index;
    const uint32_t shift = index / sub_buckets - 1;
    return bucket_lowest(index) + (uint64_t{1} << shift) - 1;
  }

  void record(uint64_t ns) {
    if (ns > max_trackable_ns) {
      ns = max_trackable_ns;
      ++saturated_;
    }
    ++counts_[bucket_index(ns)];
    ++count_;
    sum_ += ns;
    if (ns < min_) min_ = ns;
    if (ns > max_) max_ = ns;
  }

  // Adds `other`'s samples to this one (shards merge at the end of a run).
  void merge(const LatencyHistogram& other);
  void reset() { *this = LatencyHistogram{}; }

  uint64_t count() const { return count_; }
  uint64_t saturated() const { return saturated_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }  // exact
  uint64_t mean() const { return count_ == 0 ? 0 : sum_ / count_; }

  // The value at or below which `percent` % of the samples lie (nearest
  // rank): the upper end of the bucket holding that rank, clamped to the
  // exact min and max, so it never understates and errs by < 0.8 %.
  // 0 when empty; percent is clamped to [0, 100].
  uint64_t percentile(double percent) const;

 private:
  std::array<uint64_t, bucket_count> counts_{};
  uint64_t count_ = 0;
  uint64_t saturated_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace mf::perf
