#pragma once
// The engine behind the API: deploys functions (code store + registry),
// schedules invocations on idle instances (warm), snapshots (restore) or new
// instances (cold) under the scheduler's limits, meters them and keeps their
// logs. Requests become calls here; failures come back as a Failure, which
// each API answers in its own shape.

#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "images/code_package.hpp"
#include "invoker/failure.hpp"
#include "invoker/function_instance.hpp"
#include "invoker/id_pool.hpp"
#include "invoker/instance_factory.hpp"
#include "invoker/registry.hpp"
#include "invoker/scheduler.hpp"
#include "invoker/usage_meter.hpp"
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
  uint64_t warm_memory_bytes = 0;  // reserve freed before restores (warm_memory.hpp)
  std::string snapshot_cache_dir;  // memory-backed copies restores read; "": none
  IdPoolConfig id_pool;            // host ids for functions
};

struct InvokeOptions {
  std::string request_id;               // generated when empty
  std::optional<StartMode> force_mode;  // operators, for benchmarks
};

// One page of ListFunctions.
struct FunctionPage {
  std::vector<FunctionRecord> functions;
  std::string next_marker;  // empty on the last page
};

struct SnapshotListing {
  std::string function;
  snapshots::SnapshotInfo info;
};

class FunctionService {
 public:
  explicit FunctionService(ServiceOptions options);
  ~FunctionService();

  FunctionRecord create(const nlohmann::json& request);  // CreateFunction's body
  FunctionRecord update_code(const std::string& name, const nlohmann::json& request);
  FunctionRecord update_configuration(const std::string& name, const nlohmann::json& request);
  FunctionRecord get(const std::string& name) const;  // a NotFound Failure when absent
  FunctionPage list(const std::string& marker, size_t max_items) const;
  // `name` when it is deployed, else the one function deployed (the emulator's
  // single-function view); a NotFound Failure otherwise.
  std::string only_function(const std::string& name) const;
  void remove(const std::string& name);
  FunctionRecord set_event_invoke_config(const std::string& name, const nlohmann::json& request);

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
  // A deployed function with its digest, as served: the registry's rows are
  // read once at start-up and kept here, written through on every change.
  struct Deployed {
    FunctionRecord record;
    std::string digest;
  };
  void save(const FunctionRecord& record);
  // Gives the record a host id range nobody else has; deploy_mutex_ held.
  void assign_id_range(FunctionRecord& record);
  std::optional<Deployed> lookup(const std::string& name) const;
  FunctionRecord store_code(FunctionRecord record, const std::string& zip);
  void deployed(const FunctionRecord& record);  // new code or configuration is live
  void collect_snapshots();
  void account(const FunctionRecord& record, const InvokeResult& result);

  ServiceOptions options_;
  HostEnvironment host_;
  images::CodeStore code_;
  std::unique_ptr<snapshots::SnapshotStore> snapshots_;
  Registry registry_;
  std::unique_ptr<UsageMeter> meter_;
  std::unique_ptr<FunctionLogs> logs_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<InstanceFactory> factory_;
  std::unique_ptr<Scheduler> scheduler_;
  std::mutex deploy_mutex_;  // one change of the set of functions at a time
  mutable std::shared_mutex catalog_mutex_;
  std::map<std::string, Deployed> catalog_;
};

}  // namespace thaw::invoker
