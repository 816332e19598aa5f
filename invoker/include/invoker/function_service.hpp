#pragma once
// The engine behind the API: deploys functions (code store + registry),
// schedules invocations on idle instances (warm), snapshots (restore) or new
// instances (cold), and keeps idle instances for reuse. Requests become calls
// here; failures come back as ApiError with Lambda's status and type.

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "images/code_package.hpp"
#include "invoker/function_instance.hpp"
#include "invoker/instance_factory.hpp"
#include "invoker/registry.hpp"
#include "sandbox/error.hpp"
#include "snapshots/snapshot_store.hpp"

namespace thaw::invoker {

struct ApiError : Error {
  unsigned status;
  std::string type;
  ApiError(unsigned s, std::string t, const std::string& message)
      : Error(message), status(s), type(std::move(t)) {}
};

class FunctionService {
 public:
  // `criu` empty: snapshots off.
  FunctionService(const std::string& state_dir, const std::string& runtimes_dir,
                  const std::string& criu, const std::string& cgroup_parent = "thaw");
  ~FunctionService();

  FunctionRecord create(const nlohmann::json& request);  // CreateFunction's body
  FunctionRecord get(const std::string& name) const;     // ApiError 404 when absent
  std::vector<FunctionRecord> list() const;
  void remove(const std::string& name);
  InvokeResult invoke(const std::string& name, const std::string& payload);

  static nlohmann::json configuration_json(const FunctionRecord& record);
  const InstanceFactory& factory() const { return *factory_; }

 private:
  HostEnvironment host_;
  images::CodeStore code_;
  std::unique_ptr<snapshots::SnapshotStore> snapshots_;
  Registry registry_;
  std::unique_ptr<InstanceFactory> factory_;
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<std::unique_ptr<FunctionInstance>>> idle_;
};

}  // namespace thaw::invoker
