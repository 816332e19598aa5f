#pragma once
// The runtimes thaw knows: one profile each, the only place that says how a
// runtime is started, how it talks to thawd and whether it is snapshotted.

#include <optional>
#include <string>
#include <vector>

namespace thaw::images {

// How the runtime's bootstrap reaches thawd.
enum class RuntimeChannel {
  // thaw's frames on inherited pipes (fds 3 and 4): thaw's own bootstraps.
  Pipes,
  // Lambda's Runtime API over loopback TCP, served inside the instance by
  // thaw-runtime-api, which speaks frames to thawd: any executable bootstrap.
  RuntimeApi,
};

struct RuntimeInfo {
  std::string name;         // "python3.11", "nodejs20.x", "provided"
  std::string interpreter;  // absolute path on the host's /usr, empty for "provided"
  // What the sandbox runs, as paths inside the instance.
  std::vector<std::string> argv;
  RuntimeChannel channel = RuntimeChannel::Pipes;
  // Handler is file.function; a custom runtime runs /var/task/bootstrap.
  bool takes_handler = true;
  // Checkpointed after init and restored on later cold starts.
  bool snapshots = true;

  // A dump and a restore must keep the bootstrap's TCP connection to the
  // Runtime API server beside it.
  bool holds_tcp_connections() const { return channel == RuntimeChannel::RuntimeApi; }
};

const std::vector<RuntimeInfo>& known_runtimes();
std::optional<RuntimeInfo> find_runtime(const std::string& name);
// The profile of a runtime a validated configuration names; throws Error for
// any other name.
const RuntimeInfo& runtime_profile(const std::string& name);
// "python3.11, nodejs20.x, provided", for error messages.
std::string runtime_names();

// Whether the runtime's interpreter is installed on this host.
bool runtime_available(const RuntimeInfo& runtime);

}  // namespace thaw::images
