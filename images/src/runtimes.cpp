#include "images/runtimes.hpp"

#include <unistd.h>

#include "thaw/error.hpp"

namespace thaw::images {

const std::vector<RuntimeInfo>& known_runtimes() {
  // Interpreters come from the host's /usr, which every instance mounts
  // read-only; bootstraps from the runtime's directory at /opt/thaw/runtime.
  static const std::vector<RuntimeInfo> runtimes = {
      {"python3.11",
       "/usr/bin/python3.11",
       {"/usr/bin/python3.11", "-u", "/opt/thaw/runtime/bootstrap.py"},
       RuntimeChannel::Pipes,
       true,
       true},
      {"nodejs20.x",
       "/usr/bin/node",
       {"/usr/bin/node", "/opt/thaw/runtime/bootstrap.js"},
       RuntimeChannel::Pipes,
       true,
       true},
      // Snapshotted too: the Runtime API server runs inside the instance, so
      // the bootstrap's connection to it is saved with the rest of the tree.
      {"provided",
       "",
       {"/opt/thaw/runtime/thaw-runtime-api", "/var/task/bootstrap"},
       RuntimeChannel::RuntimeApi,
       false,
       true},
  };
  return runtimes;
}

std::optional<RuntimeInfo> find_runtime(const std::string& name) {
  for (const auto& r : known_runtimes())
    if (r.name == name) return r;
  return std::nullopt;
}

const RuntimeInfo& runtime_profile(const std::string& name) {
  for (const auto& r : known_runtimes())
    if (r.name == name) return r;
  throw Error("unknown runtime \"" + name + "\"");
}

std::string runtime_names() {
  std::string out;
  for (const auto& r : known_runtimes()) out += (out.empty() ? "" : ", ") + r.name;
  return out;
}

bool runtime_available(const RuntimeInfo& runtime) {
  return runtime.interpreter.empty() || access(runtime.interpreter.c_str(), X_OK) == 0;
}

}  // namespace thaw::images
