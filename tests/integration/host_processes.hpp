// What the host shows of processes a test does not own: their files under
// /proc and the cgroups they are in. Such processes come and go while a test
// looks, so a file or a group that vanishes meanwhile reads as empty, never
// as an error.
#pragma once

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace thaw::itest {

// The whole of a file such as /proc/PID/cmdline; "" once the process is
// gone. (std::istreambuf_iterator would throw: libstdc++'s file buffer
// throws on a read error, and reading a dead process's file fails ESRCH.)
inline std::string read_proc_file(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

// The processes in the memory cgroups under a parent.
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
