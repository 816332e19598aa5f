#pragma once
// Who may run and on what: concurrency slots (a host-wide limit and per-function
// reserved concurrency, as Lambda counts them), idle instances kept for reuse,
// a memory budget for all live instances, and the keep-alive reaper that scales
// idle functions to zero. Requests over a limit are refused at once (429),
// never queued. No lock is held while an instance starts, runs or dies.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "invoker/instances/function_instance.hpp"

namespace thaw::invoker {

struct SchedulerLimits {
  unsigned max_concurrency = 32;  // invocations running at once on this host
  uint64_t memory_budget_mb = 0;  // sum of live instances' MemorySize; 0: no budget
  std::chrono::milliseconds keep_alive{std::chrono::minutes(10)};
};

// Lambda's throttle reasons.
inline constexpr const char* kReservedLimitExceeded =
    "ReservedFunctionConcurrentInvocationLimitExceeded";
inline constexpr const char* kConcurrentLimitExceeded = "ConcurrentInvocationLimitExceeded";
inline constexpr const char* kMemoryBudgetExceeded = "HostMemoryBudgetExceeded";

// One live instance as /thaw/v1/instances shows it.
struct InstanceView {
  std::string id;
  std::string function;
  std::string state;                       // "Busy" or "Idle"
  StartMode start_mode = StartMode::Cold;  // how it came to be: cold or restored
  uint32_t memory_mb = 0;
  std::chrono::system_clock::time_point started;
  std::chrono::system_clock::time_point last_used;
};

class Scheduler;

// One admitted invocation: its concurrency slot, and the instance it runs on
// (an idle one, or a new one started under a memory reservation). Giving it
// back returns the instance to the pool when it can serve again.
class Lease {
 public:
  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&&) = delete;
  Lease(const Lease&) = delete;
  ~Lease();

  bool warm() const { return instance_ != nullptr && warm_; }
  FunctionInstance* instance() const { return instance_.get(); }
  // A new instance for this lease (after a cold start or a restore).
  void attach(std::unique_ptr<FunctionInstance> instance, StartMode start_mode);

 private:
  friend class Scheduler;
  Lease(Scheduler* s, std::string function, std::string digest, uint32_t memory_mb)
      : scheduler_(s),
        function_(std::move(function)),
        digest_(std::move(digest)),
        memory_mb_(memory_mb) {}
  Scheduler* scheduler_;
  std::string function_;
  std::string digest_;
  uint32_t memory_mb_;
  std::unique_ptr<FunctionInstance> instance_;
  StartMode start_mode_ = StartMode::Cold;
  std::chrono::system_clock::time_point started_;
  bool warm_ = false;
  bool memory_reserved_ = false;
  bool unreserved_slot_ = false;  // counted in the shared (unreserved) pool
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerLimits limits);
  ~Scheduler();  // stops the reaper; idle instances are killed
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // A slot for one invocation of `function` with an instance made from
  // `digest`: an idle one when there is one (unless `force_new`), else room
  // for a new one of `memory_mb`. Throws a Throttled Failure with Lambda's Reason
  // when a concurrency limit or the memory budget says no.
  Lease acquire(const std::string& function, const std::string& digest, uint32_t memory_mb,
                bool force_new = false);

  // Reserved concurrency (PutFunctionConcurrency): nullopt removes it.
  // Throws an InvalidParameter Failure when the reservations would exceed the host limit.
  void set_reserved(const std::string& function, std::optional<unsigned> reserved);
  std::optional<unsigned> reserved(const std::string& function) const;

  // The digest whose instances may serve `function` from now on (empty: the
  // function is gone). Idle instances of other digests die; busy ones die
  // when their invocation ends.
  void set_current_digest(const std::string& function, const std::string& digest);
  // Idle instances idle longer than the keep-alive die; returns how many.
  size_t reap_expired();

  std::vector<InstanceView> instances() const;
  size_t idle_count(const std::string& function) const;
  uint64_t memory_in_use_mb() const;
  unsigned in_flight() const;
  const SchedulerLimits& limits() const { return limits_; }
  // Called with the function's name whenever an instance ends, for metrics.
  void on_instance_end(std::function<void(const std::string&)> callback);

 private:
  friend class Lease;
  struct Idle {
    std::unique_ptr<FunctionInstance> instance;
    std::string digest;
    InstanceView view;
  };
  void give_back(Lease& lease);
  void reaper();
  // Moves the idle instances `evict` picks from `pool` to `doomed`, giving
  // back their memory; mutex_ held.
  void evict_locked(std::vector<Idle>& pool, const std::function<bool(const Idle&)>& evict,
                    std::vector<Idle>& doomed);
  // Ends instances taken out of the pools, without mutex_, and says so.
  void end_all(std::vector<Idle>& doomed);
  // acquire's steps, each with mutex_ held. admit: a concurrency slot (true
  // when it counts in the unreserved pool), or a Throttled Failure.
  bool admit_locked(const std::string& function);
  // The function's most recently used idle instance of `digest`, now busy.
  std::optional<Idle> take_idle_locked(const std::string& function, const std::string& digest);
  // Room for a new instance of `memory_mb` under the memory budget: least
  // recently used idle instances move to `doomed`, or a Throttled Failure.
  void reserve_memory_locked(const std::string& function, uint32_t memory_mb,
                             std::vector<Idle>& doomed);

  const SchedulerLimits limits_;
  mutable std::mutex mutex_;
  std::map<std::string, unsigned> in_flight_;  // by function
  unsigned in_flight_total_ = 0;
  unsigned in_flight_unreserved_ = 0;
  std::map<std::string, unsigned> reserved_;
  unsigned reserved_total_ = 0;
  std::map<std::string, std::string> current_digest_;
  std::map<std::string, std::vector<Idle>> idle_;  // newest last
  std::map<std::string, InstanceView> busy_;       // by instance id
  uint64_t memory_mb_ = 0;                         // live and reserved
  std::function<void(const std::string&)> instance_end_;
  bool stopping_ = false;
  std::condition_variable wake_;
  std::thread reaper_;
};

}  // namespace thaw::invoker
