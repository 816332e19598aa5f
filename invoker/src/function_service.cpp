#include "invoker/function_service.hpp"

#include <boost/beast/core/detail/base64.hpp>
#include <set>

#include "invoker/instance_snapshots.hpp"
#include "invoker/log.hpp"

namespace thaw::invoker {

namespace {

namespace base64 = boost::beast::detail::base64;

[[noreturn]] void invalid(const std::string& message) {
  throw ApiError(400, "InvalidParameterValueException", message);
}

std::string decode_base64(const std::string& text) {
  // The decoder stops at the first character outside the alphabet: only
  // trailing '=' padding may be left over.
  std::string out(base64::decoded_size(text.size()), '\0');
  const auto [written, read] = base64::decode(out.data(), text.data(), text.size());
  if (text.find_first_not_of('=', read) != std::string::npos || text.size() - read > 2)
    invalid("Code.ZipFile: not valid base64");
  out.resize(written);
  return out;
}

// Lambda reports CodeSha256 as base64 of the raw digest.
std::string base64_of_hex(const std::string& hex) {
  std::string raw;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    raw += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  std::string out(base64::encoded_size(raw.size()), '\0');
  out.resize(base64::encode(out.data(), raw.data(), raw.size()));
  return out;
}

template <class T>
T field(const nlohmann::json& j, const char* name, T fallback) {
  if (!j.contains(name) || j[name].is_null()) return fallback;
  try {
    return j[name].get<T>();
  } catch (const nlohmann::json::exception&) {
    invalid(std::string(name) + ": wrong type");
  }
}

}  // namespace

FunctionService::FunctionService(const std::string& state_dir, const std::string& runtimes_dir,
                                 const std::string& criu, const std::string& cgroup_parent)
    : host_(prepare_host_environment(state_dir, runtimes_dir)),
      code_(host_.state_dir + "/code"),
      registry_(host_.state_dir + "/thaw.db") {
  host_.cgroup_parent = cgroup_parent;
  if (!criu.empty())
    snapshots_ = std::make_unique<snapshots::SnapshotStore>(host_.state_dir + "/snapshots");
  factory_ =
      std::make_unique<InstanceFactory>(host_, snapshots_.get(), criu, [](const std::string& line) {
        log_event("info", "snapshot", {{"message", line}});
      });
  sandbox::reap_orphan_cgroups(host_.cgroup_parent);
}

FunctionService::~FunctionService() {
  {
    std::lock_guard lock(mutex_);
    idle_.clear();  // kills and reaps idle instances, removes their cgroups
  }
  factory_.reset();
  sandbox::remove_cgroup_parent(host_.cgroup_parent);
}

FunctionRecord FunctionService::create(const nlohmann::json& req) {
  if (!req.is_object()) invalid("The request body must be a JSON object");
  FunctionRecord r;
  auto& c = r.config;
  c.name = field<std::string>(req, "FunctionName", "");
  c.runtime = field<std::string>(req, "Runtime", "");
  c.handler = field<std::string>(req, "Handler", "");
  c.memory_mb = field<uint32_t>(req, "MemorySize", 128);
  c.timeout_s = field<uint32_t>(req, "Timeout", 3);
  r.role = field<std::string>(req, "Role", "");
  if (req.contains("Environment")) {
    const auto env = req["Environment"];
    if (!env.is_object()) invalid("Environment: must be an object");
    c.environment = field<std::map<std::string, std::string>>(env, "Variables", {});
  }
  if (req.contains("EphemeralStorage"))
    c.ephemeral_storage_mb = field<uint32_t>(req["EphemeralStorage"], "Size", 512);
  if (req.contains("SnapStart"))
    c.snapshot = field<std::string>(req["SnapStart"], "ApplyOn", "PublishedVersions") == "None"
                     ? SnapshotPolicy::Off
                     : SnapshotPolicy::Auto;
  try {
    validate(c);
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    invalid(e.what());
  }
  if (!req.contains("Code") || !req["Code"].is_object() || !req["Code"].contains("ZipFile"))
    invalid("Code.ZipFile: required (a base64 zip)");
  const auto zip = decode_base64(field<std::string>(req["Code"], "ZipFile", ""));
  if (registry_.get(c.name))
    throw ApiError(409, "ResourceConflictException", "Function already exist: " + c.name);
  images::StoredPackage stored;
  try {
    stored = code_.add_archive(zip);
  } catch (const Error& e) {
    invalid(std::string("Code.ZipFile: ") + e.what());
  }
  r.code_sha256 = stored.sha256;
  r.code_size = zip.size();
  r.last_modified = lambda_timestamp_now();
  registry_.put(r);
  // As SnapStart does at publish time: the snapshot is made now, in the background.
  factory_->snapshot_in_background(c, stored.dir, stored.sha256);
  return r;
}

FunctionRecord FunctionService::get(const std::string& name) const {
  auto r = registry_.get(name);
  if (!r)
    throw ApiError(404, "ResourceNotFoundException", "Function not found: " + function_arn(name));
  return *r;
}

std::vector<FunctionRecord> FunctionService::list() const {
  return registry_.list();
}

void FunctionService::remove(const std::string& name) {
  if (!registry_.remove(name))
    throw ApiError(404, "ResourceNotFoundException", "Function not found: " + function_arn(name));
  {
    std::lock_guard lock(mutex_);
    idle_.erase(name);
  }
  if (snapshots_) {
    std::set<std::string> keep;
    for (const auto& r : registry_.list()) keep.insert(function_digest(r.config, r.code_sha256));
    snapshots_->collect_garbage(keep);
  }
}

InvokeResult FunctionService::invoke(const std::string& name, const std::string& payload) {
  const auto record = get(name);
  if (!payload.empty() && nlohmann::json::parse(payload, nullptr, false).is_discarded())
    throw ApiError(400, "InvalidRequestContentException", "Could not parse request body into json");
  std::unique_ptr<FunctionInstance> instance;
  {
    std::lock_guard lock(mutex_);
    auto& idle = idle_[name];
    if (!idle.empty()) {
      instance = std::move(idle.back());
      idle.pop_back();
    }
  }
  if (!instance) {
    const auto dir = code_.find(record.code_sha256);
    if (!dir)
      throw ApiError(500, "ServiceException",
                     "code package of " + name + " is missing from the store");
    auto started = factory_->start(record.config, dir->dir, record.code_sha256);
    if (!started.init.ok) {
      InvokeResult r;
      r.request_id = new_request_id();
      r.error = started.init.error;
      r.payload = r.error ? r.error->body : "";
      r.start_mode = started.mode;
      r.log = started.init.log;
      return r;
    }
    instance = std::move(started.instance);
  }
  auto result = instance->invoke({"", payload});
  if (instance->reusable()) {
    std::lock_guard lock(mutex_);
    if (registry_.get(name)) idle_[name].push_back(std::move(instance));
  }
  return result;
}

nlohmann::json FunctionService::configuration_json(const FunctionRecord& r) {
  const auto& c = r.config;
  return {{"FunctionName", c.name},
          {"FunctionArn", function_arn(c.name)},
          {"Runtime", c.runtime},
          {"Handler", c.handler},
          {"Role", r.role},
          {"CodeSha256", base64_of_hex(r.code_sha256)},
          {"CodeSize", r.code_size},
          {"MemorySize", c.memory_mb},
          {"Timeout", c.timeout_s},
          {"Environment", {{"Variables", c.environment}}},
          {"EphemeralStorage", {{"Size", c.ephemeral_storage_mb}}},
          {"SnapStart",
           {{"ApplyOn", c.snapshot == SnapshotPolicy::Auto ? "PublishedVersions" : "None"},
            {"OptimizationStatus", c.snapshot == SnapshotPolicy::Auto ? "On" : "Off"}}},
          {"State", "Active"},
          {"LastUpdateStatus", "Successful"},
          {"LastModified", r.last_modified},
          {"Version", "$LATEST"},
          {"PackageType", "Zip"},
          {"Architectures", {"x86_64"}}};
}

}  // namespace thaw::invoker
