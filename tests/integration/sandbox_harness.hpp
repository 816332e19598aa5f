#pragma once
// Runs commands in real sandboxes for integration tests, and cleans up after
// itself: the instance, its cgroup, its /tmp mount and the directories.

#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "sandbox/instance.hpp"
#include "sandbox/rootfs.hpp"

namespace thaw::itest {

struct RunResult {
  sandbox::ExitStatus status;
  std::string out;
  std::string err;
};

// Why a sandbox cannot run here, or "" when it can.
std::string sandbox_unavailable_reason();

// The CPU quota of the cgroup at `path` (relative to the cpu controller's
// mount) in microseconds per 100 ms, "max" when unlimited, for either
// cgroup version.
std::string cpu_quota_of(const std::string& path);

class SandboxHarness {
 public:
  SandboxHarness();
  ~SandboxHarness();

  // A spec for `argv` with the default seccomp profile and the standard mount plan.
  sandbox::SandboxSpec spec(std::vector<std::string> argv);
  // Spawns, collects stdout and stderr, waits (killing after `timeout_ms`).
  RunResult run(sandbox::SandboxSpec spec, int timeout_ms = 20000);
  RunResult run(std::vector<std::string> argv) { return run(spec(std::move(argv))); }
  // Spawns with stdout/stderr to pipes the caller reads; for long-lived instances.
  std::unique_ptr<sandbox::Instance> start(const sandbox::SandboxSpec& spec);

  const std::string& dir() const { return dir_; }
  const std::string& code_dir() const { return code_dir_; }
  const sandbox::IdMapping& mapping() const { return mapping_; }
  std::string cgroup_parent() const { return cgroup_parent_; }

 private:
  std::string dir_;
  std::string root_;
  std::string code_dir_;
  std::string cgroup_parent_;
  sandbox::IdMapping mapping_;
  int counter_ = 0;
  std::vector<std::unique_ptr<sandbox::ScratchMount>> scratch_;
};

}  // namespace thaw::itest
