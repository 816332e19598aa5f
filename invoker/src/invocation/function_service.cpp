#include "invoker/invocation/function_service.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "invoker/api/lambda/function_requests.hpp"
#include "invoker/instances/host_reclaim.hpp"
#include "invoker/instances/instance_snapshots.hpp"
#include "invoker/observability/function_logs.hpp"
#include "invoker/observability/log.hpp"
#include "invoker/observability/metrics.hpp"
#include "sandbox/cgroup_spares.hpp"
#include "thaw/unique_fd.hpp"

namespace thaw::invoker {

namespace {

[[noreturn]] void not_found(const std::string& name) {
  throw_not_found("Function not found: " + function_arn(name));
}

}  // namespace

FunctionService::FunctionService(ServiceOptions options)
    : options_(std::move(options)),
      host_(prepare_host_environment(
          options_.state_dir, options_.runtimes_dir, 4,
          std::chrono::duration_cast<std::chrono::milliseconds>(options_.limits.keep_alive))) {
  host_.cgroup_parent = options_.cgroup_parent;
  host_.max_output_bytes = options_.max_output_bytes;
  host_.criu_spares = options_.criu_spares;
  host_.egress = std::make_shared<sandbox::HostEgress>(options_.egress);
  if (!host_.egress->unavailable().empty())
    log_event("warn", "egress_unavailable", {{"reason", host_.egress->unavailable()}});
  // What a killed thawd left goes first, then the catalogue (which clears
  // half-unpacked code) loads.
  reclaim_host(host_);
  catalog_ = std::make_unique<FunctionCatalog>(host_, options_.id_pool);
  // Groups for the next starts, made ahead (a few: starts come in bursts).
  sandbox::keep_cgroup_spares(host_.cgroup_parent, 4);
  if (!options_.criu.empty()) {
    snapshots_ = std::make_unique<snapshots::SnapshotStore>(host_.state_dir + "/snapshots",
                                                            options_.snapshot_cache_dir);
    if (options_.warm_memory_bytes)
      host_.warm_memory = std::make_shared<snapshots::WarmMemory>(options_.warm_memory_bytes);
  }
  meter_ = std::make_unique<UsageMeter>(catalog_->registry());
  logs_ = std::make_unique<FunctionLogs>(host_.state_dir + "/logs", options_.log_cap_bytes);
  metrics_ = std::make_unique<Metrics>();
  factory_ = std::make_unique<InstanceFactory>(host_, snapshots_.get(), options_.criu,
                                               [](const std::string& line) {
                                                 log_event("info", "snapshot", {{"message", line}});
                                               });
  scheduler_ = std::make_unique<Scheduler>(options_.limits);
  for (const auto& d : catalog_->all()) {
    const auto& r = d.record;
    scheduler_->set_current_digest(r.config.name, d.digest);
    if (r.reserved_concurrency) {
      try {
        scheduler_->set_reserved(r.config.name, r.reserved_concurrency);
      } catch (const Failure& e) {
        // A smaller --max-concurrency than before: the function keeps running unreserved.
        log_event("warn", "reserved_concurrency_dropped",
                  {{"function", r.config.name}, {"reason", e.what()}});
      }
    }
  }
  catalog_->listen({[this](const Deployed& d) { deployed(d); },
                    [this](const std::string& name) { removed(name); }});
  collect_snapshots();
  // Deletes and code updates leave packages behind while instances may run
  // from them; none runs now.
  if (const int removed = catalog_->discard_unused_code())
    log_event("info", "code_packages_collected", {{"removed", removed}});
}

FunctionService::~FunctionService() {
  catalog_->listen({});  // no change reaches what is going
  scheduler_.reset();    // kills idle instances, removes their cgroups
  factory_.reset();
  meter_.reset();
  sandbox::remove_cgroup_parent(host_.cgroup_parent);
}

void FunctionService::deployed(const Deployed& d) {
  const auto& r = d.record;
  scheduler_->set_current_digest(r.config.name, d.digest);
  collect_snapshots();
  // As SnapStart does at publish time: the snapshot is made now, in the background.
  if (const auto dir = catalog_->code_dir(r.code_sha256))
    factory_->snapshot_in_background(r.config, *dir, r.code_sha256);
}

void FunctionService::removed(const std::string& name) {
  scheduler_->set_current_digest(name, "");
  scheduler_->set_reserved(name, std::nullopt);
  logs_->remove(name);
  metrics_->remove_label_value("function", name);
  collect_snapshots();
}

void FunctionService::set_concurrency(const std::string& name, std::optional<unsigned> reserved) {
  catalog_->update_settings(name, [&](FunctionRecord r) {
    // Refused (over the host's limit) before it is saved.
    scheduler_->set_reserved(name, reserved);
    r.reserved_concurrency = reserved;
    return r;
  });
}

void FunctionService::collect_snapshots() {
  if (!snapshots_) return;
  std::set<std::string> keep;
  for (const auto& d : catalog_->all()) keep.insert(d.digest);
  if (const int removed = snapshots_->collect_garbage(keep))
    log_event("info", "snapshots_collected", {{"removed", removed}});
  factory_->prune_spares();
}

InvokeResult FunctionService::invoke(const std::string& name, const std::string& payload,
                                     const InvokeOptions& options) {
  const auto function = catalog_->lookup(name);
  if (!function) not_found(name);
  const auto& record = function->record;
  if (!payload.empty() && nlohmann::json::parse(payload, nullptr, false).is_discarded())
    throw Failure(FailureKind::InvalidContent, "Could not parse request body into json");
  const auto& mode = options.force_mode;
  const auto& digest = function->digest;
  if (mode == StartMode::Restore && (!snapshots_ || !snapshots_->exists(digest)))
    throw Failure(FailureKind::Conflict,
                  "No snapshot of " + name + " to restore (yet): see GET /thaw/v1/snapshots");
  std::optional<Lease> lease;
  try {
    lease.emplace(scheduler_->acquire(name, digest, record.config.memory_mb,
                                      mode && mode != StartMode::Warm));
  } catch (const Failure& e) {
    if (e.kind == FailureKind::Throttled) {
      meter_->throttled(name);
      log_event("warn", "throttled", {{"function", name}, {"reason", e.reason}});
      metrics_
          ->counter("thaw_throttles_total", "Invocations refused with 429, by reason.",
                    {{"function", name}, {"reason", e.reason}})
          .inc();
    }
    throw;
  }
  if (mode == StartMode::Warm && !lease->warm())
    throw Failure(FailureKind::Conflict, "No idle instance of " + name + " for a warm start");

  InvokeResult result;
  uint64_t init_dropped = 0;  // output of the init phase over the cap
  if (!lease->warm()) {
    const auto dir = catalog_->code_dir(record.code_sha256);
    if (!dir)
      throw Failure(FailureKind::Internal,
                    "code package of " + name + " is missing from the store");
    auto started = factory_->start(record.config, *dir, record.code_sha256, mode);
    metrics_
        ->counter("thaw_instance_starts_total",
                  "Instances started, by how: cold, restore, or cold after a failed "
                  "restore (fallback).",
                  {{"function", name}, {"start_mode", started.start_label()}})
        .inc();
    if (!started.init.log.empty()) logs_->append(name, started.init.log);
    if (!started.fallback_reason.empty())
      log_event("warn", "restore_fallback",
                {{"function", name}, {"reason", started.fallback_reason}});
    if (started.mode == StartMode::Restore && started.instance) {
      const auto& p = started.instance->restore_phases();
      log_event("debug", "restore_phases",
                {{"function", name},
                 {"instance", started.instance->id()},
                 {"prepare_ms", p.prepare_ms},
                 {"criu_ms", p.criu_ms},
                 {"resume_ms", p.resume_ms},
                 {"criu_spare", p.criu_spare}});
    }
    if (!started.init.ok) {
      result.request_id = options.request_id.empty() ? new_request_id() : options.request_id;
      result.error = started.init.error;
      result.payload = result.error ? result.error->body : "";
      result.start_mode = started.mode;
      result.init_ms = started.init.init_ms;
      result.log = started.init.log;
      result.output_dropped_bytes = started.init.output_dropped_bytes;
      lease->attach(std::move(started.instance), started.mode);
      account(record, result);
      return result;
    }
    lease->attach(std::move(started.instance), started.mode);
    init_dropped = started.init.output_dropped_bytes;
  }
  result = lease->instance()->invoke({options.request_id, payload});
  result.output_dropped_bytes += init_dropped;
  account(record, result);
  return result;
}

void FunctionService::account(const FunctionRecord& record, const InvokeResult& result) {
  const auto& name = record.config.name;
  const bool error = result.error.has_value();
  meter_->invoked(name, result.duration_ms, result.billed_ms, record.config.memory_mb, error,
                  result.network_out_bytes, result.network_in_bytes);
  nlohmann::json line = {{"function", name},
                         {"request_id", result.request_id},
                         {"start_mode", to_string(result.start_mode)},
                         {"duration_ms", result.duration_ms},
                         {"billed_ms", result.billed_ms},
                         {"max_memory_used_mb", result.max_memory_used_mb},
                         {"outcome", error ? "error" : "success"}};
  if (error) line["error_type"] = result.error->type;
  if (result.network_out_bytes || result.network_in_bytes) {
    line["network_out_bytes"] = result.network_out_bytes;
    line["network_in_bytes"] = result.network_in_bytes;
    metrics_
        ->counter("thaw_network_sent_bytes_total",
                  "Bytes functions' instances sent over their egress links during invocations.",
                  {{"function", name}})
        .inc(result.network_out_bytes);
    metrics_
        ->counter("thaw_network_received_bytes_total",
                  "Bytes functions' instances received over their egress links during "
                  "invocations.",
                  {{"function", name}})
        .inc(result.network_in_bytes);
  }
  if (result.output_dropped_bytes) {
    line["output_dropped_bytes"] = result.output_dropped_bytes;
    metrics_
        ->counter("thaw_output_dropped_bytes_total",
                  "Bytes of functions' output dropped over the per-invocation limit.",
                  {{"function", name}})
        .inc(result.output_dropped_bytes);
  }
  log_event(error ? "warn" : "info", "invocation", std::move(line));
  if (!result.log.empty()) logs_->append(name, result.log);
  metrics_
      ->counter("thaw_invocations_total", "Invocations, by function, start mode and outcome.",
                {{"function", name},
                 {"start_mode", to_string(result.start_mode)},
                 {"outcome", error ? "error" : "success"}})
      .inc();
  double total_ms = result.duration_ms;
  if (result.init_ms) total_ms += *result.init_ms;
  if (result.restore_ms) total_ms += *result.restore_ms;
  metrics_
      ->histogram("thaw_invocation_duration_seconds",
                  "Time from scheduling to the function's answer, start included.",
                  {{"function", name}, {"start_mode", to_string(result.start_mode)}})
      .observe(total_ms / 1000.0);
}

std::vector<SnapshotListing> FunctionService::snapshots() const {
  std::vector<SnapshotListing> out;
  if (!snapshots_) return out;
  std::map<std::string, std::string> owner;  // digest -> function
  for (const auto& d : catalog_->all()) owner[d.digest] = d.record.config.name;
  for (auto& info : snapshots_->list()) {
    const auto it = owner.find(info.digest);
    out.push_back({it == owner.end() ? "" : it->second, std::move(info)});
  }
  return out;
}

bool FunctionService::snapshotted(const FunctionConfig& config) const {
  return factory_->snapshots_enabled() && config.snapshot == SnapshotPolicy::Auto &&
         snapshot_supported(config.runtime);
}

}  // namespace thaw::invoker
