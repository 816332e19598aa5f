#pragma once
// One cgroup per instance, under thaw's own parent group, on cgroup v1, v2 or
// the hybrid layout. Limits are computed as plain values (unit-tested), then
// written with libcgroup. thaw never creates or removes a group outside its parent.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

struct cgroup;  // libcgroup

namespace thaw::sandbox {

enum class CgroupMode { V1, V2, Hybrid };
const char* mode_name(CgroupMode mode);

struct CgroupLayout {
  CgroupMode mode = CgroupMode::V1;
  // Controller -> the version of the hierarchy it is attached to (1 or 2).
  std::map<std::string, int> controllers;
  int version_of(const std::string& controller) const;
};

// Reads /proc/self/mountinfo and the unified hierarchy's cgroup.controllers.
CgroupLayout detect_cgroup_layout();

struct CgroupLimits {
  uint64_t memory_bytes = 128ull << 20;
  uint32_t pids_max = 1024;
  // CPU quota as a share of one CPU, 1.0 = one full CPU; 0 = no quota.
  double cpus = 128.0 / 1769.0;
};

// Lambda's rule: 1,769 MB of memory buys one vCPU; the share scales linearly.
double cpus_for_memory(uint64_t memory_mb);

struct CgroupSetting {
  std::string controller;
  std::string name;
  std::string value;
  bool operator==(const CgroupSetting&) const = default;
};

// The files to write, in order, for a controller on the given version.
// `swap_accounting` says whether v1's memory.memsw files exist.
std::vector<CgroupSetting> cgroup_settings(const CgroupLimits& limits, const CgroupLayout& layout,
                                           bool swap_accounting);

struct CgroupUsage {
  uint64_t memory_peak_bytes = 0;
  uint64_t cpu_usage_ns = 0;
  uint64_t oom_kills = 0;
};

// A created instance cgroup; the destructor removes it (and checks that it is gone).
class InstanceCgroup {
 public:
  // `path` is relative to each hierarchy's root, e.g. "thaw/i-f1-3".
  InstanceCgroup(std::string path, const CgroupLimits& limits);
  ~InstanceCgroup();
  InstanceCgroup(const InstanceCgroup&) = delete;
  InstanceCgroup& operator=(const InstanceCgroup&) = delete;

  const std::string& path() const { return path_; }
  // The controllers this group was created in ("memory", "cpu", ...).
  const std::vector<std::string>& controllers() const;
  void attach(pid_t pid) const;
  // Puts `pid` in this group of the pids hierarchy alone, where nothing but
  // its processes are counted: what it forks is then in the group too, and
  // ended with the group's processes, while its memory and CPU stay where
  // they were. False where the pids controller shares its hierarchy with
  // memory (cgroup v2), which would charge it there too: nothing is done.
  bool track(pid_t pid) const;
  // Changes the CPU quota of a running group (share of one CPU; 0 = no quota).
  void set_cpus(double cpus) const;
  CgroupUsage usage() const;
  // The memory high-water mark alone, read through a descriptor kept open:
  // every invocation asks for it (Max Memory Used).
  uint64_t memory_peak_bytes() const;
  // Directories of this group, one per hierarchy; for tests and v2's CLONE_INTO_CGROUP.
  std::vector<std::string> directories() const;
  // Removes the group now; throws when a directory stays behind.
  void remove();

 private:
  std::string path_;
  struct ::cgroup* group_ = nullptr;
  bool removed_ = false;
  mutable int peak_fd_ = -1;
};

// Removes groups under `parent` (e.g. "thaw") that no live process uses: what a
// crashed thawd left behind. Returns how many were removed.
int reap_orphan_cgroups(const std::string& parent);

// Kills every process in the group `parent`/`name` (in each hierarchy thaw
// uses) and waits up to `wait` for the group to empty; true when it did.
// For instances a killed thawd left running: the caller must know the group
// is one of them (thawd matches it with the instance directories left in its
// state directory), never another live thawd's.
bool end_group_processes(const std::string& parent, const std::string& name,
                         std::chrono::milliseconds wait);

// Removes orphans under `parent`, then `parent` itself where it is empty.
void remove_cgroup_parent(const std::string& parent);

// The mount point of a controller's hierarchy ("" for the unified one on v2).
std::string controller_mount(const std::string& controller);

// One line of /proc/PID/cgroup: a hierarchy's controllers as the kernel names
// them ("memory", "cpu,cpuacct", "name=systemd", "" for cgroup2) and the
// group in it ("/thaw/i-1").
struct CgroupMembership {
  std::string controllers;
  std::string path;
  // Whether this hierarchy has `controller` ("" = the cgroup2 one).
  bool holds(const std::string& controller) const {
    return controller.empty()
               ? controllers.empty()
               : ("," + controllers + ",").find("," + controller + ",") != std::string::npos;
  }
};
// The hierarchies in `proc_file` ("/proc/self/cgroup", "/proc/thread-self/cgroup").
std::vector<CgroupMembership> cgroup_memberships(const std::string& proc_file);

}  // namespace thaw::sandbox
