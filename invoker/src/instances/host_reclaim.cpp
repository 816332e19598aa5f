#include "invoker/instances/host_reclaim.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>
#include <vector>

#include "invoker/observability/log.hpp"
#include "sandbox/cgroup.hpp"
#include "thaw/unique_fd.hpp"

namespace thaw::invoker {

namespace {

// The restores a killed thawd of this state directory left running: one
// that finished after the orphans below were ended would leave a tree
// running that no thawd knows. Found by the cgroups they restore into (each
// state directory has a cgroup parent of its own), ended by pid. (A dump
// left running ends by itself when its tree is ended below.)
void end_leftover_criu(const HostEnvironment& host) {
  // "--cgroup-root CONTROLLER:/PARENT/INSTANCE": this parent exactly.
  const auto ours = [&](const std::string& value) {
    const auto colon = value.find(':');
    if (colon == std::string::npos) return false;
    const auto prefix = "/" + host.cgroup_parent + "/";
    const auto group = value.substr(colon + 1);
    return group.rfind(prefix, 0) == 0 && group.size() > prefix.size() &&
           group.find('/', prefix.size()) == std::string::npos;
  };
  std::vector<pid_t> ended;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "cmdline");
    std::vector<std::string> argv;
    for (std::string arg; std::getline(in, arg, '\0');) argv.push_back(arg);
    bool restores_here = false;
    for (size_t i = 0; i + 1 < argv.size(); ++i)
      restores_here = restores_here || (argv[i] == "--cgroup-root" && ours(argv[i + 1]));
    if (!restores_here || argv.size() < 2 || argv[1] != "restore") continue;
    // Through a pidfd taken before the command line is read again: a pid
    // reused meanwhile is not killed.
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    std::ifstream again(e.path() / "cmdline");
    std::string now((std::istreambuf_iterator<char>(again)), {});
    std::string before;
    for (const auto& a : argv) before += a + '\0';
    if (pidfd && now == before &&
        syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) == 0)
      ended.push_back(pid);
  }
  // Not our children: gone once /proc no longer has them.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (pid_t pid : ended) {
    while (std::filesystem::exists("/proc/" + std::to_string(pid)) &&
           std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    log_event("warn", "leftover_criu_ended", {{"pid", pid}});
  }
}

// A killed thawd of this state directory left these instances running (a busy
// one until its invocation ends): their groups are named like the instance
// directories it left, so they, and never another thawd's, are ended.
void end_orphan_instances(const HostEnvironment& host) {
  std::error_code ec;
  std::set<std::string> ids;
  for (const auto& e : std::filesystem::directory_iterator(host.state_dir + "/instances", ec)) {
    auto name = e.path().filename().string();
    for (const char* suffix : {"-tmp", "-restore", "-dump"}) {
      const std::string s = suffix;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0)
        name.resize(name.size() - s.size());
    }
    ids.insert(name);
  }
  for (const auto& id : ids)
    sandbox::end_group_processes(host.cgroup_parent, id, std::chrono::seconds(2));
  // Their directories (a /tmp's mount point, a dump's or restore's work
  // directory) were the killed thawd's: none of ours exists yet.
  for (const auto& e : std::filesystem::directory_iterator(host.state_dir + "/instances", ec)) {
    std::error_code removing;
    std::filesystem::remove_all(e.path(), removing);
    if (removing)
      log_event("warn", "orphan_instance_directory_kept",
                {{"path", e.path().string()}, {"reason", removing.message()}});
  }
}

}  // namespace

void reclaim_host(const HostEnvironment& host) {
  end_leftover_criu(host);
  end_orphan_instances(host);
  sandbox::reap_orphan_cgroups(host.cgroup_parent);
}

}  // namespace thaw::invoker
