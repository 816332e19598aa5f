// The child side of spawning: namespaces, filesystem, identity, seccomp, exec.
// Only plain system calls here (see child.hpp).
#include "child.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <grp.h>
#include <cerrno>
#include <cstring>

namespace thaw::sandbox::detail {

namespace {

[[noreturn]] void fail(int fd, const char* step, const char* detail, int err) {
  Report r;
  memset(&r, 0, sizeof r);
  r.type = ReportType::Failure;
  r.err = err;
  strncpy(r.step, step, sizeof r.step - 1);
  if (detail) strncpy(r.detail, detail, sizeof r.detail - 1);
  (void)!send(fd, &r, sizeof r, MSG_NOSIGNAL);
  _exit(127);
}

// Mount flags a user namespace may not clear on a mount it inherited ("locked"
// flags): a read-only remount must repeat them or the kernel refuses it.
unsigned long locked_flags(const char* path) {
  struct statvfs s;
  if (statvfs(path, &s) != 0) return 0;
  unsigned long f = 0;
  if (s.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (s.f_flag & ST_NODEV) f |= MS_NODEV;
  if (s.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (s.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (s.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (s.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

int remount_read_only(const char* target) {
  const unsigned long flags =
      MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | locked_flags(target);
  return mount(nullptr, target, nullptr, flags, nullptr);
}

// A remount changes the top mount only: mounts below a bound host tree (a
// file system mounted inside /usr or inside a code directory) would stay
// writable. mount_setattr (Linux 5.12) sets the whole tree at once; an older
// kernel has no such call, and the top mount is what it gets. Not for the
// root, whose tree holds the instance's own /tmp and device nodes.
int make_tree_read_only(const char* target) {
  if (remount_read_only(target) != 0) return -1;
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (syscall(SYS_mount_setattr, AT_FDCWD, target, AT_RECURSIVE, &attr, sizeof attr) != 0 &&
      errno != ENOSYS)
    return -1;
  return 0;
}

void apply_mount(const ChildPlan& plan, const ChildMount& m) {
  const int fd = plan.report_fd;
  switch (m.kind) {
    case MountKind::Bind:
      if (mount(m.source, m.target, nullptr, MS_BIND, nullptr) != 0)
        fail(fd, "mount bind", m.target, errno);
      break;
    case MountKind::MaskWithNull:
      if (mount(m.source, m.target, nullptr, MS_BIND, nullptr) != 0) {
        if (errno == ENOENT) break;  // this kernel has no such file: nothing to hide
        fail(fd, "mask", m.target, errno);
      }
      break;
    case MountKind::ReadOnlyBind:
      if (mount(m.source, m.target, nullptr, MS_BIND | MS_REC, nullptr) != 0)
        fail(fd, "mount bind", m.target, errno);
      if (make_tree_read_only(m.target) != 0) fail(fd, "make read-only", m.target, errno);
      break;
    case MountKind::Proc:
      if (mount("proc", m.target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
        fail(fd, "mount proc", m.target, errno);
      break;
    case MountKind::ReadOnlyAgain:
      if (mount(m.target, m.target, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        if (errno == ENOENT) break;  // not every kernel has every /proc directory
        fail(fd, "mount bind", m.target, errno);
      }
      if (remount_read_only(m.target) != 0) fail(fd, "remount read-only", m.target, errno);
      break;
  }
}

void build_filesystem(const ChildPlan& plan) {
  const int fd = plan.report_fd;
  // Nothing we mount may propagate back to the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    fail(fd, "make / private", "/", errno);
  if (mount(plan.root_dir, plan.root_dir, nullptr, MS_BIND | MS_REC, nullptr) != 0)
    fail(fd, "bind root", plan.root_dir, errno);
  if (chdir(plan.root_dir) != 0) fail(fd, "chdir root", plan.root_dir, errno);
  for (const auto& m : plan.mounts) apply_mount(plan, m);
  // pivot_root(".", ".") stacks the old root on top of the new one; detaching
  // it leaves no path to the host's filesystem.
  if (syscall(SYS_pivot_root, ".", ".") != 0) fail(fd, "pivot_root", plan.root_dir, errno);
  if (umount2(".", MNT_DETACH) != 0) fail(fd, "detach old root", ".", errno);
  if (chdir("/") != 0) fail(fd, "chdir", "/", errno);
  if (remount_read_only("/") != 0) fail(fd, "remount read-only", "/", errno);
}

void arrange_fds(ChildPlan& plan) {
  const int n = static_cast<int>(plan.fds.size());
  // Lift every source above all targets first, so dup2 never overwrites one
  // that is still to be moved.
  for (int i = 0; i < n; ++i) {
    int src = plan.fds[i];
    if (src < 0) {
      src = open("/dev/null", O_RDWR | O_CLOEXEC);
      if (src < 0) fail(plan.report_fd, "open", "/dev/null", errno);
    }
    const int lifted = fcntl(src, F_DUPFD_CLOEXEC, plan.fd_scratch_base);
    if (lifted < 0) fail(plan.report_fd, "dup", "instance fd", errno);
    plan.fds[i] = lifted;
  }
  int report = fcntl(plan.report_fd, F_DUPFD_CLOEXEC, plan.fd_scratch_base);
  if (report < 0) fail(plan.report_fd, "dup", "report fd", errno);
  plan.report_fd = report;
  for (int i = 0; i < n; ++i)
    if (dup2(plan.fds[i], i) != i) fail(plan.report_fd, "dup2", "instance fd", errno);
  // The report socket goes to fd n; everything else is closed.
  report = fcntl(plan.report_fd, F_DUPFD_CLOEXEC, n);
  if (report < 0) fail(plan.report_fd, "dup", "report fd", errno);
  plan.report_fd = report;
  if (report > n) syscall(SYS_close_range, n, report - 1, 0);
  syscall(SYS_close_range, report + 1, ~0U, 0);
}

void drop_privileges(const ChildPlan& plan) {
  const int fd = plan.report_fd;
  for (int rl = 0; rl < static_cast<int>(plan.rlimits.size()); ++rl) {
    const rlimit value{plan.rlimits[rl].value, plan.rlimits[rl].value};
    if (setrlimit(static_cast<__rlimit_resource>(plan.rlimits[rl].resource), &value) != 0)
      fail(fd, "setrlimit", nullptr, errno);
  }
  // The bounding set caps what any later execve could regain; empty it while
  // we still hold CAP_SETPCAP.
  for (int cap = 0; cap <= plan.cap_last; ++cap)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
      fail(fd, "drop bounding capability", nullptr, errno);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
    fail(fd, "clear ambient capabilities", nullptr, errno);
  // No supplementary groups: otherwise thawd's host groups would follow the function.
  if (setgroups(0, nullptr) != 0) fail(fd, "setgroups", nullptr, errno);
  if (setresgid(plan.gid, plan.gid, plan.gid) != 0) fail(fd, "setresgid", nullptr, errno);
  // Changing every uid away from 0 clears the permitted and effective sets.
  if (setresuid(plan.uid, plan.uid, plan.uid) != 0) fail(fd, "setresuid", nullptr, errno);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &header, data) != 0) fail(fd, "capset", nullptr, errno);
  if (chdir(plan.cwd) != 0) fail(fd, "chdir", plan.cwd, errno);
  // Required for an unprivileged seccomp filter, and stops setuid binaries.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(fd, "no_new_privs", nullptr, errno);
}

[[noreturn]] void run_instance(ChildPlan& plan) {
  const int fd = plan.report_fd;
  char go = 0;
  // Wait until the parent has put us in our cgroup.
  if (recv(fd, &go, 1, 0) != 1) _exit(127);
  // The cgroup namespace is rooted at the group we are in now: our own.
  if (unshare(CLONE_NEWCGROUP) != 0) fail(fd, "unshare(CLONE_NEWCGROUP)", nullptr, errno);
  // A session of our own: CRIU cannot dump a session leader outside the namespace.
  if (setsid() < 0) fail(fd, "setsid", nullptr, errno);
  if (sethostname(plan.hostname, strlen(plan.hostname)) != 0)
    fail(fd, "sethostname", plan.hostname, errno);
  build_filesystem(plan);
  arrange_fds(plan);
  drop_privileges(plan);
  // Last, right before execve: the filter also applies to everything above otherwise.
  if (plan.seccomp.len > 0 && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &plan.seccomp) != 0)
    fail(plan.report_fd, "seccomp", nullptr, errno);
  execve(plan.argv[0], plan.argv, plan.envp);
  fail(plan.report_fd, "execve", plan.argv[0], errno);
}

}  // namespace

void run_shim(const ChildPlan& const_plan) {
  ChildPlan& plan = const_cast<ChildPlan&>(const_plan);  // our own copy after fork
  const int fd = plan.report_fd;
  // Join the pooled namespaces: user first, as it grants the rights for the rest.
  if (setns(plan.user_ns_fd, CLONE_NEWUSER) != 0) fail(fd, "setns(CLONE_NEWUSER)", nullptr, errno);
  if (setns(plan.net_ns_fd, CLONE_NEWNET) != 0) fail(fd, "setns(CLONE_NEWNET)", nullptr, errno);
  clone_args args;
  memset(&args, 0, sizeof args);
  // CLONE_PARENT: the instance becomes the child of spawn()'s caller, which can
  // then wait for it; the shim exits right away.
  args.flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PARENT;
  const long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0)
    fail(fd, "clone3", "CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWIPC|CLONE_NEWUTS|CLONE_PARENT", errno);
  if (pid == 0) run_instance(plan);
  Report r;
  memset(&r, 0, sizeof r);
  r.type = ReportType::Pid;
  r.pid = static_cast<pid_t>(pid);
  (void)!send(fd, &r, sizeof r, MSG_NOSIGNAL);
  _exit(0);
}

}  // namespace thaw::sandbox::detail
