#pragma once
// A function as users declare it, validated by Lambda's rules.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "sandbox/egress_policy.hpp"
#include "sandbox/namespaces.hpp"

namespace thaw::invoker {

enum class SnapshotPolicy { Auto, Off };

struct FunctionConfig {
  std::string name;
  std::string runtime;  // "python3.11", "nodejs20.x", "provided"
  std::string
      handler;  // "module.function" (Python), "file.export" (Node.js), ignored for "provided"
  uint32_t memory_mb = 128;
  uint32_t timeout_s = 3;
  uint32_t ephemeral_storage_mb = 512;  // the size of /tmp, as Lambda's EphemeralStorage
  std::map<std::string, std::string> environment;
  SnapshotPolicy snapshot = SnapshotPolicy::Auto;
  // thaw's own: where instances may send packets; unset: the host's default.
  std::optional<sandbox::EgressPolicy> egress = std::nullopt;
  // Not declared by users: the first host uid and gid of the range thawd gave
  // the function (registry), which its root inside maps to and which owns its
  // namespaces.
  uint32_t host_id_base = sandbox::kDefaultHostIdBase;
  sandbox::IdMapping id_mapping() const { return {host_id_base, sandbox::kIdRangeSize}; }
};

// Throws Error naming the field and the rule, e.g.
// "MemorySize: must be between 128 and 10240 MB, got 64".
void validate(const FunctionConfig& config);

// Lambda's rule for a function's name: 1 to 64 letters, digits, '-' or '_'.
bool is_function_name(std::string_view name);

// The environment Lambda sets for a function, plus the function's own variables.
std::map<std::string, std::string> lambda_environment(const FunctionConfig& config);

std::string function_arn(const std::string& name);

}  // namespace thaw::invoker
