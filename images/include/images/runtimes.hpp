#pragma once
// The runtimes thaw knows, and where their bootstraps live.

#include <optional>
#include <string>
#include <vector>

namespace thaw::images {

struct RuntimeInfo {
  std::string name;         // "python3.11", "nodejs20.x", "provided"
  std::string interpreter;  // absolute path on the host's /usr, empty for "provided"
};

const std::vector<RuntimeInfo>& known_runtimes();
std::optional<RuntimeInfo> find_runtime(const std::string& name);

// Whether the runtime's interpreter is installed on this host.
bool runtime_available(const RuntimeInfo& runtime);

}  // namespace thaw::images
