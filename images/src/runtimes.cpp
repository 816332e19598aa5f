#include "images/runtimes.hpp"

#include <unistd.h>

namespace thaw::images {

const std::vector<RuntimeInfo>& known_runtimes() {
  // Interpreters come from the host's /usr, which every instance mounts read-only.
  static const std::vector<RuntimeInfo> runtimes = {
      {"python3.11", "/usr/bin/python3.11"},
      {"nodejs20.x", "/usr/bin/node"},
      {"provided", ""},
  };
  return runtimes;
}

std::optional<RuntimeInfo> find_runtime(const std::string& name) {
  for (const auto& r : known_runtimes())
    if (r.name == name) return r;
  return std::nullopt;
}

bool runtime_available(const RuntimeInfo& runtime) {
  return runtime.interpreter.empty() || access(runtime.interpreter.c_str(), X_OK) == 0;
}

}  // namespace thaw::images
