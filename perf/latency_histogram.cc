#include "perf/latency_histogram.h"

#include <cmath>

namespace mf::perf {

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (uint32_t i = 0; i < bucket_count; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  saturated_ += other.saturated_;
  sum_ += other.sum_;
  if (other.count_ != 0) {
    if (other.min_ < min_) min_ = other.min_;
    if (other.max_ > max_) max_ = other.max_;
  }
}

uint64_t LatencyHistogram::percentile(double percent) const {
  if (count_ == 0) return 0;
  if (!(percent > 0)) percent = 0;  // also maps NaN to 0
  if (percent > 100) percent = 100;
  uint64_t rank = static_cast<uint64_t>(std::ceil(percent / 100.0 * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  if (rank > count_) rank = count_;
  uint64_t seen = 0;
  for (uint32_t i = 0; i < bucket_count; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      uint64_t value = bucket_highest(i);
      if (value > max_) value = max_;
      if (value < min_) value = min_;
      return value;
    }
  }
  return max_;
}

}  // namespace mf::perf
