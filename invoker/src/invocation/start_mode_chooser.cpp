#include "invoker/invocation/start_mode_chooser.hpp"

#include <algorithm>

namespace thaw::invoker {

namespace {

// A running average that follows change: the last eight samples weigh most.
void add(double& average, int& n, double sample) {
  n = std::min(n + 1, 8);
  average += (sample - average) / n;
}

}  // namespace

void StartModeChooser::record(const std::string& digest, bool restored, double ms) {
  std::lock_guard lock(mutex_);
  auto& a = by_digest_[digest];
  if (restored)
    add(a.restore_ms, a.restore_n, ms);
  else
    add(a.cold_ms, a.cold_n, ms);
}

bool StartModeChooser::prefer_restore(const std::string& digest) {
  std::lock_guard lock(mutex_);
  auto& a = by_digest_[digest];
  if (a.cold_n == 0 || a.restore_n < kRestoresToJudge || a.restore_ms <= a.cold_ms) return true;
  return ++a.cold_choices % kRecheckEvery == 0;
}

}  // namespace thaw::invoker
