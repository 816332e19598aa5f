#pragma once
// The invoke half, and what wires the halves: invocations are admitted and
// scheduled on idle instances (warm), snapshots (restore) or new instances
// (cold) under the scheduler's limits, metered, and their logs kept. The
// deploy half is the FunctionCatalog it owns; its changes reach instances and
// snapshots through the catalogue's listener. Failures come back as a
// Failure, which each API answers in its own shape.

#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "invoker/functions/failure.hpp"
#include "invoker/functions/function_catalog.hpp"
#include "invoker/functions/id_pool.hpp"
#include "invoker/functions/registry.hpp"
#include "invoker/instances/function_instance.hpp"
#include "invoker/instances/instance_factory.hpp"
#include "invoker/invocation/scheduler.hpp"
#include "invoker/invocation/usage_meter.hpp"
#include "sandbox/host_egress.hpp"
#include "snapshots/snapshot_store.hpp"

namespace thaw::invoker {

class FunctionLogs;
class Metrics;

struct ServiceOptions {
  std::string state_dir;
  std::string runtimes_dir;
  std::string criu;  // empty: snapshots off
  std::string cgroup_parent = "thaw";
  SchedulerLimits limits;
  uint64_t log_cap_bytes = 8ull << 20;                 // per function
  uint64_t max_output_bytes = kDefaultMaxOutputBytes;  // per invocation (HostEnvironment)
  unsigned criu_spares = 4;                            // (HostEnvironment)
  uint64_t warm_memory_bytes = 0;     // reserve freed before restores (warm_memory.hpp)
  std::string snapshot_cache_dir;     // memory-backed copies restores read; "": none
  IdPoolConfig id_pool;               // host ids for functions
  sandbox::HostEgressOptions egress;  // off unless a subnet is given
};

struct InvokeOptions {
  std::string request_id;               // generated when empty
  std::optional<StartMode> force_mode;  // operators, for benchmarks
};

struct SnapshotListing {
  std::string function;
  snapshots::SnapshotInfo info;
};

class FunctionService {
 public:
  explicit FunctionService(ServiceOptions options);
  ~FunctionService();

  FunctionCatalog& catalog() { return *catalog_; }
  const FunctionCatalog& catalog() const { return *catalog_; }

  InvokeResult invoke(const std::string& name, const std::string& payload,
                      const InvokeOptions& options = {});
  // Reserved concurrency: nullopt removes it.
  void set_concurrency(const std::string& name, std::optional<unsigned> reserved);

  std::vector<SnapshotListing> snapshots() const;
  std::vector<InstanceView> instances() const { return scheduler_->instances(); }
  std::map<std::string, UsageTotals> usage() const { return meter_->totals(); }
  FunctionLogs& logs() { return *logs_; }
  Metrics& metrics() { return *metrics_; }
  const Scheduler& scheduler() const { return *scheduler_; }

  // Whether instances of the function are checkpointed and restored here.
  bool snapshotted(const FunctionConfig& config) const;
  const InstanceFactory& factory() const { return *factory_; }
  const snapshots::WarmMemory* warm_memory() const { return host_.warm_memory.get(); }

 private:
  // The catalogue's listener: a function's new code or configuration is
  // live, or the function is gone.
  void deployed(const Deployed& d);
  void removed(const std::string& name);
  void collect_snapshots();
  void account(const FunctionRecord& record, const InvokeResult& result);

  ServiceOptions options_;
  HostEnvironment host_;
  std::unique_ptr<FunctionCatalog> catalog_;
  std::unique_ptr<snapshots::SnapshotStore> snapshots_;
  std::unique_ptr<UsageMeter> meter_;
  std::unique_ptr<FunctionLogs> logs_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<InstanceFactory> factory_;
  std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace thaw::invoker
