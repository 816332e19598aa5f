#include "invoker/api/lambda/lambda_configuration.hpp"

#include "invoker/api/lambda/function_requests.hpp"
#include "invoker/http/base64.hpp"

namespace thaw::invoker {

nlohmann::json lambda_configuration(const FunctionRecord& r, bool snapshotted) {
  const auto& c = r.config;
  nlohmann::json out = {
      {"FunctionName", c.name},
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
        {"OptimizationStatus", snapshotted ? "On" : "Off"}}},
      {"State", "Active"},
      {"LastUpdateStatus", "Successful"},
      {"LastModified", r.last_modified},
      {"Version", "$LATEST"},
      {"PackageType", "Zip"},
      {"Architectures", {"x86_64"}}};
  // thaw's own field, shown when the function states a policy of its own.
  if (c.egress) {
    out["Egress"] = {{"Allow", c.egress->rule_texts()},
                     {"ConnectionsPerSecond", c.egress->connections_per_second},
                     {"BandwidthMbps", c.egress->bandwidth_mbps}};
  }
  return out;
}

}  // namespace thaw::invoker
