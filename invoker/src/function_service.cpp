#include "invoker/function_service.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "invoker/function_logs.hpp"
#include "invoker/function_requests.hpp"
#include "invoker/instance_snapshots.hpp"
#include "invoker/log.hpp"
#include "invoker/metrics.hpp"
#include "sandbox/cgroup_spares.hpp"
#include "sandbox/unique_fd.hpp"

namespace thaw::invoker {

namespace {

[[noreturn]] void not_found(const std::string& name) {
  throw_not_found("Function not found: " + function_arn(name));
}

std::string digest_of(const FunctionRecord& r, const HostEnvironment& host) {
  return function_digest(r.config, r.code_sha256, fingerprint_of(host, r.config.runtime));
}

// The restores a killed thawd of this state directory left running: one
// that finished after the orphans below were ended would leave a tree
// running that no thawd knows. Found by the cgroups they restore into (each
// state directory has a cgroup parent of its own), ended by pid. (A dump
// left running ends by itself when its tree is ended below.)
void end_leftover_criu(const HostEnvironment& host) {
  // "--cgroup-root CONTROLLER:/PARENT/INSTANCE": this parent exactly.
  const auto ours = [&](const std::string& value) {
    const auto colon = value.find(':');
    if (colon == std::string::npos) return false;
    const auto prefix = "/" + host.cgroup_parent + "/";
    const auto group = value.substr(colon + 1);
    return group.rfind(prefix, 0) == 0 && group.size() > prefix.size() &&
           group.find('/', prefix.size()) == std::string::npos;
  };
  std::vector<pid_t> ended;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "cmdline");
    std::vector<std::string> argv;
    for (std::string arg; std::getline(in, arg, '\0');) argv.push_back(arg);
    bool restores_here = false;
    for (size_t i = 0; i + 1 < argv.size(); ++i)
      restores_here = restores_here || (argv[i] == "--cgroup-root" && ours(argv[i + 1]));
    if (!restores_here || argv.size() < 2 || argv[1] != "restore") continue;
    // Through a pidfd taken before the command line is read again: a pid
    // reused meanwhile is not killed.
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    std::ifstream again(e.path() / "cmdline");
    std::string now((std::istreambuf_iterator<char>(again)), {});
    std::string before;
    for (const auto& a : argv) before += a + '\0';
    if (pidfd && now == before &&
        syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) == 0)
      ended.push_back(pid);
  }
  // Not our children: gone once /proc no longer has them.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (pid_t pid : ended) {
    while (std::filesystem::exists("/proc/" + std::to_string(pid)) &&
           std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    log_event("warn", "leftover_criu_ended", {{"pid", pid}});
  }
}

// A killed thawd of this state directory left these instances running (a busy
// one until its invocation ends): their groups are named like the instance
// directories it left, so they, and never another thawd's, are ended.
void end_orphan_instances(const HostEnvironment& host) {
  std::error_code ec;
  std::set<std::string> ids;
  for (const auto& e : std::filesystem::directory_iterator(host.state_dir + "/instances", ec)) {
    auto name = e.path().filename().string();
    for (const char* suffix : {"-tmp", "-restore", "-dump"}) {
      const std::string s = suffix;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0)
        name.resize(name.size() - s.size());
    }
    ids.insert(name);
  }
  for (const auto& id : ids)
    sandbox::end_group_processes(host.cgroup_parent, id, std::chrono::seconds(2));
  // Their directories (a /tmp's mount point, a dump's or restore's work
  // directory) were the killed thawd's: none of ours exists yet.
  for (const auto& e : std::filesystem::directory_iterator(host.state_dir + "/instances", ec)) {
    std::error_code removing;
    std::filesystem::remove_all(e.path(), removing);
    if (removing)
      log_event("warn", "orphan_instance_directory_kept",
                {{"path", e.path().string()}, {"reason", removing.message()}});
  }
}

}  // namespace

FunctionService::FunctionService(ServiceOptions options)
    : options_(std::move(options)),
      host_(prepare_host_environment(
          options_.state_dir, options_.runtimes_dir, 4,
          std::chrono::duration_cast<std::chrono::milliseconds>(options_.limits.keep_alive))),
      code_(host_.state_dir + "/code"),
      registry_(host_.state_dir + "/thaw.db") {
  host_.cgroup_parent = options_.cgroup_parent;
  host_.max_output_bytes = options_.max_output_bytes;
  // Instances, cgroups and half-unpacked code a killed thawd left behind go
  // first (thawd holds the state directory's lock: nothing else unpacks).
  end_leftover_criu(host_);
  end_orphan_instances(host_);
  code_.discard_unfinished();
  sandbox::reap_orphan_cgroups(host_.cgroup_parent);
  // Groups for the next starts, made ahead (a few: starts come in bursts).
  sandbox::keep_cgroup_spares(host_.cgroup_parent, 4);
  if (!options_.criu.empty()) {
    snapshots_ = std::make_unique<snapshots::SnapshotStore>(host_.state_dir + "/snapshots",
                                                            options_.snapshot_cache_dir);
    if (options_.warm_memory_bytes)
      host_.warm_memory = std::make_shared<snapshots::WarmMemory>(options_.warm_memory_bytes);
  }
  meter_ = std::make_unique<UsageMeter>(registry_);
  logs_ = std::make_unique<FunctionLogs>(host_.state_dir + "/logs", options_.log_cap_bytes);
  metrics_ = std::make_unique<Metrics>();
  factory_ = std::make_unique<InstanceFactory>(host_, snapshots_.get(), options_.criu,
                                               [](const std::string& line) {
                                                 log_event("info", "snapshot", {{"message", line}});
                                               });
  scheduler_ = std::make_unique<Scheduler>(options_.limits);
  for (auto r : registry_.list()) {
    // Recorded before functions had host ids of their own, or from a pool the
    // operator has since moved (which /etc was not checked against).
    if (!is_range_base(options_.id_pool, r.config.host_id_base)) {
      assign_id_range(r);
      registry_.put(r);
    }
    const auto digest = digest_of(r, host_);
    catalog_[r.config.name] = {r, digest};
    scheduler_->set_current_digest(r.config.name, digest);
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
  collect_snapshots();
  // Deletes and code updates leave packages behind while instances may run
  // from them; none runs now.
  std::set<std::string> used;
  for (const auto& [name, d] : catalog_) used.insert(d.record.code_sha256);
  if (const int removed = code_.discard_unused(used))
    log_event("info", "code_packages_collected", {{"removed", removed}});
}

FunctionService::~FunctionService() {
  scheduler_.reset();  // kills idle instances, removes their cgroups
  factory_.reset();
  meter_.reset();
  sandbox::remove_cgroup_parent(host_.cgroup_parent);
}

void FunctionService::assign_id_range(FunctionRecord& r) {
  std::set<uint32_t> in_use;
  for (const auto& other : registry_.list())
    if (other.config.name != r.config.name &&
        is_range_base(options_.id_pool, other.config.host_id_base))
      in_use.insert(other.config.host_id_base);
  const auto picked = pick_range(options_.id_pool, registry_.id_cursor(), in_use);
  if (!picked)
    throw Failure(FailureKind::Internal,
                  "thawd has no host id range left for another function: all " +
                      std::to_string(options_.id_pool.ranges) +
                      " are taken (see thawd's --id-pool-ranges)");
  r.config.host_id_base = picked->base;
  registry_.set_id_cursor(picked->index + 1);
}

void FunctionService::save(const FunctionRecord& r) {
  registry_.put(r);
  std::unique_lock lock(catalog_mutex_);
  catalog_[r.config.name] = {r, digest_of(r, host_)};
}

std::optional<FunctionService::Deployed> FunctionService::lookup(const std::string& name) const {
  std::shared_lock lock(catalog_mutex_);
  const auto it = catalog_.find(name);
  if (it == catalog_.end()) return std::nullopt;
  return it->second;
}

FunctionRecord FunctionService::store_code(FunctionRecord r, const std::string& zip) {
  images::StoredPackage stored;
  try {
    stored = code_.add_archive(zip);
  } catch (const Error& e) {
    // The host's disk, not the package: Lambda's error for code storage that is full.
    if (e.error_number() == ENOSPC || e.error_number() == EDQUOT)
      throw Failure(FailureKind::StorageFull,
                    std::string("thawd's code storage is full: ") + e.what());
    throw Failure(FailureKind::InvalidParameter, std::string("Code.ZipFile: ") + e.what());
  }
  r.code_sha256 = stored.sha256;
  r.code_size = zip.size();
  return r;
}

void FunctionService::deployed(const FunctionRecord& r) {
  scheduler_->set_current_digest(r.config.name, lookup(r.config.name)->digest);
  collect_snapshots();
  // As SnapStart does at publish time: the snapshot is made now, in the background.
  if (const auto dir = code_.find(r.code_sha256))
    factory_->snapshot_in_background(r.config, dir->dir, r.code_sha256);
}

FunctionRecord FunctionService::create(const nlohmann::json& body) {
  auto req = parse_create_function(body);
  std::lock_guard lock(deploy_mutex_);
  if (lookup(req.record.config.name))
    throw Failure(FailureKind::Conflict, "Function already exist: " + req.record.config.name);
  auto r = store_code(std::move(req.record), req.zip);
  r.last_modified = lambda_timestamp_now();
  assign_id_range(r);
  save(r);
  deployed(r);
  log_event("info", "function_created", {{"function", r.config.name}, {"code", r.code_sha256}});
  return r;
}

FunctionRecord FunctionService::update_code(const std::string& name, const nlohmann::json& body) {
  const auto zip = parse_update_code(body);
  std::lock_guard lock(deploy_mutex_);
  auto r = store_code(get(name), zip);
  r.last_modified = lambda_timestamp_now();
  save(r);
  deployed(r);
  log_event("info", "function_code_updated", {{"function", name}, {"code", r.code_sha256}});
  return r;
}

FunctionRecord FunctionService::update_configuration(const std::string& name,
                                                     const nlohmann::json& body) {
  std::lock_guard lock(deploy_mutex_);
  auto r = parse_update_configuration(body, get(name));
  r.last_modified = lambda_timestamp_now();
  save(r);
  deployed(r);
  log_event("info", "function_configuration_updated", {{"function", name}});
  return r;
}

FunctionRecord FunctionService::set_event_invoke_config(const std::string& name,
                                                        const nlohmann::json& body) {
  std::lock_guard lock(deploy_mutex_);
  auto r = parse_event_invoke_config(body, get(name));
  save(r);
  return r;
}

void FunctionService::set_concurrency(const std::string& name, std::optional<unsigned> reserved) {
  std::lock_guard lock(deploy_mutex_);
  auto r = get(name);
  scheduler_->set_reserved(name, reserved);
  r.reserved_concurrency = reserved;
  save(r);
}

FunctionRecord FunctionService::get(const std::string& name) const {
  auto d = lookup(name);
  if (!d) not_found(name);
  return d->record;
}

FunctionPage FunctionService::list(const std::string& marker, size_t max_items) const {
  // The marker is the last name of the previous page: stable while functions
  // come and go, as Lambda's opaque markers are.
  FunctionPage page;
  std::shared_lock lock(catalog_mutex_);
  for (const auto& [name, d] : catalog_) {
    const auto& r = d.record;
    if (!marker.empty() && r.config.name <= marker) continue;
    if (page.functions.size() == max_items) {
      page.next_marker = page.functions.back().config.name;
      break;
    }
    page.functions.push_back(r);
  }
  return page;
}

std::string FunctionService::only_function(const std::string& name) const {
  std::shared_lock lock(catalog_mutex_);
  if (catalog_.count(name)) return name;
  if (catalog_.size() == 1) return catalog_.begin()->first;
  throw_not_found("The emulator's path invokes the only function deployed; thawd has " +
                  std::to_string(catalog_.size()));
}

void FunctionService::remove(const std::string& name) {
  std::lock_guard lock(deploy_mutex_);
  if (!registry_.remove(name)) not_found(name);
  {
    std::unique_lock catalog_lock(catalog_mutex_);
    catalog_.erase(name);
  }
  scheduler_->set_current_digest(name, "");
  scheduler_->set_reserved(name, std::nullopt);
  logs_->remove(name);
  metrics_->remove_label_value("function", name);
  collect_snapshots();
  log_event("info", "function_deleted", {{"function", name}});
}

void FunctionService::collect_snapshots() {
  if (!snapshots_) return;
  std::set<std::string> keep;
  {
    std::shared_lock lock(catalog_mutex_);
    for (const auto& [name, d] : catalog_) keep.insert(d.digest);
  }
  if (const int removed = snapshots_->collect_garbage(keep))
    log_event("info", "snapshots_collected", {{"removed", removed}});
  factory_->prune_spares();
}

InvokeResult FunctionService::invoke(const std::string& name, const std::string& payload,
                                     const InvokeOptions& options) {
  const auto deployed = lookup(name);
  if (!deployed) not_found(name);
  const auto& record = deployed->record;
  if (!payload.empty() && nlohmann::json::parse(payload, nullptr, false).is_discarded())
    throw Failure(FailureKind::InvalidContent, "Could not parse request body into json");
  const auto& mode = options.force_mode;
  const auto& digest = deployed->digest;
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
    const auto dir = code_.find(record.code_sha256);
    if (!dir)
      throw Failure(FailureKind::Internal,
                    "code package of " + name + " is missing from the store");
    auto started = factory_->start(record.config, dir->dir, record.code_sha256, mode);
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
  meter_->invoked(name, result.duration_ms, result.billed_ms, record.config.memory_mb, error);
  nlohmann::json line = {{"function", name},
                         {"request_id", result.request_id},
                         {"start_mode", to_string(result.start_mode)},
                         {"duration_ms", result.duration_ms},
                         {"billed_ms", result.billed_ms},
                         {"max_memory_used_mb", result.max_memory_used_mb},
                         {"outcome", error ? "error" : "success"}};
  if (error) line["error_type"] = result.error->type;
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
  {
    std::shared_lock lock(catalog_mutex_);
    for (const auto& [name, d] : catalog_) owner[d.digest] = name;
  }
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
