#pragma once
// SandboxSpec: everything an instance is, as a value, decided before the clone.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/cgroup.hpp"
#include "sandbox/mount_plan.hpp"
#include "sandbox/seccomp.hpp"

namespace thaw::sandbox {

// Only loopback today; an egress mode (veth + NAT with an allow list) comes later.
enum class NetworkMode { Loopback };

struct ResourceLimits {
  uint64_t open_files = 1024;
  uint64_t file_size_bytes = 512ull << 20;  // one file may not outgrow Lambda's /tmp
  // Core dumps are always off: they would leave an instance's memory on disk.
};

struct SandboxSpec {
  std::string name;  // unique; the cgroup is <cgroup_parent>/<name>
  std::string cgroup_parent = "thaw";
  std::vector<std::string> argv;  // argv[0] is an absolute path inside the sandbox
  std::vector<std::string> env;   // "KEY=value"
  std::string cwd = "/";
  uid_t uid = 1000;  // inside the user namespace; never 0
  gid_t gid = 1000;
  std::string hostname = "thaw";
  std::string root_dir;  // a root template (rootfs.hpp)
  MountPlan mounts;
  CgroupLimits cgroup;
  ResourceLimits rlimits;
  std::shared_ptr<const CompiledFilter> seccomp;  // null: no filter (tests of the sandbox only)
  NetworkMode network = NetworkMode::Loopback;
  // Descriptors the instance gets as 0, 1, 2, 3...; -1 means /dev/null.
  std::vector<int> fds;
};

// Checks the spec; throws Error naming the field and the rule.
void validate(const SandboxSpec& spec);

}  // namespace thaw::sandbox
