#include "sandbox_harness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "sandbox/cgroup.hpp"
#include "thaw/error.hpp"

namespace fs = std::filesystem;

namespace thaw::itest {

std::string cpu_quota_of(const std::string& path) {
  const auto dir = sandbox::controller_mount("cpu") + "/" + path;
  const bool v2 = sandbox::detect_cgroup_layout().version_of("cpu") == 2;
  std::ifstream in(dir + (v2 ? "/cpu.max" : "/cpu.cfs_quota_us"));
  std::string quota;
  in >> quota;  // v2: "<quota> <period>", the period is 100 ms either way
  return quota == "-1" ? "max" : quota;
}

std::string sandbox_unavailable_reason() {
  if (geteuid() != 0) return "needs root (user namespaces with id maps, cgroups, mounts)";
  if (access("/proc/self/ns/user", F_OK) != 0) return "no user namespaces in this kernel";
  return "";
}

SandboxHarness::SandboxHarness() {
  char tmpl[] = "/tmp/thaw-it-XXXXXX";
  if (!mkdtemp(tmpl)) throw_errno("mkdtemp");
  dir_ = tmpl;
  chmod(dir_.c_str(), 0755);
  root_ = sandbox::prepare_root_template(dir_ + "/root");
  code_dir_ = dir_ + "/code";
  fs::create_directories(code_dir_);
  cgroup_parent_ = "thaw-test-" + std::to_string(getpid());
}

SandboxHarness::~SandboxHarness() {
  scratch_.clear();
  sandbox::remove_cgroup_parent(cgroup_parent_);
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

sandbox::SandboxSpec SandboxHarness::spec(std::vector<std::string> argv) {
  const int n = ++counter_;
  const auto tmp = dir_ + "/tmp-" + std::to_string(n);
  scratch_.push_back(std::make_unique<sandbox::ScratchMount>(tmp, 64ull << 20, mapping_.to_host(0),
                                                             mapping_.to_host(0)));
  sandbox::SandboxSpec s;
  s.name = "t" + std::to_string(getpid()) + "-" + std::to_string(n);
  s.cgroup_parent = cgroup_parent_;
  s.argv = std::move(argv);
  s.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"};
  s.cwd = "/tmp";
  s.root_dir = root_;
  s.mounts = sandbox::standard_mount_plan({code_dir_, "", tmp, "", {}});
  s.cgroup.memory_bytes = 256ull << 20;
  s.cgroup.pids_max = 128;
  s.cgroup.cpus = 1.0;
  s.seccomp = sandbox::compiled(sandbox::default_profile());
  return s;
}

std::unique_ptr<sandbox::Instance> SandboxHarness::start(const sandbox::SandboxSpec& spec) {
  return sandbox::spawn(spec, sandbox::make_user_net_namespaces(mapping_));
}

RunResult SandboxHarness::run(sandbox::SandboxSpec s, int timeout_ms) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) throw_errno("pipe");
  UniqueFd out_r(out[0]), out_w(out[1]), err_r(err[0]), err_w(err[1]);
  s.fds = {-1, out_w.get(), err_w.get()};
  auto inst = start(s);
  out_w.reset();
  err_w.reset();
  RunResult r;
  pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  int open_pipes = 2;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (open_pipes > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      inst->kill();
      break;
    }
    if (poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        fds[i].fd = -1;
        --open_pipes;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  const auto status = inst->wait_for(std::chrono::milliseconds(std::max(timeout_ms, 1000)));
  if (!status) {
    inst->kill();
    r.status = inst->wait();
  } else {
    r.status = *status;
  }
  return r;
}

}  // namespace thaw::itest
