#pragma once
// What the child does between clone and execve. Everything it needs is
// prepared by the parent in a ChildPlan: the child makes plain system calls
// only, never allocates, and reports a failure as (step, errno, detail).

#include <linux/filter.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <vector>

#include "sandbox/mount_plan.hpp"

namespace thaw::sandbox::detail {

struct ChildMount {
  MountKind kind;
  const char* source;
  const char* target;
};

struct ChildRlimit {
  int resource;
  rlim_t value;
};

struct ChildPlan {
  int report_fd = -1;  // SEQPACKET to the parent, close-on-exec
  int user_ns_fd = -1;
  int net_ns_fd = -1;
  const char* root_dir = nullptr;
  std::vector<ChildMount> mounts;
  const char* hostname = nullptr;
  const char* cwd = nullptr;
  uid_t uid = 0;
  gid_t gid = 0;
  int cap_last = 40;
  std::vector<ChildRlimit> rlimits;
  sock_fprog seccomp{0, nullptr};
  std::vector<int> fds;     // becomes 0, 1, 2, ...; -1 means /dev/null
  int fd_scratch_base = 0;  // above every fd in `fds` and report_fd
  char* const* argv = nullptr;
  char* const* envp = nullptr;
};

// Messages on the report socket.
enum class ReportType : int { Pid = 1, Failure = 2 };
struct Report {
  ReportType type;
  pid_t pid;
  int err;
  char step[48];
  char detail[200];
};

// Runs in the process forked by spawn(): joins the namespaces, clones the
// instance with CLONE_PARENT (so spawn's caller is its parent), reports its pid
// and exits. The instance itself continues in run_instance().
[[noreturn]] void run_shim(const ChildPlan& plan);

}  // namespace thaw::sandbox::detail
