// The parent side of spawning an instance, and the Instance handle.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "child.hpp"
#include "sandbox/instance.hpp"
#include "shim_launch.hpp"
#include "thaw/error.hpp"

namespace thaw::sandbox {

namespace {

using Clock = std::chrono::steady_clock;

double micros_since(Clock::time_point t) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

int cap_last_cap() {
  static const int value = [] {
    std::ifstream in("/proc/sys/kernel/cap_last_cap");
    int v = 40;
    in >> v;
    return v;
  }();
  return value;
}

rlim_t clamp_to_hard(int resource, uint64_t wanted) {
  // Without CAP_SYS_RESOURCE nobody can raise a hard limit: never ask to.
  rlimit now{};
  getrlimit(static_cast<__rlimit_resource>(resource), &now);
  return std::min<rlim_t>(wanted, now.rlim_max);
}

// Holds the strings the child's plan points into.
struct PlanStorage {
  std::vector<std::string> strings;
  std::vector<char*> argv, envp;
};

Error child_error(const detail::Report& r) {
  std::string text = std::string("sandbox: ") + r.step;
  if (r.detail[0]) text += std::string("(") + r.detail + ")";
  return Error(text, r.err);
}

}  // namespace

void validate(const SandboxSpec& spec) {
  auto refuse = [](const std::string& why) { throw Error("sandbox spec: " + why); };
  if (spec.name.empty() || spec.name.find('/') != std::string::npos || spec.name[0] == '.')
    refuse("name must be a non-empty single path component");
  if (spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/')
    refuse("argv[0] must be an absolute path inside the sandbox");
  if (spec.uid == 0 || spec.gid == 0)
    refuse("uid and gid must not be 0 (root inside the namespace)");
  if (spec.root_dir.empty() || spec.root_dir[0] != '/') refuse("root_dir must be an absolute path");
  if (spec.cwd.empty() || spec.cwd[0] != '/') refuse("cwd must be an absolute path");
  if (spec.hostname.empty() || spec.hostname.size() > 64)
    refuse("hostname must have 1 to 64 characters");
  if (spec.cgroup.memory_bytes < (16ull << 20)) refuse("memory limit must be at least 16 MB");
  if (spec.cgroup.pids_max < 1) refuse("pids limit must be at least 1");
  for (const auto& e : spec.env)
    if (e.find('=') == std::string::npos) refuse("environment entry without '=': " + e);
  validate(spec.mounts);
}

namespace {

// Everything the child needs, computed before it exists: it may not
// allocate between clone and exec. The plan points into `store`.
detail::ChildPlan child_plan(const SandboxSpec& spec, const UserNetNamespaces& namespaces,
                             int report_fd, PlanStorage& store) {
  detail::ChildPlan plan;
  plan.report_fd = report_fd;
  plan.user_ns_fd = namespaces.user.get();
  plan.net_ns_fd = namespaces.net.get();
  plan.root_dir = spec.root_dir.c_str();
  for (const auto& m : spec.mounts)
    plan.mounts.push_back(
        {m.kind, m.source.empty() ? nullptr : m.source.c_str(), m.target.c_str()});
  plan.hostname = spec.hostname.c_str();
  plan.cwd = spec.cwd.c_str();
  plan.uid = spec.uid;
  plan.gid = spec.gid;
  plan.cap_last = cap_last_cap();
  plan.rlimits = {{RLIMIT_NOFILE, clamp_to_hard(RLIMIT_NOFILE, spec.rlimits.open_files)},
                  {RLIMIT_FSIZE, clamp_to_hard(RLIMIT_FSIZE, spec.rlimits.file_size_bytes)},
                  // No core dumps. 0 stops only a core file: with a piped
                  // core_pattern the kernel starts the host's helper, as
                  // host root, whatever the limit, except at exactly 1 (the
                  // value it reserves for its own helpers). The seccomp
                  // profile keeps the function from changing it.
                  {RLIMIT_CORE, 1}};
  if (spec.seccomp) plan.seccomp = spec.seccomp->fprog();
  plan.fds = spec.fds;
  if (plan.fds.empty()) plan.fds = {-1, -1, -1};
  // fd_scratch_base is set by launch_shim, which renumbers the descriptors.
  for (const auto& a : spec.argv) store.argv.push_back(const_cast<char*>(a.c_str()));
  store.argv.push_back(nullptr);
  for (const auto& e : spec.env) store.envp.push_back(const_cast<char*>(e.c_str()));
  store.envp.push_back(nullptr);
  plan.argv = store.argv.data();
  plan.envp = store.envp.data();
  return plan;
}

struct Launched {
  pid_t pid = -1;
  UniqueFd pidfd;
};

// Runs the shim, which clones the instance (stopped before its exec) and
// exits; the instance reports its pid, or the step that failed, on
// `parent_end`.
Launched launch(const detail::ChildPlan& plan, UniqueFd child_end, int parent_end) {
  const pid_t shim = detail::launch_shim(plan);
  child_end.reset();
  int status = 0;
  while (waitpid(shim, &status, 0) < 0 && errno == EINTR) {
  }
  detail::Report report{};
  const ssize_t got = recv(parent_end, &report, sizeof report, 0);
  if (got != static_cast<ssize_t>(sizeof report))
    throw Error("sandbox: the shim (" THAW_SANDBOX_SHIM ") exited without reporting, status " +
                std::to_string(status));
  if (report.type == detail::ReportType::Failure) throw child_error(report);
  Launched out;
  out.pid = report.pid;
  // We are the instance's parent (CLONE_PARENT) and have not reaped it, so
  // its pid cannot have been reused.
  out.pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, out.pid, 0)));
  if (!out.pidfd) {
    const int err = errno;
    kill(out.pid, SIGKILL);
    waitpid(out.pid, &status, 0);
    throw_errno("sandbox: pidfd_open", err);
  }
  return out;
}

// Lets a launched instance, now in its cgroup, go on to its exec. A message
// is a failure report; end of file means execve succeeded (the socket is
// close-on-exec in the child).
void release(Instance& inst, int parent_end) {
  const char go = 1;
  if (send(parent_end, &go, 1, MSG_NOSIGNAL) != 1) {
    inst.wait();
    throw_errno("sandbox: start instance");
  }
  detail::Report report{};
  if (recv(parent_end, &report, sizeof report, 0) > 0) {
    inst.wait();
    throw child_error(report);
  }
}

}  // namespace

std::unique_ptr<Instance> spawn(const SandboxSpec& spec, UserNetNamespaces namespaces) {
  validate(spec);
  std::unique_ptr<Instance> inst(new Instance());
  inst->name_ = spec.name;
  auto& timings = inst->timings_;

  auto t = Clock::now();
  inst->cgroup_ =
      std::make_unique<InstanceCgroup>(spec.cgroup_parent + "/" + spec.name, spec.cgroup);
  timings.cgroup_us = micros_since(t);

  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
    throw_errno("sandbox: socketpair");
  UniqueFd parent_end(pair[0]), child_end(pair[1]);
  PlanStorage store;
  const auto plan = child_plan(spec, namespaces, child_end.get(), store);

  t = Clock::now();
  auto launched = launch(plan, std::move(child_end), parent_end.get());
  inst->pid_ = launched.pid;
  inst->pidfd_ = std::move(launched.pidfd);
  timings.clone_us = micros_since(t);

  t = Clock::now();
  try {
    inst->cgroup_->attach(inst->pid_);
  } catch (...) {
    inst->kill();
    inst->wait();
    throw;
  }
  release(*inst, parent_end.get());
  timings.child_setup_us = micros_since(t);
  return inst;
}

std::unique_ptr<Instance> adopt(std::string name, pid_t pid,
                                std::unique_ptr<InstanceCgroup> cgroup) {
  std::unique_ptr<Instance> inst(new Instance());
  inst->name_ = std::move(name);
  inst->pid_ = pid;
  inst->cgroup_ = std::move(cgroup);
  inst->pidfd_.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!inst->pidfd_) throw_errno("sandbox: pidfd_open of adopted pid " + std::to_string(pid));
  return inst;
}

std::string ExitStatus::describe() const {
  if (out_of_memory) return "killed: out of memory";
  if (signaled) return std::string("killed by signal ") + strsignal(code);
  return "exited with status " + std::to_string(code);
}

ExitStatus Instance::reap(int how) {
  siginfo_t info{};
  while (waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED | how) != 0) {
    if (errno != EINTR) throw_errno("sandbox: waitid " + name_);
  }
  if (info.si_pid == 0) return {};  // WNOHANG and still running
  ExitStatus s;
  s.signaled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
  s.code = info.si_status;
  s.out_of_memory = cgroup_ && cgroup_->usage().oom_kills > 0;
  exit_ = s;
  return s;
}

ExitStatus Instance::wait() {
  if (exit_) return *exit_;
  return reap(0);
}

std::optional<ExitStatus> Instance::wait_for(std::chrono::milliseconds timeout) {
  if (exit_) return exit_;
  pollfd p{pidfd_.get(), POLLIN, 0};
  int rc;
  while ((rc = poll(&p, 1, static_cast<int>(timeout.count()))) < 0 && errno == EINTR) {
  }
  if (rc == 0) return std::nullopt;
  return reap(0);
}

void Instance::kill() {
  if (exit_ || !pidfd_) return;
  // SIGKILL to the namespace's init takes down every process in it.
  syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
}

Instance::~Instance() {
  try {
    if (pidfd_ && !exit_) {
      kill();
      wait();
    }
  } catch (...) {
  }
  cgroup_.reset();
}

}  // namespace thaw::sandbox
