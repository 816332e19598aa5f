#pragma once
// Pay-per-use metering: each invocation's Duration, Billed Duration and
// GB-seconds add up per function. Totals are kept in memory and written to
// the registry once a second in one transaction, so metering costs no fsync
// per invocation; a kill -9 loses at most the last second of totals.

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "invoker/functions/registry.hpp"

namespace thaw::invoker {

class UsageMeter {
 public:
  explicit UsageMeter(Registry& registry);
  ~UsageMeter();  // writes what is pending
  UsageMeter(const UsageMeter&) = delete;
  UsageMeter& operator=(const UsageMeter&) = delete;

  void invoked(const std::string& function, double duration_ms, uint64_t billed_ms,
               uint32_t memory_mb, bool error, uint64_t network_out_bytes = 0,
               uint64_t network_in_bytes = 0);
  void throttled(const std::string& function);
  void flush();
  // Written and pending totals together.
  std::map<std::string, UsageTotals> totals() const;

 private:
  Registry& registry_;
  // Held while a batch is on its way to the registry, so totals() never sees
  // it in neither place (it did: /thaw/v1/usage missed a function's first
  // invocations in a CI run). Taken before mutex_.
  mutable std::mutex flush_mutex_;
  mutable std::mutex mutex_;
  std::map<std::string, UsageTotals> pending_;
  bool stopping_ = false;
  std::condition_variable wake_;
  std::thread flusher_;
};

}  // namespace thaw::invoker
