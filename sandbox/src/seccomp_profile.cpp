// The default seccomp profile: which system calls an instance may make.
#include <cerrno>

#include "sandbox/seccomp.hpp"

namespace thaw::sandbox {

namespace {

SeccompProfile make_default_profile() {
  SeccompProfile p;
  p.name = "default";
  p.default_errno = ENOSYS;
  p.allow = {
      // files and descriptors
      "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
      "pwritev2", "open", "openat", "openat2", "close", "close_range", "creat", "lseek", "dup",
      "dup2", "dup3", "fcntl", "flock", "fsync", "fdatasync", "sync_file_range", "ftruncate",
      "truncate", "fallocate", "fadvise64", "readahead", "sendfile", "splice", "tee", "vmsplice",
      "copy_file_range", "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs",
      "access", "faccessat", "faccessat2", "getdents", "getdents64", "getcwd", "chdir", "fchdir",
      "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "link", "linkat", "unlink",
      "unlinkat", "symlink", "symlinkat", "readlink", "readlinkat", "chmod", "fchmod", "fchmodat",
      "chown", "fchown", "lchown", "fchownat", "umask", "utime", "utimes", "utimensat",
      "futimesat", "mknod", "mknodat", "getxattr", "lgetxattr", "fgetxattr", "listxattr",
      "llistxattr", "flistxattr", "setxattr", "lsetxattr", "fsetxattr", "removexattr",
      "lremovexattr", "fremovexattr", "pipe", "pipe2", "ioctl", "memfd_create", "name_to_handle_at",
      // polling and events
      "select", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1", "epoll_ctl",
      "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd", "signalfd4",
      "timerfd_create", "timerfd_settime", "timerfd_gettime", "inotify_init", "inotify_init1",
      "inotify_add_watch", "inotify_rm_watch", "fanotify_mark", "io_setup", "io_destroy",
      "io_submit", "io_cancel", "io_getevents", "io_pgetevents", "io_uring_setup",
      "io_uring_enter", "io_uring_register",
      // memory
      "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mlock", "mlock2", "munlock",
      "mlockall", "munlockall", "mincore", "msync", "membarrier", "pkey_alloc", "pkey_free",
      "pkey_mprotect", "get_mempolicy", "set_mempolicy", "mbind", "process_madvise",
      // processes, threads and signals
      "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "kill",
      "tkill", "tgkill", "getpid", "getppid", "gettid", "getpgid", "getpgrp", "setpgid",
      "getsid", "setsid", "set_tid_address", "set_robust_list", "get_robust_list", "futex",
      "futex_waitv", "rseq", "arch_prctl", "prctl", "rt_sigaction", "rt_sigprocmask",
      "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
      "rt_sigsuspend", "sigaltstack", "pause", "pidfd_open", "pidfd_send_signal", "pidfd_getfd",
      "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam",
      "sched_setparam", "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
      "sched_get_priority_min", "sched_rr_get_interval", "sched_getattr", "sched_setattr",
      "getpriority", "setpriority", "ioprio_get", "ioprio_set", "capget", "capset",
      "personality",
      // identity (inside the user namespace, without capabilities these only narrow)
      "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
      "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
      "setfsuid", "setfsgid",
      // time
      "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
      "times", "getitimer", "setitimer", "alarm", "timer_create", "timer_settime",
      "timer_gettime", "timer_getoverrun", "timer_delete",
      // resources and system information
      "getrlimit", "setrlimit", "prlimit64", "getrusage", "sysinfo", "uname", "getrandom",
      "getcpu",
      // sockets
      "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
      "getpeername", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
      "shutdown", "setsockopt", "getsockopt",
      // System V and POSIX IPC (private to the instance's IPC namespace)
      "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget",
      "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
      "mq_notify", "mq_getsetattr",
      "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
  };
  p.refuse = {
      "mount", "umount2", "mount_setattr", "move_mount", "open_tree", "fsopen", "fsconfig",
      "fsmount", "fspick", "pivot_root", "chroot", "unshare", "setns", "ptrace",
      "process_vm_readv", "process_vm_writev", "kcmp", "kexec_load", "kexec_file_load", "bpf",
      "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "init_module",
      "finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct", "quotactl",
      "quotactl_fd", "open_by_handle_at", "iopl", "ioperm", "syslog", "sethostname",
      "setdomainname", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
      "lookup_dcookie", "nfsservctl", "vhangup", "uselib", "ustat", "sysfs", "_sysctl",
      "create_module", "get_kernel_syms", "query_module", "move_pages", "migrate_pages",
      "fanotify_init", "modify_ldt", "set_mempolicy_home_node",
  };
  return p;
}

}  // namespace

const SeccompProfile& default_profile() {
  static const SeccompProfile profile = make_default_profile();
  return profile;
}

}  // namespace thaw::sandbox
