#pragma once
// What cgroup.cpp and cgroup_spares.cpp share: which hierarchies thaw uses and
// where a group's directories are in them.
#include <string>
#include <vector>

#include "sandbox/cgroup.hpp"

namespace thaw::sandbox::detail {

void init_libcgroup();
const CgroupLayout& host_cgroup_layout();
// The controllers thaw puts instances under (memory, cpu, cpuacct, pids) that
// the host has.
const std::vector<std::string>& used_controllers();
// The directory of group `path` in each hierarchy of used_controllers(), once
// each (cpu and cpuacct often share one).
std::vector<std::string> group_directories(const std::string& path);

}  // namespace thaw::sandbox::detail
