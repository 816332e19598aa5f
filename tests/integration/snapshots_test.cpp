// Checkpoint after init, restore on demand: real CRIU, real sandboxes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "examples.hpp"
#include "invoker/instances/instance_factory.hpp"
#include "invoker/instances/instance_snapshots.hpp"
#include "reachable.hpp"
#include "sandbox/cgroup.hpp"
#include "sandbox_harness.hpp"
#include "snapshots/criu.hpp"
#include "thaw/error.hpp"

using namespace thaw;
using namespace thaw::invoker;
using nlohmann::json;
namespace fs = std::filesystem;
using itest::example;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// CRIU's debug logs of the restores made while one lives (THAW_KEEP_CRIU_LOGS
// keeps each when its instance goes); unset again whatever the test's outcome.
class KeptCriuLogs {
 public:
  explicit KeptCriuLogs(std::string dir) : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    setenv("THAW_KEEP_CRIU_LOGS", dir_.c_str(), 1);
  }
  ~KeptCriuLogs() { unsetenv("THAW_KEEP_CRIU_LOGS"); }
  KeptCriuLogs(const KeptCriuLogs&) = delete;
  KeptCriuLogs& operator=(const KeptCriuLogs&) = delete;

  std::string all() const {
    std::string out;
    for (const auto& e : fs::directory_iterator(dir_)) out += read_text(e.path());
    return out;
  }

 private:
  std::string dir_;
};

// Pins the calling thread (and so the criu it starts) to the CPU it is on,
// and gives it back every CPU it had at the end of the scope.
class PinnedToOneCpu {
 public:
  PinnedToOneCpu() {
    sched_getaffinity(0, sizeof before_, &before_);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    sched_setaffinity(0, sizeof one, &one);
  }
  ~PinnedToOneCpu() { sched_setaffinity(0, sizeof before_, &before_); }
  PinnedToOneCpu(const PinnedToOneCpu&) = delete;
  PinnedToOneCpu& operator=(const PinnedToOneCpu&) = delete;

 private:
  cpu_set_t before_{};
};

// Whether something is mounted at `path` in this process's mount namespace.
bool mounted_here(const std::string& path) {
  std::istringstream lines(read_text("/proc/self/mountinfo"));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    fields >> id >> parent >> dev >> root >> mount_point;
    if (mount_point == path) return true;
  }
  return false;
}

int allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  return CPU_COUNT(&set);
}

}  // namespace

class Snapshots : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = itest::sandbox_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    criu_ = snapshots::probe_criu();
    if (!criu_.usable()) GTEST_SKIP() << "CRIU 4.2+ with a passing criu check is needed";
    // First, before any thread: the checkout may be where instances cannot reach.
    const auto runtimes = itest::expose_checkout();
    char tmpl[] = "/tmp/thaw-snap-XXXXXX";
    state_ = mkdtemp(tmpl);
    host_ = std::make_unique<HostEnvironment>(prepare_host_environment(state_, runtimes, 4));
    host_->cgroup_parent = "thaw-test-snap-" + std::to_string(getpid());
    store_ = std::make_unique<snapshots::SnapshotStore>(state_ + "/snapshots");
  }
  void TearDown() override {
    if (!host_) return;
    const auto parent = host_->cgroup_parent;
    store_.reset();
    host_.reset();
    sandbox::remove_cgroup_parent(parent);
    fs::remove_all(state_);
  }

  FunctionConfig config(const std::string& runtime = "python3.11",
                        const std::string& handler = "handler.handler") {
    FunctionConfig c;
    c.name = "snap";
    c.runtime = runtime;
    c.handler = handler;
    c.memory_mb = 256;
    c.timeout_s = 10;
    return c;
  }

  // An example's name, or a code directory a test wrote (an absolute path).
  static std::string code_dir(const std::string& code) {
    return code.front() == '/' ? code : example(code);
  }

  // Boots an instance and checkpoints it; returns the snapshot's digest.
  std::string make_snapshot(const FunctionConfig& c, const std::string& code) {
    InitOutcome init;
    auto inst = FunctionInstance::start(*host_, c, code_dir(code), init);
    EXPECT_TRUE(init.ok) << (init.error ? init.error->body : "") << init.log;
    auto digest = function_digest(c, code, fingerprint_of(*host_, c.runtime));
    auto claim = store_->try_claim(digest);
    EXPECT_TRUE(claim);
    FunctionInstance::checkpoint(std::move(inst), criu_, *claim, *store_);
    return digest;
  }

  std::unique_ptr<FunctionInstance> restore(const FunctionConfig& c, const std::string& code,
                                            const std::string& digest) {
    auto [dir, manifest] = store_->open(digest, {digest, criu_.version, manifest_kernel()});
    return FunctionInstance::restore(*host_, c, code_dir(code), criu_.path, dir, manifest);
  }

  // Why restoring `code` from `dir` fails: the error's message, or "" when
  // the restore succeeded (the instance is ended at once).
  std::string restore_failure(const FunctionConfig& c, const std::string& code,
                              const std::string& dir, const snapshots::SnapshotManifest& manifest) {
    try {
      FunctionInstance::restore(*host_, c, code_dir(code), criu_.path, dir, manifest);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  // Two copies restored from one new snapshot of `code`, each invoked once.
  struct TwoCopies {
    std::unique_ptr<FunctionInstance> a, b;
    json first_a, first_b;  // their answers (null when an invocation failed)
  };
  TwoCopies restore_two_and_invoke(const FunctionConfig& c, const std::string& code) {
    const auto digest = make_snapshot(c, code);
    TwoCopies t{restore(c, code, digest), restore(c, code, digest), nullptr, nullptr};
    const auto ra = t.a->invoke({"", "{}"}), rb = t.b->invoke({"", "{}"});
    if (ra.error || rb.error)
      ADD_FAILURE() << ra.payload << ra.log << "\n" << rb.payload << rb.log;
    else
      t.first_a = json::parse(ra.payload), t.first_b = json::parse(rb.payload);
    return t;
  }

  std::string manifest_kernel() {
    utsname u{};
    uname(&u);
    return u.release;
  }

  snapshots::CriuInfo criu_;
  std::string state_;
  std::unique_ptr<HostEnvironment> host_;
  std::unique_ptr<snapshots::SnapshotStore> store_;
};

// The bootstrap of a provided runtime is blocked in GET .../invocation/next on
// a TCP connection to the Runtime API server beside it when the snapshot is
// taken; both come back with the connection, and the request in it answered.
TEST_F(Snapshots, ProvidedRuntimeComesBackWithItsInitStateAndConnection) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl is not installed";
  auto t = restore_two_and_invoke(config("provided", ""), "provided-snapstart");
  const auto &ja = t.first_a, &jb = t.first_b;
  ASSERT_FALSE(ja.is_null() || jb.is_null());
  EXPECT_EQ(ja["count"], 1);
  EXPECT_EQ(jb["count"], 1);
  EXPECT_EQ(ja["token"], jb["token"]);  // copies of one init
  EXPECT_EQ(ja["token"].get<std::string>().size(), 16u) << ja;
  // New connections after the restore: curl opens one per call.
  const auto again = t.a->invoke({"", "{}"});
  ASSERT_FALSE(again.error) << again.payload << again.log;
  EXPECT_EQ(json::parse(again.payload)["count"], 2);
  EXPECT_EQ(json::parse(again.payload)["token"], ja["token"]);
}

// The npm Runtime API client keeps its HTTP connection to the server open
// (libcurl in a native addon): restored copies go on using it.
TEST_F(Snapshots, ProvidedFunctionOnTheNpmRuntimeClientRestores) {
  const auto code = state_ + "/ric-code";
  if (auto why = itest::write_ric_package(code); !why.empty()) GTEST_SKIP() << why;
  fs::permissions(state_, fs::perms(0755));
  auto c = config("provided", "");
  InitOutcome init;
  auto inst = FunctionInstance::start(*host_, c, code, init);
  ASSERT_TRUE(init.ok) << (init.error ? init.error->body : "") << init.log;
  auto claim = store_->try_claim("ric");
  ASSERT_TRUE(claim);
  FunctionInstance::checkpoint(std::move(inst), criu_, *claim, *store_);
  auto [dir, manifest] = store_->open("ric", {"ric", criu_.version, manifest_kernel()});
  auto restored = FunctionInstance::restore(*host_, c, code, criu_.path, dir, manifest);
  for (const char* name : {"restored", "again"}) {
    auto r = restored->invoke({"", std::string(R"({"name":")") + name + "\"}"});
    ASSERT_FALSE(r.error) << r.payload << r.log;
    EXPECT_EQ(json::parse(r.payload)["message"], std::string("hello ") + name);
  }
}

TEST_F(Snapshots, StateBuiltDuringInitIsPresentAfterRestore) {
  const auto c = config();
  const auto digest = make_snapshot(c, "python-snapstart");
  auto inst = restore(c, "python-snapstart", digest);
  auto r = inst->invoke({"", R"({"x":1})"});
  ASSERT_FALSE(r.error) << r.payload << r.log;
  auto j = json::parse(r.payload);
  EXPECT_EQ(j["state"]["built_at_init"], json({0, 1, 4, 9, 16}));
  EXPECT_EQ(j["state"]["invocations"], 1);  // the snapshot saw no invocation
  EXPECT_EQ(j["tmp"], "written during init");
  EXPECT_EQ(j["json_module_loaded"], true);
  EXPECT_EQ(j["hooks"], json({"before_snapshot", "after_restore"}));
  EXPECT_EQ(j["echo"], json({{"x", 1}}));
  // The sandbox's host name, put back in the new UTS namespace (a new one
  // starts with the host's).
  EXPECT_EQ(j["hostname"], "thaw");
  EXPECT_EQ(r.start_mode, StartMode::Restore);
  ASSERT_TRUE(r.restore_ms.has_value());
  EXPECT_NE(r.report_line.find("\tRestore Duration: "), std::string::npos) << r.report_line;
  EXPECT_EQ(r.report_line.find("Init Duration"), std::string::npos);
  // A second invocation on the restored instance is warm.
  auto again = inst->invoke({"", "{}"});
  EXPECT_EQ(again.start_mode, StartMode::Warm);
  EXPECT_EQ(json::parse(again.payload)["state"]["invocations"], 2);
}

// A cold-started sandbox has loopback up (sandbox/namespace_pool); a restored
// one must too, or a function that talks to a local helper over 127.0.0.1
// works cold and fails with "Network is unreachable" after a restore.
TEST_F(Snapshots, LoopbackIsUpInARestoredInstanceAsInAColdOne) {
  const auto c = config("python3.11", "handler.loopback");
  InitOutcome init;
  auto cold = FunctionInstance::start(*host_, c, example("python-errors"), init);
  ASSERT_TRUE(init.ok) << init.log;
  auto r = cold->invoke({"", "{}"});
  ASSERT_FALSE(r.error) << r.payload << r.log;
  EXPECT_EQ(json::parse(r.payload)["echo"], "ping");
  cold.reset();

  auto restored = restore(c, "python-errors", make_snapshot(c, "python-errors"));
  r = restored->invoke({"", "{}"});
  ASSERT_FALSE(r.error) << r.payload << r.log;
  EXPECT_EQ(r.start_mode, StartMode::Restore);
  EXPECT_EQ(json::parse(r.payload)["echo"], "ping");
}

// thawd hands "restored" over before CRIU starts and waits for "ready", not
// for CRIU's exit: the hooks run while CRIU tidies up, the runtime times them,
// and the phases keep them apart. CRIU's work directory goes with the instance.
TEST_F(Snapshots, AfterRestoreHooksAreTimedApartFromCriuAndItsWorkDirectoryGoes) {
  auto c = config();
  c.environment["AFTER_RESTORE_SLEEP_MS"] = "300";
  const auto digest = make_snapshot(c, "python-snapstart");
  auto inst = restore(c, "python-snapstart", digest);
  const auto phases = inst->restore_phases();
  EXPECT_GE(phases.resume_ms, 300.0);
  EXPECT_LT(phases.resume_ms, 5000.0);
  EXPECT_GT(phases.criu_ms, 0.0);
  auto r = inst->invoke({"", "{}"});
  ASSERT_FALSE(r.error) << r.payload << r.log;
  EXPECT_EQ(json::parse(r.payload)["hooks"], json({"before_snapshot", "after_restore"}));
  ASSERT_TRUE(r.restore_ms.has_value());
  EXPECT_GE(*r.restore_ms, phases.total_ms() - 0.01);
  inst.reset();
  for (const auto& e : fs::directory_iterator(state_ + "/instances"))
    EXPECT_EQ(e.path().string().find("-restore"), std::string::npos) << e.path();
}

TEST_F(Snapshots, LargeInitStateAndSmallObjectsComeBackIntactInHugePages) {
  const auto c = config();
  const auto digest = make_snapshot(c, "python-init-table");
  auto inst = restore(c, "python-init-table", digest);
  auto r = inst->invoke({"", "{}"});
  ASSERT_FALSE(r.error) << r.payload << r.log;
  const auto j = json::parse(r.payload);
  EXPECT_EQ(j["size"], 16 << 20);
  EXPECT_EQ(j["sha256_now"], j["sha256_at_init"]);  // every byte came back
  EXPECT_EQ(j["words"], 300000);
  EXPECT_EQ(j["words_sha256_now"], j["words_sha256_at_init"]);

  // The runtime advised its dense heap huge before the snapshot, and thaw's
  // CRIU gives that advice back before refilling memory (scripts/criu-patches).
  // The small objects count too: their arenas share one area (_thaw_arenas),
  // where CPython would have mapped each 1 MiB arena apart, too small for a
  // huge page.
  const auto thp = read_text("/sys/kernel/mm/transparent_hugepage/enabled");
  if (thp.empty() || thp.find("[never]") != std::string::npos)
    GTEST_SKIP() << "transparent huge pages are off on this host";
  const auto rollup =
      read_text("/proc/" + std::to_string(inst->sandbox_instance().pid()) + "/smaps_rollup");
  const auto at = rollup.find("AnonHugePages:");
  ASSERT_NE(at, std::string::npos) << rollup;
  const long huge_kb = std::strtol(rollup.c_str() + at + 14, nullptr, 10);
  // Most of the 16 MiB table and of the ~19 MiB of small objects (38 MiB
  // here); with each arena mapped apart it was 22 MiB.
  EXPECT_GE(huge_kb, 30 * 1024) << rollup;
}

// thaw's CRIU fills a large restore's memory on two CPUs (scripts/criu-patches/
// 05): a helper sharing the address space takes half the 2 MiB stretches.
// The helper must be gone, reaped, before the task's threads are created with
// their old ids, and every byte must come back whichever CPU wrote it.
TEST_F(Snapshots, ThreadsAndEveryByteComeBackWhenTwoCpusFillMemory) {
  if (allowed_cpus() < 2) GTEST_SKIP() << "memory is filled on two CPUs only where two are allowed";
  const auto c = config();
  const auto digest = make_snapshot(c, "python-init-threads");
  KeptCriuLogs logs(state_ + "/criu-logs");
  auto inst = restore(c, "python-init-threads", digest);
  auto r = inst->invoke({"", "{}"});
  ASSERT_FALSE(r.error) << r.payload << r.log;
  const auto j = json::parse(r.payload);
  EXPECT_EQ(j["sha256_now"], j["sha256_at_init"]);
  EXPECT_EQ(j["thread_ids_now"].size(), 3u);
  EXPECT_EQ(j["thread_ids_now"], j["thread_ids_at_init"]);
  const auto pid = std::to_string(inst->sandbox_instance().pid());
  EXPECT_EQ(read_text("/proc/" + pid + "/task/" + pid + "/children"), "")
      << "the helper is still a child of the restored runtime";
  inst.reset();  // its CRIU log is kept now

  const auto log = logs.all();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      log, m, std::regex(R"(thaw: filled (\d+) bytes in \d+ stretches, helper (-?\d+))")))
      << log.substr(0, 2000);
  EXPECT_GE(std::stoll(m[1]), 12ll << 20);
  EXPECT_GT(std::stol(m[2]), 0) << "no helper was started";
}

// Where the restore may use one CPU only, a helper would only cost: the
// restorer fills memory alone, as before.
TEST_F(Snapshots, PinnedToOneCpuTheRestorerFillsMemoryAlone) {
  const auto c = config();
  const auto digest = make_snapshot(c, "python-init-threads");
  KeptCriuLogs logs(state_ + "/criu-logs");
  std::unique_ptr<FunctionInstance> inst;
  {
    PinnedToOneCpu pinned;
    inst = restore(c, "python-init-threads", digest);
  }
  auto r = inst->invoke({"", "{}"});
  ASSERT_FALSE(r.error) << r.payload << r.log;
  const auto j = json::parse(r.payload);
  EXPECT_EQ(j["sha256_now"], j["sha256_at_init"]);
  EXPECT_EQ(j["thread_ids_now"], j["thread_ids_at_init"]);
  inst.reset();
  const auto log = logs.all();
  ASSERT_NE(log.find("Restore finished successfully"), std::string::npos) << log.substr(0, 2000);
  EXPECT_EQ(log.find("thaw: filled"), std::string::npos);
}

TEST_F(Snapshots, NodeStateAndHooksSurviveRestore) {
  // The mechanics work for Node.js; the factory does not use them yet (see below).
  const auto c = config("nodejs20.x", "index.handler");
  const auto digest = make_snapshot(c, "node-snapstart");
  auto inst = restore(c, "node-snapstart", digest);
  auto r = inst->invoke({"", R"({"y":2})"});
  ASSERT_FALSE(r.error) << r.payload << r.log;
  auto j = json::parse(r.payload);
  EXPECT_EQ(j["state"]["builtAtInit"], json({1, 4, 9}));
  EXPECT_EQ(j["hooks"], json({"beforeSnapshot", "afterRestore"}));
}

TEST_F(Snapshots, RestoredCopiesDrawDifferentRandomNumbersAndUuids) {
  auto t = restore_two_and_invoke(config(), "python-snapstart");
  const auto &ja = t.first_a, &jb = t.first_b;
  ASSERT_FALSE(ja.is_null() || jb.is_null());
  EXPECT_EQ(ja["init_random"], jb["init_random"]);  // made before the snapshot: shared
  EXPECT_NE(ja["random"], jb["random"]);
  EXPECT_NE(ja["uuid"], jb["uuid"]);
}

TEST_F(Snapshots, RestoresHandOverTheirPipesWhateverTheirDescriptorNumbers) {
  // A busy thawd has hundreds of descriptors open, so the pipes a restore
  // hands to criu can land where criu expects them (fd 200 on); each must
  // still reach the restored runtime as itself.
  const auto c = config();
  const auto digest = make_snapshot(c, "python-snapstart");
  for (int lowest_free = 192; lowest_free <= 206; ++lowest_free) {
    std::vector<UniqueFd> filler;
    for (;;) {
      UniqueFd fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
      ASSERT_TRUE(fd);
      if (fd.get() >= lowest_free) break;
      filler.push_back(std::move(fd));
    }
    auto inst = restore(c, "python-snapstart", digest);
    const auto r = inst->invoke({"", "{}"});
    ASSERT_FALSE(r.error) << "lowest free descriptor " << lowest_free << ": " << r.payload;
  }
}

// The pipes a restore hands over belong to the instance's root: CRIU reopens
// each in the restored task, which may open its own pipe there itself
// instead of asking CRIU's user-namespace helper to.
TEST_F(Snapshots, HandedOverPipesBelongToTheInstancesRoot) {
  const auto c = config();
  const auto digest = make_snapshot(c, "python-snapstart");
  auto inst = restore(c, "python-snapstart", digest);
  ASSERT_FALSE(inst->invoke({"", "{}"}).error);
  const auto pid = std::to_string(inst->sandbox_instance().pid());
  for (int fd : {1, 2, 3, 4}) {
    struct stat st {};
    ASSERT_EQ(stat(("/proc/" + pid + "/fd/" + std::to_string(fd)).c_str(), &st), 0) << fd;
    EXPECT_TRUE(S_ISFIFO(st.st_mode)) << fd;
    EXPECT_EQ(st.st_uid, c.id_mapping().to_host(0)) << fd;
  }
}

TEST_F(Snapshots, TwentyRestoresAtOnceEachInItsOwnNamespacesAndCgroup) {
  const auto c = config();
  const auto digest = make_snapshot(c, "python-snapstart");
  std::vector<std::future<std::pair<std::unique_ptr<FunctionInstance>, InvokeResult>>> runs;
  runs.reserve(20);
  for (int i = 0; i < 20; ++i) {
    runs.push_back(std::async(std::launch::async, [&, i] {
      auto inst = restore(c, "python-snapstart", digest);
      auto r = inst->invoke({"", "{\"n\":" + std::to_string(i) + "}"});
      return std::make_pair(std::move(inst), r);
    }));
  }
  std::set<std::string> pid_namespaces, cgroups;
  // All twenty stay alive until counted: a namespace freed meanwhile may
  // give its inode number to one restored later.
  std::vector<std::unique_ptr<FunctionInstance>> alive;
  for (int i = 0; i < 20; ++i) {
    auto [inst, r] = runs[i].get();
    ASSERT_FALSE(r.error) << r.payload << r.log;
    EXPECT_EQ(json::parse(r.payload)["echo"]["n"], i);
    const auto pid = std::to_string(inst->sandbox_instance().pid());
    pid_namespaces.insert(fs::read_symlink("/proc/" + pid + "/ns/pid").string());
    cgroups.insert(read_text("/proc/" + pid + "/cgroup"));
    // One group of its own, the same in every hierarchy thaw manages (CRIU
    // enters it while making the cgroup namespace and no more after).
    std::set<std::string> paths;
    for (const auto& m : sandbox::cgroup_memberships("/proc/" + pid + "/cgroup"))
      for (const char* controller : {"memory", "cpu", "cpuacct", "pids"})
        if (m.holds(controller)) paths.insert(m.path);
    ASSERT_EQ(paths.size(), 1u) << read_text("/proc/" + pid + "/cgroup");
    EXPECT_EQ(paths.begin()->rfind("/" + host_->cgroup_parent + "/", 0), 0u) << *paths.begin();
    alive.push_back(std::move(inst));
  }
  EXPECT_EQ(pid_namespaces.size(), 20u);
  EXPECT_EQ(cgroups.size(), 20u);
}

// Snapshots hold only the cgroup hierarchies thaw manages (memory, cpu,
// cpuacct, pids). In the others a restored instance stays where the restoring
// process is, as a cold-started one does, instead of going back to where the
// snapshotted instance was (and CRIU saves a move per hierarchy).
TEST_F(Snapshots, ARestoredInstanceStaysInTheRestorersGroupsWhereThawManagesNone) {
  const std::set<std::string> managed = {"memory", "cpu", "cpuacct", "pids"};
  std::string other;  // a v1 hierarchy without any of them, e.g. "blkio"
  for (const auto& m : sandbox::cgroup_memberships("/proc/self/cgroup")) {
    if (m.controllers.empty() || m.controllers.rfind("name=", 0) == 0) continue;
    bool ours = false;
    for (const auto& c : managed) ours = ours || m.holds(c);
    if (!ours && fs::exists("/sys/fs/cgroup/" + m.controllers + "/cgroup.procs")) {
      other = m.controllers;
      break;
    }
  }
  if (other.empty()) GTEST_SKIP() << "no cgroup v1 hierarchy without thaw's controllers here";
  const auto path_in = [&](pid_t pid) {
    for (const auto& m : sandbox::cgroup_memberships("/proc/" + std::to_string(pid) + "/cgroup"))
      if (m.controllers == other) return m.path;
    return std::string("?");
  };
  // Two groups of ours in that hierarchy; we move between them and back.
  struct Groups {
    std::string root, home, a, b;
    void enter(const std::string& dir) const {
      std::ofstream(dir + "/cgroup.procs") << getpid() << std::flush;
    }
    ~Groups() {
      enter(home);
      rmdir(a.c_str());
      rmdir(b.c_str());
    }
  } g;
  g.root = "/sys/fs/cgroup/" + other;
  g.home = g.root + path_in(getpid());
  const auto name = "thaw-test-snap-" + std::to_string(getpid());
  g.a = g.root + "/" + name + "-a";
  g.b = g.root + "/" + name + "-b";
  ASSERT_EQ(mkdir(g.a.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(g.b.c_str(), 0755), 0);

  const auto c = config();
  g.enter(g.a);
  const auto digest = make_snapshot(c, "python-snapstart");  // its instance lived in -a
  g.enter(g.b);
  {
    auto inst = restore(c, "python-snapstart", digest);
    EXPECT_EQ(path_in(inst->sandbox_instance().pid()), "/" + name + "-b");
    // Its own group, as always, where thaw manages the controller.
    const auto memory =
        read_text("/proc/" + std::to_string(inst->sandbox_instance().pid()) + "/cgroup");
    EXPECT_NE(memory.find(host_->cgroup_parent + "/"), std::string::npos) << memory;
    EXPECT_FALSE(inst->invoke({"", "{}"}).error);
  }
}

TEST_F(Snapshots, ManifestChecksCatchCorruptionAndOtherCriuVersions) {
  const auto c = config();
  const auto digest = make_snapshot(c, "python-snapstart");
  const auto dir = state_ + "/snapshots/" + digest;
  // Another CRIU made it:
  EXPECT_THROW(store_->open(digest, {digest, "4.1.1", manifest_kernel()}), Error);
  // A changed image file:
  std::string victim;
  for (const auto& e : fs::directory_iterator(dir + "/images"))
    if (e.path().filename().string().rfind("pages-", 0) == 0) victim = e.path().string();
  ASSERT_FALSE(victim.empty());
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x42');
  }
  try {
    store_->open(digest, {digest, criu_.version, manifest_kernel()});
    FAIL() << "a corrupted snapshot was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checksum mismatch"), std::string::npos) << e.what();
  }
}

// A restore CRIU gives up on (here: the memory image vanished after the
// manifest check) fails with CRIU's reason as soon as CRIU exits, not after
// the wait for "ready", and leaves neither its work directory nor a cgroup.
TEST_F(Snapshots, AFailedRestoreReportsCriusReasonAtOnceAndLeavesNothing) {
  const auto c = config();
  const auto digest = make_snapshot(c, "python-snapstart");
  auto [dir, manifest] = store_->open(digest, {digest, criu_.version, manifest_kernel()});
  for (const auto& e : fs::directory_iterator(dir + "/images"))
    if (e.path().filename().string().rfind("pages-", 0) == 0) fs::remove(e.path());
  const auto started = std::chrono::steady_clock::now();
  const auto why = restore_failure(c, "python-snapstart", dir, manifest);
  EXPECT_NE(why.find("criu restore from"), std::string::npos)
      << (why.empty() ? "a restore without its memory image succeeded" : why);
  EXPECT_LT(std::chrono::steady_clock::now() - started, host_->init_timeout / 2);
  for (const auto& e : fs::directory_iterator(state_ + "/instances"))
    EXPECT_EQ(e.path().string().find("-restore"), std::string::npos) << e.path();
  const auto groups = "/sys/fs/cgroup/memory/" + host_->cgroup_parent;  // this host's layout
  if (fs::exists(groups)) {
    for (const auto& e : fs::directory_iterator(groups))
      EXPECT_FALSE(e.is_directory()) << "left behind: " << e.path();
  }
}

// CRIU checks that every file a restored process maps is the one it mapped:
// the same size and, for ELF files, the same build-id. thaw's CRIU reads the
// build-id with one small read instead of a mapping (scripts/criu-patches/06);
// a library changed in place to another build-id of the same size must still
// be caught.
TEST_F(Snapshots, ALibraryWithAnotherBuildIdOfTheSameSizeFailsTheRestore) {
  const auto runtimes = state_ + "/runtimes";  // a copy whose library can change
  fs::copy(THAW_RUNTIMES_DIR, runtimes, fs::copy_options::recursive);
  host_->runtimes_dir = runtimes;
  const auto c = config();
  const auto digest = make_snapshot(c, "python-snapstart");
  auto [dir, manifest] = store_->open(digest, {digest, criu_.version, manifest_kernel()});

  // The NT_GNU_BUILD_ID note: namesz 4, descsz 20, type 3, "GNU\0", 20 bytes.
  const auto lib = runtimes + "/python3.11/_thaw_arenas.so";
  auto bytes = read_text(lib);
  const std::string note("\x04\0\0\0\x14\0\0\0\x03\0\0\0GNU\0", 16);
  const auto at = bytes.find(note);
  ASSERT_NE(at, std::string::npos) << lib << " has no build-id note";
  const auto size = bytes.size();
  bytes[at + note.size()] = static_cast<char>(bytes[at + note.size()] ^ 0xff);
  fs::remove(lib);  // a new file, as a package upgrade makes
  std::ofstream(lib, std::ios::binary) << bytes;
  ASSERT_EQ(fs::file_size(lib), size);

  const auto why = restore_failure(c, "python-snapstart", dir, manifest);
  EXPECT_NE(why.find("bad build-ID"), std::string::npos)
      << (why.empty() ? "a restore mapped a library with another build-id" : why);
}

// thaw's CRIU stops its user-namespace and cgroup helpers after the restored
// tasks run (scripts/criu-patches/07): they must still be stopped. This
// process is a child subreaper, so a helper criu left running would end up
// here as a child named criu.
TEST_F(Snapshots, CriusHelpersAreGoneOnceARestoreIsSettled) {
  const auto c = config();
  const auto digest = make_snapshot(c, "python-snapstart");
  auto inst = restore(c, "python-snapstart", digest);
  ASSERT_FALSE(inst->invoke({"", "{}"}).error);
  inst.reset();  // reaps criu
  std::vector<std::string> left;
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::istringstream children(read_text(task.path().string() + "/children"));
    for (std::string pid; children >> pid;)
      if (read_text("/proc/" + pid + "/comm") == "criu\n") left.push_back(pid);
  }
  EXPECT_TRUE(left.empty()) << "criu processes left: " << left.size();
}

// A restored instance runs without its CPU share until its first invocation
// is on its way (as init does: Lambda boosts init), and thawd keeps its own
// view of the instance's /tmp until that invocation's answer is in (CRIU,
// still tidying up, holds the mount lock an unmount needs before that).
TEST_F(Snapshots, TheCpuShareAndThawdsViewOfTmpWaitForTheFirstInvocation) {
  if (sandbox::detect_cgroup_layout().version_of("cpu") == 0) GTEST_SKIP() << "no cpu controller";
  const auto c = config();
  const auto digest = make_snapshot(c, "python-snapstart");
  auto inst = restore(c, "python-snapstart", digest);
  const auto& cgroup = inst->sandbox_instance().cgroup().path();
  const auto tmp_view = host_->state_dir + "/instances/" + inst->id() + "-tmp";
  EXPECT_EQ(itest::cpu_quota_of(cgroup), "max");
  EXPECT_TRUE(mounted_here(tmp_view));

  const auto r = inst->invoke({"", "{}"});
  ASSERT_FALSE(r.error) << r.payload << r.log;
  EXPECT_EQ(itest::cpu_quota_of(cgroup), "14471");  // 256/1769 of 100 ms
  host_->background->drain();
  EXPECT_FALSE(mounted_here(tmp_view));
}

TEST_F(Snapshots, MemoryLimitHoldsAfterRestore) {
  auto c = config("python3.11", "handler.eat_memory");
  c.memory_mb = 128;
  c.timeout_s = 60;
  const auto digest = make_snapshot(c, "python-errors");
  auto inst = restore(c, "python-errors", digest);
  auto r = inst->invoke({"", "{}"});
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->type, "Runtime.OutOfMemory") << r.error->message;
}

TEST_F(Snapshots, SeccompNoNewPrivsAndUidHoldAfterRestore) {
  auto env = config("python3.11", "handler.environment");
  const auto d2 = make_snapshot(env, "python-errors");
  auto inst2 = restore(env, "python-errors", d2);
  // The restored process keeps its filter, no_new_privs and uid.
  const auto status =
      read_text("/proc/" + std::to_string(inst2->sandbox_instance().pid()) + "/status");
  EXPECT_NE(status.find("Seccomp:\t2"), std::string::npos) << status;
  EXPECT_NE(status.find("NoNewPrivs:\t1"), std::string::npos);
  EXPECT_NE(status.find("Uid:\t" + std::to_string(env.id_mapping().to_host(1000))),
            std::string::npos);
  EXPECT_NE(status.find("CapEff:\t0000000000000000"), std::string::npos);
}

// The sandbox suite's attacks (escape/attacks.py) that need no more than a
// handler to run (not the fork and memory bombs, which have tests of their
// own here and there), run by a function's handler in instances restored from
// one snapshot: a restored process still has its filter, no_new_privs, uid
// and no capabilities, sees only its own processes and its own /tmp, and each
// attack is refused as in a fresh sandbox.
TEST_F(Snapshots, EscapeAttacksAreRefusedInARestoredInstance) {
  const auto code = state_ + "/attacks-code";
  fs::create_directories(code);
  fs::copy_file(ESCAPE_ATTACKS_PY, code + "/attacks.py");
  std::ofstream(code + "/handler.py")
      << "import attacks\n\n\n"
         "def handler(event, context):\n"
         "    return [attacks.attack(a, '') if isinstance(a, str) else attacks.attack(*a)\n"
         "            for a in event]\n";
  std::ofstream(state_ + "/host-secret") << "host secret\n";
  fs::create_symlink(state_ + "/host-secret", code + "/escape-link");
  const auto c = config();
  const auto digest = make_snapshot(c, code);
  auto inst = restore(c, code, digest);
  const json attacks = {"ptrace",
                        "mount",
                        "umount",
                        "unshare",
                        "clone_newuser",
                        "setns",
                        "chroot",
                        "pivot_root",
                        "load_module",
                        "keyctl",
                        "add_key",
                        "bpf",
                        "perf_event_open",
                        "userfaultfd",
                        "process_vm_readv",
                        "open_by_handle_at",
                        "kexec",
                        "reboot",
                        "iopl",
                        "syslog",
                        "swapon",
                        "sethostname",
                        "raw_socket",
                        "packet_socket",
                        "mknod",
                        "capabilities",
                        "raise_rlimit",
                        "network_interfaces",
                        "dev_mem",
                        "write_usr",
                        "write_task",
                        "write_root",
                        "read_shadow",
                        "list_host_processes",
                        "write_proc_sys",
                        "sysrq",
                        "reach_sys",
                        "symlink_out",
                        json::array({"write_secret", "s3cret"})};
  const auto r = inst->invoke({"", attacks.dump()});
  ASSERT_FALSE(r.error) << r.payload << r.log;
  EXPECT_EQ(r.start_mode, StartMode::Restore);
  const auto outcomes = json::parse(r.payload);
  ASSERT_EQ(outcomes.size(), attacks.size()) << r.payload;
  for (size_t i = 0; i < attacks.size(); ++i)
    EXPECT_EQ(outcomes[i].get<std::string>().rfind("CONTAINED", 0), 0u)
        << attacks[i] << ": " << outcomes[i];

  // Another copy of the same snapshot has a /tmp of its own.
  auto other = restore(c, code, digest);
  const auto seen = other->invoke({"", R"(["read_other_tmp"])"});
  ASSERT_FALSE(seen.error) << seen.payload << seen.log;
  EXPECT_EQ(json::parse(seen.payload)[0].get<std::string>().rfind("CONTAINED", 0), 0u)
      << seen.payload;

  // A call of the i386 ABI is not refused but fatal, as in a fresh sandbox.
  const auto fatal = inst->invoke({"", R"(["i386_syscall"])"});
  ASSERT_TRUE(fatal.error) << fatal.payload;
  EXPECT_NE(fatal.error->message.find("signal: Bad system call"), std::string::npos)
      << fatal.error->message;
  EXPECT_FALSE(inst->reusable());
}

class Factory : public Snapshots {};

TEST_F(Factory, ColdStartSnapshotsInTheBackgroundThenRestores) {
  InstanceFactory f(*host_, store_.get(), criu_.path);
  const auto c = config();
  auto first = f.start(c, example("python-snapstart"), "code-1");
  EXPECT_EQ(first.mode, StartMode::Cold);
  ASSERT_TRUE(first.init.ok);
  EXPECT_EQ(first.instance->invoke({"", "{}"}).start_mode, StartMode::Cold);
  f.wait_idle();
  EXPECT_EQ(f.counters().snapshots_made, 1u);
  auto second = f.start(c, example("python-snapstart"), "code-1");
  EXPECT_EQ(second.mode, StartMode::Restore) << second.fallback_reason;
  auto r = second.instance->invoke({"", "{}"});
  EXPECT_EQ(r.start_mode, StartMode::Restore);
  EXPECT_EQ(json::parse(r.payload)["state"]["invocations"], 1);
  EXPECT_EQ(store_->list().front().restores, 1u);
}

TEST_F(Factory, ConcurrentColdStartsDumpOnce) {
  InstanceFactory f(*host_, store_.get(), criu_.path);
  const auto c = config();
  std::vector<std::future<StartedInstance>> starts;
  starts.reserve(4);
  for (int i = 0; i < 4; ++i)
    starts.push_back(std::async(std::launch::async,
                                [&] { return f.start(c, example("python-snapstart"), "code-2"); }));
  for (auto& s : starts) EXPECT_TRUE(s.get().init.ok);
  f.wait_idle();
  EXPECT_EQ(f.counters().snapshots_made + f.counters().snapshot_failures, 1u);
  EXPECT_EQ(store_->list().size(), 1u);
}

TEST_F(Factory, CorruptedImageFallsBackToColdAndTheSnapshotIsRebuilt) {
  InstanceFactory f(*host_, store_.get(), criu_.path);
  const auto c = config();
  f.snapshot_in_background(c, example("python-snapstart"), "code-3");
  f.wait_idle();
  const auto digest = function_digest(c, "code-3", fingerprint_of(*host_, c.runtime));
  for (const auto& e : fs::directory_iterator(state_ + "/snapshots/" + digest + "/images"))
    if (e.path().filename().string().rfind("pages-", 0) == 0) {
      std::fstream file(e.path(), std::ios::in | std::ios::out | std::ios::binary);
      file.put('\x13');
    }
  auto s = f.start(c, example("python-snapstart"), "code-3");
  EXPECT_EQ(s.mode, StartMode::Cold);
  EXPECT_NE(s.fallback_reason.find("checksum mismatch"), std::string::npos) << s.fallback_reason;
  EXPECT_EQ(f.counters().fallbacks, 1u);
  auto r = s.instance->invoke({"", "{}"});
  EXPECT_FALSE(r.error);  // the caller still gets an answer
  f.wait_idle();
  EXPECT_EQ(f.start(c, example("python-snapstart"), "code-3").mode, StartMode::Restore);
}

TEST_F(Factory, ManifestFromAnotherCriuVersionFallsBackAndIsRebuilt) {
  InstanceFactory f(*host_, store_.get(), criu_.path);
  const auto c = config();
  f.snapshot_in_background(c, example("python-snapstart"), "code-4");
  f.wait_idle();
  const auto manifest_path = state_ + "/snapshots/" +
                             function_digest(c, "code-4", fingerprint_of(*host_, c.runtime)) +
                             "/manifest.json";
  auto m = json::parse(read_text(manifest_path));
  m["criu_version"] = "4.1.1";
  std::ofstream(manifest_path) << m.dump();
  auto s = f.start(c, example("python-snapstart"), "code-4");
  EXPECT_EQ(s.mode, StartMode::Cold);
  EXPECT_NE(s.fallback_reason.find("criu 4.1.1"), std::string::npos) << s.fallback_reason;
  f.wait_idle();
  EXPECT_EQ(f.start(c, example("python-snapstart"), "code-4").mode, StartMode::Restore);
}

TEST_F(Factory, ProvidedFunctionsAreSnapshottedAndRestored) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl is not installed";
  InstanceFactory f(*host_, store_.get(), criu_.path);
  auto c = config("provided", "");
  EXPECT_TRUE(snapshot_supported("provided"));
  EXPECT_EQ(f.start(c, example("provided-snapstart"), "code-9").mode, StartMode::Cold);
  f.wait_idle();
  EXPECT_EQ(store_->list().size(), 1u);
  auto s = f.start(c, example("provided-snapstart"), "code-9", StartMode::Restore);
  EXPECT_EQ(s.mode, StartMode::Restore) << s.fallback_reason;
  ASSERT_TRUE(s.instance);
  auto r = s.instance->invoke({"", "{}"});
  ASSERT_FALSE(r.error) << r.payload << r.log;
  EXPECT_EQ(json::parse(r.payload)["count"], 1) << r.payload;
}

TEST_F(Factory, WithoutCriuEverythingWorksCold) {
  InstanceFactory f(*host_, store_.get(), "");
  EXPECT_FALSE(f.snapshots_enabled());
  auto s = f.start(config(), example("python-snapstart"), "code-5");
  EXPECT_EQ(s.mode, StartMode::Cold);
  EXPECT_FALSE(s.instance->invoke({"", "{}"}).error);
  f.wait_idle();
  EXPECT_TRUE(store_->list().empty());
}

TEST_F(Factory, SnapshotPolicyOffNeverSnapshots) {
  InstanceFactory f(*host_, store_.get(), criu_.path);
  auto c = config();
  c.snapshot = SnapshotPolicy::Off;
  EXPECT_EQ(f.start(c, example("python-snapstart"), "code-6").mode, StartMode::Cold);
  f.wait_idle();
  EXPECT_TRUE(store_->list().empty());
}

TEST_F(Factory, SnapshotsSurviveARestartAndOldDigestsAreCollected) {
  const auto c = config();
  {
    InstanceFactory f(*host_, store_.get(), criu_.path);
    f.snapshot_in_background(c, example("python-snapstart"), "code-7");
    f.wait_idle();
  }
  // A new store on the same directory: what a restarted thawd sees.
  store_ = std::make_unique<snapshots::SnapshotStore>(state_ + "/snapshots");
  InstanceFactory f(*host_, store_.get(), criu_.path);
  EXPECT_EQ(f.start(c, example("python-snapstart"), "code-7").mode, StartMode::Restore);
  // Redeploying makes a new digest; the old snapshot is garbage.
  const auto old_digest = function_digest(c, "code-7", fingerprint_of(*host_, c.runtime));
  EXPECT_EQ(
      store_->collect_garbage({function_digest(c, "code-8", fingerprint_of(*host_, c.runtime))}),
      1);
  EXPECT_FALSE(store_->exists(old_digest));
}

TEST_F(Snapshots, RestoredNodeCopiesDrawDifferentRandomNumbersAndUuids) {
  // The function drew from each source during init, so both copies start with
  // the same generator states and the same cached random bytes.
  auto t = restore_two_and_invoke(config("nodejs20.x", "index.handler"), "node-snapstart");
  const auto &ja = t.first_a, &jb = t.first_b;
  ASSERT_FALSE(ja.is_null() || jb.is_null());
  EXPECT_EQ(ja["drawnAtInit"], 3);
  for (const char* source : {"random", "uuid", "randomInt", "mathRandom"})
    EXPECT_NE(ja[source], jb[source]) << source << " repeats across restored copies";
}
