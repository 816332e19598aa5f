#pragma once
// Spawning an instance from a SandboxSpec, and the handle that owns it.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "sandbox/cgroup.hpp"
#include "sandbox/namespaces.hpp"
#include "sandbox/spec.hpp"

namespace thaw::sandbox {

struct ExitStatus {
  bool signaled = false;
  int code = 0;                // exit code, or the signal number when `signaled`
  bool out_of_memory = false;  // the cgroup's OOM killer acted
  std::string describe() const;
};

// How long each step of a spawn took, in microseconds (for benchmarks and logs).
struct SpawnTimings {
  double namespaces_us = 0;
  double cgroup_us = 0;
  double clone_us = 0;
  double child_setup_us = 0;  // from "go" to a successful execve
};

class Instance {
 public:
  ~Instance();  // kills the process tree if still running, then removes the cgroup
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  const std::string& name() const { return name_; }
  const SpawnTimings& timings() const { return timings_; }

  ExitStatus wait();
  std::optional<ExitStatus> wait_for(std::chrono::milliseconds timeout);
  void kill();
  CgroupUsage usage() const { return cgroup_->usage(); }
  uint64_t memory_peak_bytes() const { return cgroup_->memory_peak_bytes(); }
  const InstanceCgroup& cgroup() const { return *cgroup_; }

 private:
  friend std::unique_ptr<Instance> spawn(const SandboxSpec&, UserNetNamespaces);
  friend std::unique_ptr<Instance> adopt(std::string, pid_t, std::unique_ptr<InstanceCgroup>);
  Instance() = default;
  ExitStatus reap(int how);

  std::string name_;
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  std::unique_ptr<InstanceCgroup> cgroup_;
  std::optional<ExitStatus> exit_;
  SpawnTimings timings_;
};

// Takes charge of a process tree that is already running in `cgroup` (one
// that CRIU restored, say). The caller must be its parent or subreaper.
std::unique_ptr<Instance> adopt(std::string name, pid_t pid,
                                std::unique_ptr<InstanceCgroup> cgroup);

// Starts the instance in the given user+network namespaces (from a pool or
// make_user_net_namespaces). A failure in the child comes back as an Error such
// as "sandbox: pivot_root(.): Invalid argument".
std::unique_ptr<Instance> spawn(const SandboxSpec& spec, UserNetNamespaces namespaces);

}  // namespace thaw::sandbox
