#include "invoker/functions/function_catalog.hpp"

#include <cerrno>
#include <filesystem>

#include "invoker/functions/failure.hpp"
#include "invoker/instances/instance_network.hpp"
#include "invoker/instances/instance_snapshots.hpp"
#include "invoker/observability/log.hpp"
#include "thaw/error.hpp"

namespace thaw::invoker {

namespace {

[[noreturn]] void not_found(const std::string& name) {
  throw_not_found("Function not found: " + function_arn(name));
}

}  // namespace

FunctionCatalog::FunctionCatalog(const HostEnvironment& host, IdPoolConfig pool)
    : host_(host),
      pool_(pool),
      code_(host.state_dir + "/code"),
      registry_(host.state_dir + "/thaw.db") {
  // thawd holds the state directory's lock: nothing else is unpacking.
  code_.discard_unfinished();
  for (auto r : registry_.list()) {
    // Recorded before functions had host ids of their own, or from a pool the
    // operator has since moved (which /etc was not checked against).
    if (!is_range_base(pool_, r.config.host_id_base)) {
      assign_id_range(r);
      registry_.put(r);
    }
    remember(r);
  }
}

void FunctionCatalog::assign_id_range(FunctionRecord& r) {
  std::set<uint32_t> in_use;
  for (const auto& other : registry_.list())
    if (other.config.name != r.config.name && is_range_base(pool_, other.config.host_id_base))
      in_use.insert(other.config.host_id_base);
  const auto picked = pick_range(pool_, registry_.id_cursor(), in_use);
  if (!picked)
    throw Failure(FailureKind::Internal,
                  "thawd has no host id range left for another function: all " +
                      std::to_string(pool_.ranges) + " are taken (see thawd's --id-pool-ranges)");
  r.config.host_id_base = picked->base;
  registry_.set_id_cursor(picked->index + 1);
}

Deployed FunctionCatalog::save(const FunctionRecord& r) {
  registry_.put(r);
  return remember(r);
}

Deployed FunctionCatalog::remember(const FunctionRecord& r) {
  Deployed d{r, function_digest(r.config, r.code_sha256, fingerprint_of(host_, r.config.runtime),
                                effective_egress(host_, r.config).text())};
  std::unique_lock lock(catalog_mutex_);
  catalog_[r.config.name] = d;
  return d;
}

FunctionRecord FunctionCatalog::store_code(FunctionRecord r, const std::string& zip) {
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

void FunctionCatalog::deployed(const Deployed& d) const {
  if (listener_.deployed) listener_.deployed(d);
}

FunctionRecord FunctionCatalog::create(CreateRequest request) {
  std::lock_guard lock(deploy_mutex_);
  if (lookup(request.record.config.name))
    throw Failure(FailureKind::Conflict, "Function already exist: " + request.record.config.name);
  auto r = store_code(std::move(request.record), request.zip);
  r.last_modified = lambda_timestamp_now();
  assign_id_range(r);
  deployed(save(r));
  log_event("info", "function_created", {{"function", r.config.name}, {"code", r.code_sha256}});
  return r;
}

FunctionRecord FunctionCatalog::update_code(const std::string& name, const std::string& zip) {
  std::lock_guard lock(deploy_mutex_);
  auto r = store_code(get(name), zip);
  r.last_modified = lambda_timestamp_now();
  deployed(save(r));
  log_event("info", "function_code_updated", {{"function", name}, {"code", r.code_sha256}});
  return r;
}

FunctionRecord FunctionCatalog::update_configuration(const std::string& name, const Edit& edit) {
  std::lock_guard lock(deploy_mutex_);
  auto r = edit(get(name));
  r.last_modified = lambda_timestamp_now();
  deployed(save(r));
  log_event("info", "function_configuration_updated", {{"function", name}});
  return r;
}

FunctionRecord FunctionCatalog::update_settings(const std::string& name, const Edit& edit) {
  std::lock_guard lock(deploy_mutex_);
  auto r = edit(get(name));
  save(r);
  return r;
}

void FunctionCatalog::remove(const std::string& name) {
  std::lock_guard lock(deploy_mutex_);
  if (!registry_.remove(name)) not_found(name);
  {
    std::unique_lock catalog_lock(catalog_mutex_);
    catalog_.erase(name);
  }
  if (listener_.removed) listener_.removed(name);
  // Its /etc files (instance_network.hpp); instances still running keep
  // what they have bound.
  std::error_code ec;
  std::filesystem::remove_all(host_.state_dir + "/etc/" + name, ec);
  log_event("info", "function_deleted", {{"function", name}});
}

std::optional<Deployed> FunctionCatalog::lookup(const std::string& name) const {
  std::shared_lock lock(catalog_mutex_);
  const auto it = catalog_.find(name);
  if (it == catalog_.end()) return std::nullopt;
  return it->second;
}

FunctionRecord FunctionCatalog::get(const std::string& name) const {
  auto d = lookup(name);
  if (!d) not_found(name);
  return d->record;
}

FunctionPage FunctionCatalog::list(const std::string& marker, size_t max_items) const {
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

std::vector<Deployed> FunctionCatalog::all() const {
  std::vector<Deployed> out;
  std::shared_lock lock(catalog_mutex_);
  for (const auto& [name, d] : catalog_) out.push_back(d);
  return out;
}

std::string FunctionCatalog::only_function(const std::string& name) const {
  std::shared_lock lock(catalog_mutex_);
  if (catalog_.count(name)) return name;
  if (catalog_.size() == 1) return catalog_.begin()->first;
  throw_not_found("The emulator's path invokes the only function deployed; thawd has " +
                  std::to_string(catalog_.size()));
}

std::optional<std::string> FunctionCatalog::code_dir(const std::string& code_sha256) const {
  const auto found = code_.find(code_sha256);
  if (!found) return std::nullopt;
  return found->dir;
}

int FunctionCatalog::discard_unused_code() {
  std::set<std::string> used;
  for (const auto& d : all()) used.insert(d.record.code_sha256);
  return code_.discard_unused(used);
}

}  // namespace thaw::invoker
