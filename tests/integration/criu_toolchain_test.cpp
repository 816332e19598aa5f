// Proves the tool chain: a process in new user, pid, mount and network
// namespaces (the real sandbox), checkpointed with the installed CRIU,
// restored, still answers with the state it had.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "sandbox/cgroup.hpp"
#include "sandbox_harness.hpp"
#include "snapshots/criu.hpp"
#include "snapshots/criu_environment.hpp"
#include "thaw/error.hpp"

using namespace thaw;
namespace fs = std::filesystem;

namespace {

// Counts SIGUSR1s and writes the count to /tmp/count; "ready" once its handler is in place.
constexpr const char* kCounter = R"(
import os, signal
n = 0
def bump(*_):
    global n
    n += 1
    with open('/tmp/count.new', 'w') as f:
        f.write(str(n))
    os.rename('/tmp/count.new', '/tmp/count')
signal.signal(signal.SIGUSR1, bump)
open('/tmp/ready', 'w').close()
while True:
    signal.pause()
)";

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Waits for `path` to hold `want` (the counter writes it from a signal handler).
bool wait_for_content(const std::string& path, const std::string& want) {
  for (int i = 0; i < 500; ++i) {
    if (fs::exists(path) && read_all(path) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

TEST(CriuToolchain, CheckpointAndRestoreASandboxedProcess) {
  if (auto why = itest::sandbox_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  const auto criu = snapshots::probe_criu();
  if (!criu.usable())
    GTEST_SKIP() << "CRIU 4.2+ with a passing `criu check` is needed; found \"" << criu.version
                 << "\" at \"" << criu.path << "\"";
  // As thawd does (before any thread): restores then use its cgroup yard.
  snapshots::prepare_criu_environment();
  // The restored tree is reparented to us, so we can reap it.
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  itest::SandboxHarness h;
  auto spec = h.spec({"/usr/bin/python3", "-S", "-c", kCounter});
  std::string tmp_dir;
  for (const auto& m : spec.mounts)
    if (m.target == "tmp") tmp_dir = m.source;
  auto inst = h.start(spec);
  ASSERT_TRUE(wait_for_content(tmp_dir + "/ready", ""));
  kill(inst->pid(), SIGUSR1);
  ASSERT_TRUE(wait_for_content(tmp_dir + "/count", "1"));
  kill(inst->pid(), SIGUSR1);
  ASSERT_TRUE(wait_for_content(tmp_dir + "/count", "2"));

  const auto images = h.dir() + "/images";
  fs::create_directories(images);
  snapshots::DumpRequest dump;
  dump.pid = inst->pid();
  dump.images_dir = images;
  std::vector<std::pair<std::string, std::string>> map;
  for (const auto& m : spec.mounts) {
    if (m.kind != sandbox::MountKind::Bind && m.kind != sandbox::MountKind::ReadOnlyBind) continue;
    const auto key = "m" + std::to_string(map.size());
    dump.external_mounts.push_back({"/" + m.target, key});
    map.push_back({key, m.source});
  }
  dump.extra_args = {"--empty-ns", "net", "--network-lock", "skip"};  // as thawd
  dump.owner = h.mapping().owner();
  ASSERT_NO_THROW(snapshots::dump(criu.path, dump));
  EXPECT_TRUE(inst->wait().signaled);  // dump ends the original

  // The restored copy goes into a cgroup of its own.
  sandbox::InstanceCgroup restored_group(h.cgroup_parent() + "/restored", spec.cgroup);
  snapshots::RestoreRequest restore;
  restore.images_dir = images;
  restore.owner = h.mapping().owner();
  restore.root = spec.root_dir;
  restore.mount_map = map;
  const auto root = "/" + restored_group.path();
  restore.extra_args = {"--empty-ns", "net", "--network-lock", "skip"};  // as thawd
  for (const auto& c : restored_group.controllers()) {
    restore.extra_args.push_back("--cgroup-root");
    restore.extra_args.push_back(c + ":" + root);
  }
  pid_t pid = -1;
  try {
    pid = snapshots::restore(criu.path, restore);
  } catch (const Error& e) {
    FAIL() << e.what();
  }
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  ASSERT_TRUE(pidfd) << "restored pid " << pid << " is gone";

  const auto cgroups = read_all("/proc/" + std::to_string(pid) + "/cgroup");
  EXPECT_NE(cgroups.find("memory:" + root + "\n"), std::string::npos) << cgroups;

  // It remembers the count it had, and still answers.
  kill(pid, SIGUSR1);
  EXPECT_TRUE(wait_for_content(tmp_dir + "/count", "3")) << read_all(tmp_dir + "/count");

  syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
  int status;
  waitpid(pid, &status, 0);
}

TEST(CriuEnvironment, MountsEveryCgroupHierarchyOfThisProcessInTheYard) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  snapshots::prepare_criu_environment();  // a private mount namespace: gone with us
  const auto yard = snapshots::cgroup_yard();
  ASSERT_FALSE(yard.empty());
  // CRIU names a hierarchy's directory by its controllers, "name=" dropped,
  // "unified" for cgroup2. Finding ourselves in the right cgroup.procs proves
  // the directory holds that hierarchy's root.
  const auto memberships = sandbox::cgroup_memberships("/proc/self/cgroup");
  for (const auto& m : memberships) {
    std::string controllers = m.controllers;
    for (size_t at; (at = controllers.find("name=")) != std::string::npos;)
      controllers.erase(at, 5);
    const auto dir = controllers.empty() ? "unified" : controllers;
    const auto procs = yard + "/" + dir + m.path + "/cgroup.procs";
    std::ifstream in(procs);
    ASSERT_TRUE(in) << "no " << procs << " for " << m.controllers << ":" << m.path;
    bool found = false;
    for (pid_t p; in >> p;) found |= p == getpid();
    EXPECT_TRUE(found) << "this process is not in " << procs;
  }
  EXPECT_FALSE(memberships.empty());
}

// A criu an operator named (thawd --criu) that is wrong in some way leaves
// snapshots off with the reason, and never holds thawd's start-up.
class CriuProbe : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/thaw-probe-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string script(const std::string& name, const std::string& text) {
    auto path = dir_ + "/" + name;
    std::ofstream(path) << text;
    fs::permissions(path, fs::perms(0755));
    return path;
  }
  std::string dir_;
};

TEST_F(CriuProbe, ABinaryThatCannotBeStartedIsNotUsable) {
  const auto info = snapshots::probe_criu(script("no-interpreter", "echo criu\n"));
  EXPECT_FALSE(info.usable());
  EXPECT_NE(info.check_output.find("spawn"), std::string::npos) << info.check_output;
  const auto missing = snapshots::probe_criu(dir_ + "/none");
  EXPECT_TRUE(missing.path.empty());
  EXPECT_NE(missing.check_output.find("is not an executable file"), std::string::npos);
}

TEST_F(CriuProbe, ACheckThatFailsSilentlySaysHowItEnded) {
  const auto info = snapshots::probe_criu(
      script("old-criu",
             "#!/bin/sh\n"
             "if [ \"$1\" = --version ]; then echo 'Version: 3.17'; exit 0; fi\n"
             "exit 3\n"));
  EXPECT_FALSE(info.usable());
  EXPECT_EQ(info.version, "3.17");
  EXPECT_NE(info.check_output.find("exit status 3"), std::string::npos) << info.check_output;
}

TEST_F(CriuProbe, ABinaryThatHangsIsKilledAtTheDeadline) {
  const auto pid_file = dir_ + "/pid";
  const auto started = std::chrono::steady_clock::now();
  const auto info = snapshots::probe_criu(
      script("hangs", "#!/bin/sh\necho $$ > " + pid_file + "\nexec sleep 600\n"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  EXPECT_FALSE(info.usable());
  EXPECT_NE(info.check_output.find("did not end within"), std::string::npos) << info.check_output;
  pid_t pid = 0;
  std::ifstream(pid_file) >> pid;
  ASSERT_GT(pid, 0);
  EXPECT_NE(kill(pid, 0), 0);  // killed and reaped
}
