// The escape suite: attacks run as programs inside the sandbox, each asserting
// that it is contained. After each attack, nothing of the instance remains:
// no cgroup, no mount, no leaked namespace descriptor.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

#include "sandbox_harness.hpp"
#include "thaw/error.hpp"

using namespace thaw;
namespace fs = std::filesystem;

namespace {

// Open descriptors, but for cgroup files: the migration primer's thread opens
// its "tasks" file for a moment every few ms after an instance starts
// (sandbox/migration_primer.hpp), which is no leak. Nor is a descriptor
// closed between the listing and its readlink (the primer's, again).
size_t open_fd_count() {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = fs::read_symlink(e.path(), ec).string();
    if (!ec && target.rfind("/sys/fs/cgroup/", 0) != 0) ++n;
  }
  return n;
}

std::string mountinfo() {
  std::ifstream in("/proc/self/mountinfo");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

// An address of this host that is not loopback, for "reach the outside".
std::string host_address() {
  ifaddrs* list = nullptr;
  std::string found = "192.0.2.1";
  if (getifaddrs(&list) != 0) return found;
  for (auto* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof buf);
    if (std::string(buf).rfind("127.", 0) != 0) {
      found = buf;
      break;
    }
  }
  freeifaddrs(list);
  return found;
}

}  // namespace

class Escape : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = itest::sandbox_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    fds_before_ = open_fd_count();
    harness_ = std::make_unique<itest::SandboxHarness>();
    fs::copy_file(ESCAPE_ATTACKS_PY, harness_->code_dir() + "/attacks.py");
    secret_ = "/var/tmp/thaw-secret-" + std::to_string(getpid());
    std::ofstream(secret_) << "host secret\n";
    fs::create_symlink(secret_, harness_->code_dir() + "/escape-link");
  }

  void TearDown() override {
    if (!harness_) return;
    const auto dir = harness_->dir();
    const auto parent = harness_->cgroup_parent();
    harness_.reset();
    fs::remove(secret_);
    // Nothing of the instances remains.
    EXPECT_EQ(mountinfo().find(dir), std::string::npos) << "a mount under " << dir << " remains";
    for (const char* c : {"memory", "cpu", "cpuacct", "pids"}) {
      const auto group = sandbox::controller_mount(c) + "/" + parent;
      EXPECT_FALSE(fs::exists(group)) << group << " remains";
    }
    EXPECT_FALSE(fs::exists(dir)) << dir << " remains";
    EXPECT_EQ(open_fd_count(), fds_before_) << "a descriptor (namespace, pidfd, socket) leaked";
  }

  sandbox::SandboxSpec spec(const std::string& attack, const std::string& arg = "") {
    return harness_->spec({"/usr/bin/python3", "-S", "/var/task/attacks.py", attack, arg});
  }

  itest::RunResult run(const std::string& attack, const std::string& arg = "") {
    return harness_->run(spec(attack, arg));
  }

  // Runs the attack and expects its "CONTAINED ..." line.
  void expect_contained(const std::string& attack, const std::string& arg = "",
                        const std::string& detail = "") {
    const auto r = run(attack, arg);
    EXPECT_EQ(r.out.rfind("CONTAINED", 0), 0u) << attack << ": " << r.out << r.err;
    if (!detail.empty()) {
      EXPECT_NE(r.out.find(detail), std::string::npos) << r.out;
    }
    EXPECT_FALSE(r.status.signaled) << r.status.describe() << "\n" << r.err;
  }

  std::unique_ptr<itest::SandboxHarness> harness_;
  std::string secret_;
  size_t fds_before_ = 0;
};

TEST_F(Escape, ReadEtcShadow) {
  expect_contained("read_shadow");
}
TEST_F(Escape, ReadAHostFileOutsideTheRoot) {
  expect_contained("read_host_file", secret_);
}
TEST_F(Escape, WriteToUsr) {
  expect_contained("write_usr", "", "EROFS");
}
TEST_F(Escape, WriteToVarTask) {
  expect_contained("write_task", "", "EROFS");
}
TEST_F(Escape, WriteToAFileSystemMountedBelowAReadOnlyBind) {
  const auto below = harness_->code_dir() + "/mounted";
  fs::create_directories(below);
  ASSERT_EQ(mount("thaw-test-below", below.c_str(), "tmpfs", 0, "mode=0777,size=1m"), 0)
      << strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{below};
  expect_contained("write_submount", "", "EROFS");
}
TEST_F(Escape, WriteToTheRoot) {
  expect_contained("write_root", "", "EROFS");
}
TEST_F(Escape, ListHostProcesses) {
  expect_contained("list_host_processes");
}

TEST_F(Escape, ReadInitsEnvironment) {
  setenv("THAW_HOST_MARKER", "host-only-value", 1);
  expect_contained("read_init_environ", "host-only-value");
}

TEST_F(Escape, SignalAHostPid) {
  expect_contained("signal_host_pid", std::to_string(getpid()), "ESRCH");
}
TEST_F(Escape, Ptrace) {
  expect_contained("ptrace", "", "EPERM");
}
TEST_F(Escape, Mount) {
  expect_contained("mount", "", "EPERM");
}
TEST_F(Escape, Umount) {
  expect_contained("umount", "", "EPERM");
}
TEST_F(Escape, Unshare) {
  expect_contained("unshare", "", "EPERM");
}
TEST_F(Escape, CloneANewUserNamespace) {
  expect_contained("clone_newuser", "", "EPERM");
}
TEST_F(Escape, Setns) {
  expect_contained("setns", "", "EPERM");
}
TEST_F(Escape, Chroot) {
  expect_contained("chroot", "", "EPERM");
}
TEST_F(Escape, PivotRoot) {
  expect_contained("pivot_root", "", "EPERM");
}
TEST_F(Escape, LoadAKernelModule) {
  expect_contained("load_module", "", "EPERM");
}

TEST_F(Escape, ConnectToAHostPortOnLoopback) {
  // A real listener on the host's loopback: the instance's loopback is another one.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  expect_contained("connect_host_port", std::to_string(ntohs(addr.sin_port)), "ECONNREFUSED");
  expect_contained("connect_host_port", "8080", "ECONNREFUSED");
  close(fd);
}

TEST_F(Escape, ReachTheHostsNetwork) {
  expect_contained("connect_outside", host_address(), "ENETUNREACH");
}
TEST_F(Escape, OnlyLoopbackExists) {
  expect_contained("network_interfaces");
}
TEST_F(Escape, OpenDevMemKmemOrABlockDevice) {
  expect_contained("dev_mem");
}
TEST_F(Escape, MakeADeviceNode) {
  expect_contained("mknod", "", "EPERM");
}
TEST_F(Escape, RawSocket) {
  expect_contained("raw_socket", "", "EPERM");
}
TEST_F(Escape, PacketSocket) {
  expect_contained("packet_socket", "", "EAFNOSUPPORT");
}
TEST_F(Escape, IoUring) {
  expect_contained("io_uring", "", "EPERM");
}
TEST_F(Escape, VsockReachesNoHypervisor) {
  expect_contained("vsock", "", "EAFNOSUPPORT");
}
TEST_F(Escape, NetlinkAuditSocket) {
  expect_contained("netlink_audit", "", "EPROTONOSUPPORT");
}
TEST_F(Escape, RouteNetlinkAndUnixSocketsStillOpen) {
  expect_contained("netlink_route");
}
TEST_F(Escape, CoreDumpsStayOffAndTheLimitStays) {
  expect_contained("core_dump", "", "EPERM");
}

TEST_F(Escape, ChangeTheHostsHostname) {
  char before[256] = {};
  gethostname(before, sizeof before);
  expect_contained("sethostname", "", "EPERM");
  char after[256] = {};
  gethostname(after, sizeof after);
  EXPECT_STREQ(before, after);
}

TEST_F(Escape, WriteToProcSys) {
  expect_contained("write_proc_sys");
}
TEST_F(Escape, TriggerSysrq) {
  expect_contained("sysrq");
}
TEST_F(Escape, ReachSys) {
  expect_contained("reach_sys", "", "ENOENT");
}
TEST_F(Escape, Keyctl) {
  expect_contained("keyctl", "", "EPERM");
}
TEST_F(Escape, AddKey) {
  expect_contained("add_key", "", "EPERM");
}
TEST_F(Escape, Bpf) {
  expect_contained("bpf", "", "EPERM");
}
TEST_F(Escape, PerfEventOpen) {
  expect_contained("perf_event_open", "", "EPERM");
}
TEST_F(Escape, Userfaultfd) {
  expect_contained("userfaultfd", "", "EPERM");
}
TEST_F(Escape, ProcessVmReadv) {
  expect_contained("process_vm_readv", "", "EPERM");
}
TEST_F(Escape, OpenByHandleAt) {
  expect_contained("open_by_handle_at", "", "EPERM");
}
TEST_F(Escape, Kexec) {
  expect_contained("kexec", "", "EPERM");
}
TEST_F(Escape, Reboot) {
  expect_contained("reboot", "", "EPERM");
}
TEST_F(Escape, Iopl) {
  expect_contained("iopl", "", "EPERM");
}
TEST_F(Escape, Syslog) {
  expect_contained("syslog", "", "EPERM");
}
TEST_F(Escape, Swapon) {
  expect_contained("swapon", "", "EPERM");
}
TEST_F(Escape, SymlinkInTheCodePackagePointingOutside) {
  expect_contained("symlink_out", "", "ENOENT");
}
TEST_F(Escape, RaiseRlimits) {
  expect_contained("raise_rlimit", "", "EPERM");
}
TEST_F(Escape, NoCapabilitiesNoNewPrivsSeccompOn) {
  expect_contained("capabilities");
}
TEST_F(Escape, SetuidBinaryGainsNothing) {
  expect_contained("setuid_binary");
}
TEST_F(Escape, InjectTerminalInput) {
  expect_contained("tiocsti", "", "EPERM");
}

TEST_F(Escape, ForeignArchitectureSystemCallIsKilled) {
  const auto r = run("i386_syscall");
  EXPECT_EQ(r.out.find("ESCAPED"), std::string::npos) << r.out;
  EXPECT_TRUE(r.status.signaled) << r.out << r.err;
  // A kernel without IA32 emulation faults on int 0x80 before seccomp sees
  // it (SIGSEGV, as on this machine kind); with emulation the filter kills (SIGSYS).
  const pid_t probe = fork();
  if (probe == 0) {
    execl("/usr/bin/python3", "python3", "-S", ESCAPE_ATTACKS_PY, "i386_syscall", nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(probe, &status, 0);
  const bool host_runs_i386 = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  EXPECT_EQ(r.status.code, host_runs_i386 ? SIGSYS : SIGSEGV) << r.status.describe();
}

TEST_F(Escape, ReadAnotherInstancesTmp) {
  const auto a = harness_->start(spec("write_secret", "instance-a"));
  EXPECT_EQ(a->wait().code, 0);
  expect_contained("read_other_tmp");
}

TEST_F(Escape, FillTmpStopsAtTheLimit) {
  // The harness gives each instance a 64 MB /tmp.
  const auto r = run("fill_tmp");
  EXPECT_EQ(r.out.rfind("CONTAINED", 0), 0u) << r.out << r.err;
  EXPECT_NE(r.out.find("ENOSPC"), std::string::npos) << r.out;
  const int mb = std::atoi(r.out.c_str() + r.out.find("after ") + 6);
  EXPECT_LE(mb, 64);
}

TEST_F(Escape, MemoryBombIsKilledInItsOwnCgroupAndReportedAsOutOfMemory) {
  auto s = spec("memory_bomb");
  s.cgroup.memory_bytes = 64ull << 20;
  const auto r = harness_->run(s);
  EXPECT_TRUE(r.status.signaled) << r.out << r.err;
  EXPECT_EQ(r.status.code, SIGKILL);
  EXPECT_TRUE(r.status.out_of_memory) << r.status.describe();
  EXPECT_EQ(r.status.describe(), "killed: out of memory");
  // The host (this test process) is untouched and can still start instances.
  EXPECT_EQ(harness_->run(std::vector<std::string>{"/bin/true"}).status.code, 0);
}

TEST_F(Escape, ForkBombHitsThePidsLimitAndTheHostStaysResponsive) {
  auto s = spec("fork_bomb");
  s.cgroup.pids_max = 32;
  const auto started = std::chrono::steady_clock::now();
  const auto r = harness_->run(s);
  EXPECT_EQ(first_line(r.out).rfind("CONTAINED fork refused after", 0), 0u) << r.out << r.err;
  const int children = std::atoi(r.out.c_str() + r.out.find("after ") + 6);
  EXPECT_LT(children, 32);
  // The host still forks and answers at once.
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  ASSERT_GT(pid, 0);
  int status;
  waitpid(pid, &status, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
}
