// The sandbox, end to end: real namespaces, cgroups, mounts and seccomp.
#include <gtest/gtest.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "sandbox/cgroup.hpp"
#include "sandbox/cgroup_spares.hpp"
#include "sandbox/migration_primer.hpp"
#include "sandbox/rootfs.hpp"
#include "sandbox_harness.hpp"
#include "thaw/error.hpp"
#include "thaw/work_queue.hpp"

using namespace thaw;
using thaw::itest::SandboxHarness;
namespace fs = std::filesystem;

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

namespace {
ino_t inode_of(int fd) {
  struct stat st {};
  fstat(fd, &st);
  return st.st_ino;
}
std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}
}  // namespace

TEST_F(Sandbox, NetworkNamespaceIsOwnedByTheInstancesUserNamespace) {
  auto ns = sandbox::make_user_net_namespaces(harness->mapping());
  UniqueFd owner(ioctl(ns.net.get(), NS_GET_USERNS));
  ASSERT_TRUE(owner) << strerror(errno);
  EXPECT_EQ(inode_of(owner.get()), inode_of(ns.user.get()));
}

TEST_F(Sandbox, PoolHandsOutEachPairOnceAndRefills) {
  sandbox::NamespacePool pool(3);
  pool.wait_ready(harness->mapping(), 3);
  EXPECT_EQ(pool.ready(harness->mapping()), 3u);
  std::set<ino_t> seen;
  std::vector<sandbox::UserNetNamespaces> held;
  for (int i = 0; i < 6; ++i) {  // more than the pool holds: the rest are made on demand
    held.push_back(pool.acquire(harness->mapping()));
    EXPECT_TRUE(seen.insert(inode_of(held.back().net.get())).second)
        << "a network namespace was handed out twice";
  }
  pool.wait_ready(harness->mapping(), 3);
  EXPECT_EQ(pool.ready(harness->mapping()), 3u);
}

// Each mapping's pairs are owned by its host uid (the function's), and the
// pool keeps pairs only for mappings acquired lately.
TEST_F(Sandbox, PoolKeepsPairsPerRecentMappingOwnedByItsHostUid) {
  const auto first = harness->mapping();
  auto second = first;
  second.host_base += sandbox::kIdRangeSize;
  const auto owner_of = [](const sandbox::UserNetNamespaces& ns) {
    uid_t owner = 0;
    EXPECT_EQ(ioctl(ns.user.get(), NS_GET_OWNER_UID, &owner), 0) << strerror(errno);
    return owner;
  };
  sandbox::NamespacePool pool(2, 1, std::chrono::milliseconds(500));
  EXPECT_EQ(owner_of(pool.acquire(first)), first.owner());
  pool.wait_ready(first, 2);
  EXPECT_EQ(pool.ready(first), 2u);
  // One mapping at a time here: the second takes the first one's place.
  EXPECT_EQ(owner_of(pool.acquire(second)), second.owner());
  EXPECT_EQ(pool.ready(first), 0u);
  pool.wait_ready(second, 2);
  EXPECT_EQ(owner_of(pool.acquire(second)), second.owner()) << "a pooled pair";
  // Not acquired for longer than the expiry: released.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (pool.ready(second) != 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(pool.ready(second), 0u);
}

TEST_F(Sandbox, LoopbackIsUpInside) {
  auto r =
      harness->run({"/usr/bin/python3", "-S", "-c",
                    "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(1);"
                    "c=socket.create_connection(s.getsockname()); a,_=s.accept(); c.send(b'hi');"
                    "print(a.recv(2).decode())"});
  EXPECT_EQ(r.status.code, 0) << r.err;
  EXPECT_EQ(r.out, "hi\n");
}

TEST_F(Sandbox, CgroupLimitsAreApplied) {
  auto spec = harness->spec({"/bin/sleep", "30"});
  spec.cgroup.memory_bytes = 200ull << 20;
  spec.cgroup.pids_max = 42;
  spec.cgroup.cpus = sandbox::cpus_for_memory(200);
  auto inst = harness->start(spec);
  const auto layout = sandbox::detect_cgroup_layout();
  const auto mem = sandbox::controller_mount("memory") + "/" + inst->cgroup().path();
  const auto pids = sandbox::controller_mount("pids") + "/" + inst->cgroup().path();
  const auto cpu = sandbox::controller_mount("cpu") + "/" + inst->cgroup().path();
  if (layout.version_of("memory") == 1) {
    EXPECT_EQ(read_text(mem + "/memory.limit_in_bytes"), std::to_string(200ull << 20));
    EXPECT_EQ(read_text(cpu + "/cpu.cfs_quota_us"), "11306");  // 200/1769 of 100 ms
  } else {
    EXPECT_EQ(read_text(mem + "/memory.max"), std::to_string(200ull << 20));
  }
  EXPECT_EQ(read_text(pids + "/pids.max"), "42");
  // The instance's process is in the group.
  EXPECT_NE(read_text(pids + "/cgroup.procs").find(std::to_string(inst->pid())), std::string::npos);
}

TEST_F(Sandbox, UsageReportsPeakMemoryAndCpuTime) {
  auto inst = harness->start(harness->spec(
      {"/usr/bin/python3", "-S", "-c",
       "import time\nb = bytearray(80 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
       "t = time.process_time()\nwhile time.process_time() - t < 0.2: pass"}));
  EXPECT_EQ(inst->wait().code, 0);
  const auto u = inst->usage();
  EXPECT_GE(u.memory_peak_bytes, 80ull << 20);
  EXPECT_LT(u.memory_peak_bytes, 256ull << 20);
  EXPECT_GE(u.cpu_usage_ns, 200'000'000ull);
  EXPECT_EQ(u.oom_kills, 0u);
}

TEST_F(Sandbox, SpawnRecordsTheTimeOfEachStep) {
  auto inst = harness->start(harness->spec({"/bin/true"}));
  const auto& t = inst->timings();
  EXPECT_GT(t.cgroup_us, 0);
  EXPECT_GT(t.clone_us, 0);
  EXPECT_GT(t.child_setup_us, 0);
  inst->wait();
}

TEST_F(Sandbox, OrphanCgroupsOfACrashedThawdAreReaped) {
  // What a crashed thawd leaves: groups with no process in them...
  for (const char* c : {"memory", "pids"}) {
    const auto dir =
        sandbox::controller_mount(c) + "/" + harness->cgroup_parent() + "/orphan-1/nested";
    std::filesystem::create_directories(dir);
  }
  // ...next to a live instance, whose group must survive.
  auto live = harness->start(harness->spec({"/bin/sleep", "30"}));
  EXPECT_GE(sandbox::reap_orphan_cgroups(harness->cgroup_parent()), 4);
  for (const char* c : {"memory", "pids"})
    EXPECT_FALSE(std::filesystem::exists(sandbox::controller_mount(c) + "/" +
                                         harness->cgroup_parent() + "/orphan-1"));
  for (const auto& d : live->cgroup().directories()) EXPECT_TRUE(std::filesystem::exists(d)) << d;
}

TEST_F(Sandbox, InvalidSpecsAreRefusedWithTheReason) {
  auto root = harness->spec({"/bin/true"});
  root.uid = 0;
  EXPECT_THROW(harness->start(root), Error);
  auto relative = harness->spec({"bin/true"});
  try {
    harness->start(relative);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("argv[0] must be an absolute path"), std::string::npos)
        << e.what();
  }
}

TEST(CgroupLayout, DetectsThisHostsLayout) {
  const auto layout = sandbox::detect_cgroup_layout();
  if (access("/sys/fs/cgroup/unified", F_OK) == 0) {
    EXPECT_EQ(layout.mode, sandbox::CgroupMode::Hybrid);
  }
  if (access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0) {
    EXPECT_EQ(layout.version_of("memory"), 1);
  }
  if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
    EXPECT_EQ(layout.mode, sandbox::CgroupMode::V2);
  }
  EXPECT_NE(layout.version_of("memory"), 0);
  EXPECT_NE(layout.version_of("pids"), 0);
}

namespace {
// Every thread's cgroups, as the kernel reports them.
std::string all_thread_cgroups() {
  std::string out;
  for (const auto& t : std::filesystem::directory_iterator("/proc/self/task"))
    out += read_text(t.path().string() + "/cgroup") + "\n";
  return out;
}
bool wait_for_primed_moves(uint64_t above) {
  for (int i = 0; i < 400 && sandbox::task_migrations_primed() <= above; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return sandbox::task_migrations_primed() > above;
}
}  // namespace

// What thawd does at start to the instances a killed thawd of its state
// directory left running: their processes end, other groups' do not.
TEST_F(Sandbox, EndingAGroupsProcessesKillsThemAndTouchesNoOtherGroup) {
  const std::string parent = "thaw-test-end-" + std::to_string(getpid());
  struct Cleanup {
    std::string parent;
    std::vector<pid_t> pids;
    std::unique_ptr<sandbox::InstanceCgroup> a, b;
    ~Cleanup() {
      for (pid_t p : pids) {
        kill(p, SIGKILL);
        waitpid(p, nullptr, 0);
      }
      a.reset();
      b.reset();
      sandbox::remove_cgroup_parent(parent);
    }
  } c{parent, {}, nullptr, nullptr};
  sandbox::CgroupLimits limits;
  limits.memory_bytes = 64ull << 20;
  limits.pids_max = 16;
  c.a = std::make_unique<sandbox::InstanceCgroup>(parent + "/a", limits);
  c.b = std::make_unique<sandbox::InstanceCgroup>(parent + "/b", limits);
  for (int i = 0; i < 2; ++i) {
    const pid_t p = fork();
    ASSERT_GE(p, 0);
    if (p == 0) {
      pause();
      _exit(0);
    }
    c.pids.push_back(p);
  }
  c.a->attach(c.pids[0]);
  c.b->attach(c.pids[1]);
  EXPECT_TRUE(sandbox::end_group_processes(parent, "a", std::chrono::seconds(5)));
  int status = 0;
  ASSERT_EQ(waitpid(c.pids[0], &status, 0), c.pids[0]);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  c.pids.erase(c.pids.begin());
  EXPECT_EQ(waitpid(c.pids[0], &status, WNOHANG), 0) << "a process of another group was ended";
  // A group that does not exist is empty.
  EXPECT_TRUE(sandbox::end_group_processes(parent, "none", std::chrono::seconds(1)));
}

TEST_F(Sandbox, StartingAnInstancePrimesTheCgroupMoveWithoutMovingThawd) {
  // Starts the primer's thread, without keeping the lock warm afterwards.
  sandbox::prime_task_migration(std::chrono::milliseconds(0));
  ASSERT_TRUE(wait_for_primed_moves(0)) << "no priming move was made";
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto before = all_thread_cgroups();
  const auto primed = sandbox::task_migrations_primed();
  auto r = harness->run(std::vector<std::string>{"/bin/true"});
  EXPECT_EQ(r.status.code, 0) << r.err;
  EXPECT_TRUE(wait_for_primed_moves(primed)) << "spawn() did not prime the move";
  EXPECT_EQ(all_thread_cgroups(), before);
}

TEST_F(Sandbox, TheCgroupMoveIsKeptWarmForAWhileAfterAStartThenLeftAlone) {
  using std::chrono::milliseconds;
  sandbox::prime_task_migration(milliseconds(400));
  ASSERT_TRUE(wait_for_primed_moves(0)) << "no priming move was made";
  const auto first = sandbox::task_migrations_primed();
  std::this_thread::sleep_for(milliseconds(150));
  // A move every 3 ms while the window is open; a loaded machine makes fewer.
  EXPECT_GE(sandbox::task_migrations_primed(), first + 5);
  std::this_thread::sleep_for(milliseconds(600));  // the window has closed
  const auto after = sandbox::task_migrations_primed();
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(sandbox::task_migrations_primed(), after);
}

namespace {

// Spares exist only where every hierarchy thaw uses is cgroup v1.
bool spares_possible() {
  const auto layout = sandbox::detect_cgroup_layout();
  for (const char* c : {"memory", "cpu", "pids"})
    if (layout.version_of(c) == 2) return false;
  return true;
}

// A cgroup parent of a test's own, removed with its spares whatever happens.
struct SpareParent {
  std::string name;
  explicit SpareParent(const std::string& prefix) : name(prefix + std::to_string(getpid())) {}
  ~SpareParent() { sandbox::remove_cgroup_parent(name); }
  bool wait_ready(size_t n) const {
    for (int i = 0; i < 1000 && sandbox::cgroup_spares_ready(name) != n; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return sandbox::cgroup_spares_ready(name) == n;
  }
};

}  // namespace

// The next spare is made a pause (30 ms) after a take, not beside the start
// that took one: making a group and the start's own group work take the same
// kernel locks. (Making one took 10-20 ms in the sanitizer build here.)
TEST_F(Sandbox, ASpareIsRemadeOnlyAPauseAfterATake) {
  if (!spares_possible()) GTEST_SKIP() << "cgroup2 cannot rename a group: no spares";
  const SpareParent spares("thaw-test-spare-pause-");
  const auto& parent = spares.name;
  sandbox::keep_cgroup_spares(parent, 2);
  ASSERT_TRUE(spares.wait_ready(2));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the last take is long past

  const auto taken_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(sandbox::take_cgroup_spare(parent, "a"));
  bool early = false;
  for (;;) {
    const auto ready = sandbox::cgroup_spares_ready(parent);
    // Measured after the count was read: a count read this soon is conclusive.
    if (std::chrono::steady_clock::now() - taken_at >= std::chrono::milliseconds(28)) break;
    if (ready == 2) early = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_FALSE(early) << "a spare was made within 28 ms of the take";
  EXPECT_TRUE(spares.wait_ready(2)) << "the spare was never made again";
}

// Spare groups made ahead: a new group is a spare renamed into place with the
// instance's limits; the spares are made again after a pause and removed with
// the parent.
TEST_F(Sandbox, AGroupIsASpareRenamedIntoPlaceWithItsLimits) {
  if (!spares_possible()) GTEST_SKIP() << "cgroup2 cannot rename a group: no spares";
  const SpareParent spares("thaw-test-spares-");
  const auto& parent = spares.name;
  const auto spare_names = [&](const std::string& controller) {
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& e :
         fs::directory_iterator(sandbox::controller_mount(controller) + "/" + parent, ec))
      if (e.path().filename().string().rfind("spare.", 0) == 0)
        names.insert(e.path().filename().string());
    return names;
  };
  const auto spares_in = [&](const std::string& controller) {
    return static_cast<int>(spare_names(controller).size());
  };

  sandbox::keep_cgroup_spares(parent, 2);
  ASSERT_TRUE(spares.wait_ready(2));
  EXPECT_EQ(spares_in("memory"), 2);
  EXPECT_EQ(spares_in("pids"), 2);
  const auto before = spare_names("memory");
  ASSERT_EQ(spare_names("pids"), before);

  sandbox::CgroupLimits limits;
  limits.memory_bytes = 96ull << 20;
  limits.pids_max = 7;
  {
    sandbox::InstanceCgroup g(parent + "/a", limits);
    EXPECT_EQ(sandbox::cgroup_spares_taken(parent), 1u);
    // One of the spares is gone from every hierarchy: it is the new group now.
    // (A new spare may already be there under another name.)
    for (const char* c : {"memory", "pids"}) {
      std::set<std::string> left;
      for (const auto& n : spare_names(c))
        if (before.count(n)) left.insert(n);
      EXPECT_EQ(left.size(), 1u) << c;
    }
    const auto mem = sandbox::controller_mount("memory") + "/" + g.path();
    EXPECT_EQ(read_text(mem + "/memory.limit_in_bytes"), std::to_string(96ull << 20));
    EXPECT_EQ(read_text(sandbox::controller_mount("pids") + "/" + g.path() + "/pids.max"), "7");
    for (const auto& dir : g.directories()) EXPECT_TRUE(fs::is_directory(dir)) << dir;
    ASSERT_TRUE(spares.wait_ready(2)) << "the spare taken was not made again";
  }
  sandbox::keep_cgroup_spares(parent, 0);
  EXPECT_EQ(sandbox::cgroup_spares_ready(parent), 0u);
  EXPECT_EQ(spares_in("memory") + spares_in("cpu") + spares_in("pids"), 0);
  // Without spares, groups are made as before.
  sandbox::InstanceCgroup b(parent + "/b", limits);
  EXPECT_EQ(sandbox::cgroup_spares_taken(parent), 0u);
  EXPECT_TRUE(fs::is_directory(sandbox::controller_mount("memory") + "/" + b.path()));
}

namespace {

bool mounted_here(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    fields >> id >> parent >> dev >> root >> mount_point;
    if (mount_point == path) return true;
  }
  return false;
}

}  // namespace

// thawd's view of an instance's /tmp is unmounted on a queue's thread when
// asked to, and a ScratchMount gone before its queued unmount ran leaves no
// mount and no directory behind (the unmount then finds nothing to do).
TEST_F(Sandbox, AScratchMountsHostViewGoesOnAQueueOrWithIt) {
  const auto base = fs::temp_directory_path() / ("thaw-scratch-" + std::to_string(getpid()));
  fs::create_directories(base);
  const auto a = (base / "a").string(), b = (base / "b").string();
  thaw::WorkQueue queue;
  {
    sandbox::ScratchMount scratch(a, 1 << 20, getuid(), getgid());
    EXPECT_TRUE(mounted_here(a));
    scratch.detach_host_view(&queue);
    queue.drain();
    EXPECT_FALSE(mounted_here(a));
    EXPECT_TRUE(fs::exists(a));
  }
  EXPECT_FALSE(fs::exists(a));

  std::promise<void> release;
  auto gate = release.get_future().share();
  queue.post([gate] { gate.wait(); });  // holds the queue: the unmount waits behind it
  {
    sandbox::ScratchMount scratch(b, 1 << 20, getuid(), getgid());
    scratch.detach_host_view(&queue);
    EXPECT_TRUE(mounted_here(b));
  }
  EXPECT_FALSE(mounted_here(b));
  EXPECT_FALSE(fs::exists(b));
  release.set_value();
  queue.drain();
  EXPECT_FALSE(mounted_here(b));
  fs::remove_all(base);
}
