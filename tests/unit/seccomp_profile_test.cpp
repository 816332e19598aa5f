#include <gtest/gtest.h>

#include <algorithm>

#include "sandbox/seccomp.hpp"

using namespace thaw::sandbox;

namespace {
bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}
}  // namespace

TEST(SeccompProfile, DefaultRefusesTheDangerousCalls) {
  const auto& p = default_profile();
  for (const char* name : {"mount",
                           "umount2",
                           "pivot_root",
                           "unshare",
                           "setns",
                           "ptrace",
                           "process_vm_readv",
                           "process_vm_writev",
                           "kexec_load",
                           "bpf",
                           "perf_event_open",
                           "userfaultfd",
                           "keyctl",
                           "add_key",
                           "request_key",
                           "init_module",
                           "finit_module",
                           "delete_module",
                           "reboot",
                           "swapon",
                           "acct",
                           "quotactl",
                           "open_by_handle_at",
                           "iopl",
                           "ioperm",
                           "syslog"}) {
    EXPECT_TRUE(contains(p.refuse, name)) << name;
    EXPECT_FALSE(contains(p.allow, name)) << name;
  }
}

TEST(SeccompProfile, DefaultAllowsWhatRuntimesNeed) {
  const auto& p = default_profile();
  for (const char* name : {"read", "write", "openat", "mmap", "futex", "epoll_wait", "execve",
                           "clone", "socket", "connect", "getrandom", "rt_sigaction"}) {
    // clone is handled by its own flag filter
    if (std::string(name) == "clone") {
      EXPECT_TRUE(p.filter_clone_namespace_flags);
      continue;
    }
    EXPECT_TRUE(contains(p.allow, name)) << name;
  }
}

TEST(SeccompProfile, NoCallIsBothAllowedAndRefused) {
  const auto& p = default_profile();
  for (const auto& name : p.refuse) EXPECT_FALSE(contains(p.allow, name)) << name;
}

TEST(SeccompProfile, CompilesToABpfProgram) {
  const auto filter = compile(default_profile());
  ASSERT_NE(filter, nullptr);
  EXPECT_GT(filter->instructions(), 50u);
  EXPECT_EQ(filter->fprog().len, filter->instructions());
}

TEST(SeccompProfile, CompiledOncePerProfile) {
  const auto a = compiled(default_profile());
  const auto b = compiled(default_profile());
  EXPECT_EQ(a.get(), b.get());
  auto other = default_profile();
  other.name = "other";
  other.allow.push_back("uname");
  EXPECT_NE(compiled(other).get(), a.get());
}

TEST(SeccompProfile, FingerprintChangesWithContent) {
  auto p = default_profile();
  const auto before = p.fingerprint();
  p.refuse.push_back("chmod");
  EXPECT_NE(p.fingerprint(), before);
}
