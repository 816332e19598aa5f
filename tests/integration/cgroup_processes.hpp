// The processes in the memory cgroups under a parent, as the host sees them.
// Instances come and go while a test looks, so a group that vanishes in the
// middle of the walk is skipped, never an error.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace thaw::itest {

inline std::vector<pid_t> processes_in_cgroups_under(const std::string& cgroup_parent) {
  namespace fs = std::filesystem;
  std::vector<pid_t> pids;
  std::error_code ec;
  fs::recursive_directory_iterator it("/sys/fs/cgroup/memory/" + cgroup_parent, ec);
  // The iterator's operator++ throws when a directory is removed under it;
  // increment(ec) reports that instead, and the walk goes on past it.
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename() != "cgroup.procs") continue;
    std::ifstream in(it->path());
    for (pid_t p; in >> p;) pids.push_back(p);
  }
  return pids;
}

}  // namespace thaw::itest
