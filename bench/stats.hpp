#pragma once
// Small helpers the benchmarks share: percentiles and elapsed milliseconds.

#include <algorithm>
#include <chrono>
#include <vector>

namespace thaw::bench {

using Clock = std::chrono::steady_clock;

// The p-th percentile (0..100) of `v`, 0 when empty.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())))];
}

inline double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace thaw::bench
