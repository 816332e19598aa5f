#pragma once
// What cgroup.cpp and cgroup_spares.cpp share: which hierarchies thaw uses and
// where a group's directories are in them.
#include <string>
#include <vector>

#include "sandbox/cgroup.hpp"

namespace thaw::sandbox::detail {

// cpuacct is its own hierarchy on some v1 hosts (this one): CPU time is read there.
inline constexpr const char* kControllers[] = {"memory", "cpu", "cpuacct", "pids"};

void init_libcgroup();
const CgroupLayout& host_cgroup_layout();
// The controllers of kControllers the host has.
std::vector<std::string> used_controllers();
// The directory of group `path` in each hierarchy of `controllers`, once each
// (cpu and cpuacct often share one).
std::vector<std::string> group_directories(const std::string& path,
                                           const std::vector<std::string>& controllers);

}  // namespace thaw::sandbox::detail
