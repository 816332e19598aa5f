// The sandbox, end to end: real namespaces, cgroups, mounts and seccomp.
#include <gtest/gtest.h>

#include "sandbox/error.hpp"
#include "sandbox_harness.hpp"

using namespace thaw;
using thaw::itest::SandboxHarness;

class Sandbox : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = itest::sandbox_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    harness = std::make_unique<SandboxHarness>();
  }
  std::unique_ptr<SandboxHarness> harness;
};

TEST_F(Sandbox, RunsAsUnprivilegedUserWithOwnHostname) {
  auto r = harness->run({"/bin/sh", "-c", "id -u; id -g; id -G; hostname"});
  EXPECT_EQ(r.status.code, 0) << r.err;
  EXPECT_EQ(r.out, "1000\n1000\n1000\nthaw\n");
}

TEST_F(Sandbox, IsPidOneInItsOwnPidNamespace) {
  // The glob is expanded by the shell itself: no other process exists.
  auto r = harness->run({"/bin/sh", "-c", "echo $$ /proc/[0-9]*"});
  EXPECT_EQ(r.status.code, 0) << r.err;
  EXPECT_EQ(r.out, "1 /proc/1\n");
}

TEST_F(Sandbox, SeesOnlyItsMinimalRoot) {
  auto r = harness->run({"/bin/sh", "-c", "ls / | tr '\\n' ' '; ls /dev | tr '\\n' ' '"});
  EXPECT_EQ(r.status.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "bin dev etc lib lib64 opt proc sbin tmp usr var fd full null random shm stderr stdin "
            "stdout urandom zero ");
}

TEST_F(Sandbox, ChildSetupFailureComesBackWithStepAndErrno) {
  auto spec = harness->spec({"/usr/bin/does-not-exist"});
  try {
    harness->run(spec);
    FAIL() << "spawn succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "sandbox: execve(/usr/bin/does-not-exist): No such file or directory");
    EXPECT_EQ(e.error_number(), ENOENT);
  }
}

TEST_F(Sandbox, ExitCodeAndSignalAreReported) {
  EXPECT_EQ(harness->run({"/bin/sh", "-c", "exit 7"}).status.code, 7);
  // A fault is delivered even to a namespace's init.
  auto r = harness->run({"/usr/bin/python3", "-c", "import ctypes; ctypes.string_at(0)"});
  EXPECT_TRUE(r.status.signaled);
  EXPECT_EQ(r.status.code, SIGSEGV);
  EXPECT_FALSE(r.status.out_of_memory);
}

TEST_F(Sandbox, KillEndsTheWholeTree) {
  auto spec = harness->spec({"/bin/sh", "-c", "sleep 100 & sleep 100"});
  auto inst = harness->start(spec);
  EXPECT_FALSE(inst->wait_for(std::chrono::milliseconds(100)).has_value());
  inst->kill();
  auto status = inst->wait();
  EXPECT_TRUE(status.signaled);
  EXPECT_EQ(status.code, SIGKILL);
}

TEST_F(Sandbox, TearDownRemovesTheCgroup) {
  auto inst = harness->start(harness->spec({"/bin/true"}));
  const auto dirs = inst->cgroup().directories();
  ASSERT_FALSE(dirs.empty());
  for (const auto& d : dirs) EXPECT_EQ(access(d.c_str(), F_OK), 0) << d;
  inst->wait();
  inst.reset();
  for (const auto& d : dirs) EXPECT_NE(access(d.c_str(), F_OK), 0) << d;
}
