#include "invoker/invocation/usage_meter.hpp"

#include "invoker/observability/log.hpp"

namespace thaw::invoker {

UsageMeter::UsageMeter(Registry& registry) : registry_(registry) {
  flusher_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      wake_.wait_for(lock, std::chrono::seconds(1));
      lock.unlock();
      flush();
      lock.lock();
    }
  });
}

UsageMeter::~UsageMeter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  flusher_.join();
  flush();
}

void UsageMeter::invoked(const std::string& function, double duration_ms, uint64_t billed_ms,
                         uint32_t memory_mb, bool error, uint64_t network_out_bytes,
                         uint64_t network_in_bytes) {
  std::lock_guard lock(mutex_);
  auto& t = pending_[function];
  ++t.invocations;
  if (error) ++t.errors;
  t.duration_ms += duration_ms;
  t.billed_ms += billed_ms;
  t.gb_seconds += static_cast<double>(billed_ms) / 1000.0 * memory_mb / 1024.0;
  t.network_out_bytes += network_out_bytes;
  t.network_in_bytes += network_in_bytes;
}

void UsageMeter::throttled(const std::string& function) {
  std::lock_guard lock(mutex_);
  ++pending_[function].throttles;
}

void UsageMeter::flush() {
  std::lock_guard flushing(flush_mutex_);
  std::map<std::string, UsageTotals> batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(pending_);
  }
  if (batch.empty()) return;
  try {
    registry_.add_usage(batch);
  } catch (const std::exception& e) {
    // Kept for the next flush rather than lost.
    log_event("error", "usage_flush_failed", {{"reason", e.what()}});
    std::lock_guard lock(mutex_);
    for (const auto& [name, d] : batch) pending_[name] += d;
  }
}

std::map<std::string, UsageTotals> UsageMeter::totals() const {
  std::lock_guard flushing(flush_mutex_);
  auto out = registry_.usage();
  std::lock_guard lock(mutex_);
  for (const auto& [name, d] : pending_) out[name] += d;
  return out;
}

}  // namespace thaw::invoker
