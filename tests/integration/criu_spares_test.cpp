// Criu started ahead of restores (snapshots::CriuSpare, CriuSpares): it waits
// for its options, takes them over a socket, and ends without leaving a
// process or a directory behind. Real criu; restores through a spare are
// tested with thawd (thawd_scheduling_test.cpp).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sandbox/cgroup.hpp"
#include "sandbox_harness.hpp"
#include "snapshots/criu.hpp"
#include "snapshots/criu_environment.hpp"
#include "snapshots/criu_spares.hpp"
#include "thaw/error.hpp"

namespace fs = std::filesystem;
using thaw::Error;
namespace sandbox = thaw::sandbox;
namespace snapshots = thaw::snapshots;
namespace itest = thaw::itest;

namespace {

bool alive(pid_t pid) {
  return pid > 0 && kill(pid, 0) == 0;
}

// Criu's children of this process that still run (spares are; they must all go).
int criu_children() {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::ifstream stat(e.path() / "stat");
    std::string pid, comm, state;
    pid_t ppid = 0;
    if (stat >> pid >> comm >> state >> ppid && ppid == getpid() && comm == "(criu)" &&
        state != "Z")
      ++n;
  }
  return n;
}

// The nice value of `pid` (field 19 of its stat, counted after its name).
int nice_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  const std::string stat((std::istreambuf_iterator<char>(in)), {});
  std::istringstream after(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 19 && after >> field; ++i) {
  }
  return std::stoi(field);
}

// A sandboxed process dumped with criu: a spare reads the snapshot's
// inventory and process tree before it waits, so it needs a real one.
struct DumpedSandbox {
  itest::SandboxHarness h;
  sandbox::SandboxSpec spec;
  std::string images;
  std::vector<std::pair<std::string, std::string>> mount_map;  // key -> host path

  explicit DumpedSandbox(const std::string& criu) {
    spec = h.spec({"/usr/bin/python3", "-S", "-c", "import time\nwhile True: time.sleep(1)"});
    auto inst = h.start(spec);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    images = h.dir() + "/images";
    fs::create_directories(images);
    snapshots::DumpRequest dump;
    dump.pid = inst->pid();
    dump.images_dir = images;
    for (const auto& m : spec.mounts) {
      if (m.kind != sandbox::MountKind::Bind && m.kind != sandbox::MountKind::ReadOnlyBind)
        continue;
      const auto key = "m" + std::to_string(mount_map.size());
      dump.external_mounts.push_back({"/" + m.target, key});
      mount_map.push_back({key, m.source});
    }
    dump.extra_args = {"--empty-ns", "net", "--network-lock", "skip"};  // as thawd
    dump.owner = h.mapping().owner();
    snapshots::dump(criu, dump);
    inst->wait();  // the dump ended it
  }
};

// criu's path, with this process set up as thawd sets itself up for it; ""
// where the tests cannot run.
std::string usable_criu() {
  if (geteuid() != 0 || !itest::sandbox_unavailable_reason().empty()) return "";
  const auto criu = snapshots::probe_criu();
  if (!criu.usable()) return "";
  snapshots::prepare_criu_environment();
  prctl(PR_SET_CHILD_SUBREAPER, 1);  // restored trees are reparented to us
  return criu.path;
}

constexpr const char* kNeedsCriu = "needs root, sandboxes and CRIU 4.2+ passing `criu check`";

}  // namespace

TEST(CriuSpare, WaitsForItsOptionsAndEndsWithoutThemLeavingNothing) {
  const auto criu = usable_criu();
  if (criu.empty()) GTEST_SKIP() << kNeedsCriu;
  DumpedSandbox d(criu);
  pid_t pid;
  std::string work;
  {
    snapshots::CriuSpare spare(criu, d.images, d.h.dir() + "/spare", d.h.mapping().owner());
    pid = spare.pid();
    work = spare.work_dir();
    // Past its start it waits, and goes on waiting.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_TRUE(spare.usable());
    EXPECT_TRUE(alive(pid));
    EXPECT_TRUE(fs::exists(work));
  }
  EXPECT_FALSE(alive(pid));
  EXPECT_FALSE(fs::exists(work));
  EXPECT_EQ(criu_children(), 0);
}

TEST(CriuSpare, IsNotUsableOnceItsDirectoryWasReplaced) {
  const auto criu = usable_criu();
  if (criu.empty()) GTEST_SKIP() << kNeedsCriu;
  DumpedSandbox d(criu);
  snapshots::CriuSpare spare(criu, d.images, d.h.dir() + "/spare", d.h.mapping().owner());
  EXPECT_TRUE(spare.usable());
  // criu opened the old directory when it started: a new one in its place
  // (a snapshot made again) must not be restored from the old one.
  fs::rename(d.images, d.images + ".old");
  fs::create_directories(d.images);
  EXPECT_FALSE(spare.usable());
  snapshots::RestoreRequest r;
  r.owner = d.h.mapping().owner();
  r.images_dir = d.images;
  EXPECT_THROW(snapshots::RestoreRun(spare, r), Error);
}

TEST(CriuSpare, RestoresWithTheOptionsAndDescriptorsItIsSent) {
  const auto criu = usable_criu();
  if (criu.empty()) GTEST_SKIP() << kNeedsCriu;
  DumpedSandbox d(criu);
  setenv("THAW_KEEP_CRIU_LOGS", d.h.dir().c_str(), 1);  // criu's debug log, to see what it took
  snapshots::CriuSpare spare(criu, d.images, d.h.dir() + "/spare", d.h.mapping().owner());
  unsetenv("THAW_KEEP_CRIU_LOGS");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let it get to its wait

  // Sent now: the root, the mounts, a cgroup of its own, and a descriptor.
  sandbox::InstanceCgroup group(d.h.cgroup_parent() + "/restored", d.spec.cgroup);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  snapshots::RestoreRequest r;
  r.owner = d.h.mapping().owner();
  r.images_dir = d.images;
  r.root = d.spec.root_dir;
  r.mount_map = d.mount_map;
  r.inherit.push_back({p[1], "pipe:[1]"});
  r.extra_args = {"--empty-ns", "net", "--network-lock", "skip"};  // as thawd
  for (const auto& c : group.controllers()) {
    r.extra_args.push_back("--cgroup-root");
    r.extra_args.push_back(c + ":/" + group.path());
  }
  pid_t pid = -1;
  std::string work;
  {
    snapshots::RestoreRun run(spare, r);
    close(p[1]);
    work = run.work_dir();
    EXPECT_EQ(work, d.h.dir() + "/spare");
    ASSERT_NO_THROW(pid = run.finish());
  }
  ASSERT_TRUE(alive(pid));
  std::ifstream cg("/proc/" + std::to_string(pid) + "/cgroup");
  const std::string cgroups((std::istreambuf_iterator<char>(cg)), {});
  EXPECT_NE(cgroups.find("memory:/" + group.path() + "\n"), std::string::npos) << cgroups;
  std::ifstream log(work + "/restore.log");
  const std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find("File pipe:[1] will be restored from inherit fd 200"), std::string::npos)
      << text;
  close(p[0]);
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  EXPECT_EQ(criu_children(), 0);
}

// Spares are made beside the restore that asked for one and wait at the
// lowest priority; the restore that takes one runs it at the normal one.
TEST(CriuSpares, ASpareWaitsAtTheLowestPriorityAndRestoresAtTheNormalOne) {
  const auto criu = usable_criu();
  if (criu.empty()) GTEST_SKIP() << kNeedsCriu;
  DumpedSandbox d(criu);
  const auto root = d.h.dir() + "/spares";
  fs::create_directories(root);
  snapshots::CriuSpares spares(criu, root, 1);
  spares.prepare(d.images, d.h.mapping().owner());
  spares.settle();
  auto spare = spares.take(d.images);
  ASSERT_NE(spare, nullptr);
  EXPECT_EQ(nice_of(spare->pid()), snapshots::kSpareNice);
  EXPECT_EQ(nice_of(getpid()), 0) << "the caller's priority is its own";

  sandbox::InstanceCgroup group(d.h.cgroup_parent() + "/restored", d.spec.cgroup);
  snapshots::RestoreRequest r;
  r.owner = d.h.mapping().owner();
  r.images_dir = d.images;
  r.root = d.spec.root_dir;
  r.mount_map = d.mount_map;
  r.extra_args = {"--empty-ns", "net", "--network-lock", "skip"};  // as thawd
  for (const auto& c : group.controllers()) {
    r.extra_args.push_back("--cgroup-root");
    r.extra_args.push_back(c + ":/" + group.path());
  }
  const pid_t criu_pid = spare->pid();
  pid_t pid = -1;
  {
    snapshots::RestoreRun run(*spare, r);
    EXPECT_EQ(nice_of(criu_pid), 0);
    ASSERT_NO_THROW(pid = run.finish());
  }
  ASSERT_TRUE(alive(pid));
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  EXPECT_EQ(criu_children(), 0);
}

TEST(CriuSpares, KeepsOneSparePerDirectoryUpToItsLimitAndEndsThemAll) {
  const auto criu = usable_criu();
  if (criu.empty()) GTEST_SKIP() << kNeedsCriu;
  DumpedSandbox d(criu);
  const auto root = d.h.dir() + "/spares";
  fs::create_directories(root);
  const auto a = d.h.dir() + "/a/images", b = d.h.dir() + "/b/images";
  fs::create_directories(d.h.dir() + "/a");
  fs::create_directories(d.h.dir() + "/b");
  fs::copy(d.images, a);
  fs::copy(d.images, b);
  {
    snapshots::CriuSpares spares(criu, root, 1);
    spares.prepare(a, d.h.mapping().owner());
    spares.prepare(a, d.h.mapping().owner());
    spares.settle();
    EXPECT_EQ(spares.waiting(), 1u);
    EXPECT_EQ(criu_children(), 1);
    auto taken = spares.take(a);
    ASSERT_NE(taken, nullptr);
    EXPECT_TRUE(taken->usable());
    EXPECT_EQ(spares.take(a), nullptr);
    EXPECT_EQ(spares.take(b), nullptr);
    taken.reset();

    // Over the limit, the one asked for least recently goes.
    spares.prepare(a, d.h.mapping().owner());
    spares.settle();
    spares.prepare(b, d.h.mapping().owner());
    spares.settle();
    EXPECT_EQ(spares.waiting(), 1u);
    EXPECT_EQ(spares.take(a), nullptr);
    spares.prepare(a, d.h.mapping().owner());
    spares.settle();

    // A snapshot removed takes its spare along; one whose directory is gone
    // goes at the next prune.
    spares.drop(d.h.dir() + "/a");
    EXPECT_EQ(spares.waiting(), 0u);
    spares.prepare(b, d.h.mapping().owner());
    spares.settle();
    EXPECT_EQ(spares.waiting(), 1u);
    fs::remove_all(d.h.dir() + "/b");
    spares.prune();
    EXPECT_EQ(spares.waiting(), 0u);
    EXPECT_EQ(criu_children(), 0);

    spares.prepare(a, d.h.mapping().owner());
    spares.settle();
    EXPECT_EQ(criu_children(), 1);
  }
  EXPECT_EQ(criu_children(), 0);
  EXPECT_TRUE(fs::is_empty(root)) << "a spare's work directory was left in " << root;
}
