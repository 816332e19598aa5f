// Faults: thawd killed with SIGKILL in the middle of its work, and a state
// directory whose disk fills up. thawd answers in Lambda's shape, keeps
// serving what it can, loses no function and no accepted event, leaves no
// half-written code or snapshot behind, and recovers by itself.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "host_processes.hpp"
#include "http_client.hpp"
#include "lambda_client.hpp"
#include "lambda_requests.hpp"
#include "sandbox/cgroup.hpp"
#include "thawd_process.hpp"

using namespace thaw::itest;
using http::status;
using http::verb;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const json kNoSnapshot = {{"SnapStart", {{"ApplyOn", "None"}}}};

// A state directory on a small file system of its own (a tmpfs), named as
// ThawdProcess names its directories; everything goes with it.
class SmallStateDir {
 public:
  explicit SmallStateDir(const std::string& size) {
    char tmpl[] = "/tmp/thawd-it-XXXXXX";
    dir_ = mkdtemp(tmpl);
    fs::create_directories(state());
    mounted_ = mount("thaw-fault-state", state().c_str(), "tmpfs", 0,
                     ("size=" + size + ",mode=0700").c_str()) == 0;
  }
  ~SmallStateDir() {
    // The cgroups thawd made there, then the file system.
    const auto parent = "thaw-it-" + fs::path(dir_).filename().string().substr(9);
    try {
      thaw::sandbox::reap_orphan_cgroups(parent);
      thaw::sandbox::remove_cgroup_parent(parent);
    } catch (const std::exception&) {
    }
    if (mounted_) umount2(state().c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  bool mounted() const { return mounted_; }
  std::string state() const { return dir_ + "/state"; }

  // Writes a file until the disk is full.
  void fill() {
    std::ofstream out(state() + "/filler", std::ios::binary);
    const std::string block(1 << 20, 'f');
    while (out.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
  }
  void make_room() { fs::remove(state() + "/filler"); }
  // Fills the disk, then frees `bytes` of it again.
  void fill_leaving(uintmax_t bytes) {
    fill();
    const auto path = state() + "/filler";
    fs::resize_file(path, fs::file_size(path) > bytes ? fs::file_size(path) - bytes : 0);
  }

 private:
  std::string dir_;
  bool mounted_ = false;
};

// A directory for a test's code, removed with it whatever happens.
class CodeParent {
 public:
  CodeParent() {
    char tmpl[] = "/tmp/thaw-fault-code-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  ~CodeParent() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// A code directory of `files` files of random (incompressible) bytes beside a
// handler: unpacking it takes a while.
std::string big_code_dir(const std::string& parent, int files, size_t bytes_each) {
  auto dir = parent + "/big-code";
  fs::create_directories(dir);
  std::ofstream(dir + "/handler.py") << "def handler(event, context):\n    return 'big'\n";
  std::mt19937_64 rng(42);
  std::string data(bytes_each, '\0');
  for (int i = 0; i < files; ++i) {
    for (auto& c : data) c = static_cast<char>(rng());
    std::ofstream(dir + "/blob" + std::to_string(i), std::ios::binary) << data;
  }
  return dir;
}

json create_body_for(const std::string& name, const std::string& dir, const json& extra = {}) {
  json body = {{"FunctionName", name},
               {"Runtime", "python3.11"},
               {"Handler", "handler.handler"},
               {"Role", "arn:aws:iam::000000000000:role/test"},
               {"Code", {{"ZipFile", zip_base64(dir)}}}};
  if (!extra.is_null()) body.update(extra);
  return body;
}

std::vector<std::string> entries_starting(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().rfind(prefix, 0) == 0) found.push_back(e.path().string());
  return found;
}

// A child of `parent` whose command line holds `word` (criu dump, say).
bool child_running(pid_t parent, const std::string& word) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const auto pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != parent) continue;
    const auto args = read_proc_file(e.path() / "cmdline");
    if (args.find(word) != std::string::npos) return true;
  }
  return false;
}

// After `first` (with function "hello") was killed while making its
// snapshot: a thawd restarted on its state finds no work directory and no
// snapshot without its manifest, answers, and makes the snapshot again.
void expect_snapshot_made_again_after_restart(const ThawdProcess& first) {
  ThawdProcess second({"--warm-memory-mb", "0"}, first.state_dir());
  Lambda l(second);
  const auto snapshots = first.state_dir() + "/snapshots";
  EXPECT_TRUE(entries_starting(snapshots, ".work-").empty());
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(snapshots, ec))
    EXPECT_TRUE(fs::exists(e.path() / "manifest.json")) << e.path();
  const auto r = l.invoke("hello", R"({"name":"again"})");
  ASSERT_EQ(r.result(), status::ok) << r.body();
  EXPECT_TRUE(eventually([&] { return l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 1; },
                         std::chrono::seconds(60)));
}

}  // namespace

TEST(Faults, AFullDiskRefusesInLambdasShapeAndThawdRecoversWhenSpaceReturns) {
  SmallStateDir small("96m");
  if (!small.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here";
  ThawdProcess thawd({"--warm-memory-mb", "0"}, small.state());
  Lambda l(thawd);
  l.create("small", "handler.handler", "python-hello", kNoSnapshot);
  ASSERT_EQ(l.invoke("small", R"({"name":"before"})").result(), status::ok);

  const CodeParent code_parent;
  const auto big = big_code_dir(code_parent.dir(), 4, 4 << 20);
  small.fill();
  // A code upload: refused with the reason, nothing half-unpacked left.
  const auto refused = l.client.request(verb::post, kFunctions, create_body_for("big", big).dump());
  EXPECT_EQ(refused.result(), status::bad_request) << refused.body();
  EXPECT_EQ(refused["x-amzn-ErrorType"], "CodeStorageExceededException") << refused.body();
  EXPECT_NE(refused.body().find("No space left on device"), std::string::npos) << refused.body();
  EXPECT_TRUE(entries_starting(small.state() + "/code", ".tmp-").empty());
  EXPECT_EQ(l.client.request(verb::get, std::string(kFunctions) + "/big").result(),
            status::not_found);
  // An invocation still answers, though its log cannot be written.
  EXPECT_EQ(l.invoke("small", R"({"name":"full"})").result(), status::ok);
  // An event is accepted only if it is kept.
  const auto event = l.invoke("small", R"({"name":"event"})", {{"X-Amz-Invocation-Type", "Event"}});
  const bool accepted = event.result() == status::accepted;
  if (!accepted) {
    EXPECT_GE(static_cast<int>(event.result()), 500) << event.body();
    EXPECT_FALSE(event["x-amzn-ErrorType"].empty()) << event.body();
  }
  EXPECT_EQ(l.client.request(verb::get, "/healthz").result(), status::ok);

  // Space returns: the same upload goes through, and the event ran.
  small.make_room();
  const auto created = l.client.request(verb::post, kFunctions, create_body_for("big", big).dump());
  EXPECT_EQ(created.result(), status::created) << created.body();
  EXPECT_EQ(json::parse(l.invoke("big").body()), "big");
  if (accepted) {
    EXPECT_TRUE(eventually([&] {
      return thawd.log().find(std::string(event["X-Amz-Request-Id"])) != std::string::npos;
    }));
  }
}

TEST(Faults, Kill9DuringACodeUploadLeavesNoHalfUnpackedCode) {
  ThawdProcess first({"--warm-memory-mb", "0"});
  const CodeParent code_parent;
  const auto body = create_body_for("big", big_code_dir(code_parent.dir(), 6000, 2048)).dump();
  auto upload = std::async(std::launch::async, [&] {
    try {
      HttpClient c(first.port(), first.token());
      return c.request(verb::post, kFunctions, body).result();
    } catch (const std::exception&) {
      return status::unknown;  // the connection ended with thawd
    }
  });
  // Unpacking 6000 files takes a while: kill thawd once it has begun.
  const auto code = first.state_dir() + "/code";
  bool caught = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!caught && upload.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready &&
         std::chrono::steady_clock::now() < until)
    caught = !entries_starting(code, ".tmp-").empty();
  first.kill_hard();
  upload.wait();
  ThawdProcess second({"--warm-memory-mb", "0"}, first.state_dir());
  Lambda l(second);
  if (!caught) GTEST_SKIP() << "the upload finished before thawd could be killed in it";
  EXPECT_TRUE(entries_starting(code, ".tmp-").empty()) << "half-unpacked code stays";
  // Not answered, so not created; the same upload works now.
  EXPECT_EQ(l.client.request(verb::get, std::string(kFunctions) + "/big").result(),
            status::not_found);
  EXPECT_EQ(l.client.request(verb::post, kFunctions, body).result(), status::created);
}

TEST(Faults, Kill9DuringASnapshotDumpLosesNoFunctionAndNoSnapshotIsHalfWritten) {
  ThawdProcess first({"--warm-memory-mb", "0"});
  {
    Lambda l(first);
    l.create("hello", "handler.handler", "python-hello");
  }
  // The snapshot is made in the background after the create: wait for its dump.
  const bool caught =
      eventually([&] { return child_running(first.pid(), "dump"); }, std::chrono::seconds(30));
  if (!caught) GTEST_SKIP() << "criu dump ended before thawd could be killed in it";
  first.kill_hard();
  expect_snapshot_made_again_after_restart(first);
}

// Publishing (checksumming the images, writing the manifest, the rename
// that makes the snapshot visible) follows criu's exit: kill thawd there.
TEST(Faults, Kill9WhileASnapshotIsPublishedLeavesNoHalfSnapshot) {
  ThawdProcess first({"--warm-memory-mb", "0"});
  {
    Lambda l(first);
    l.create("hello", "handler.handler", "python-hello");
  }
  const auto snapshots = first.state_dir() + "/snapshots";
  bool caught = false;
  if (eventually([&] { return child_running(first.pid(), "dump"); }, std::chrono::seconds(30))) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (child_running(first.pid(), "dump") && std::chrono::steady_clock::now() < until) {
    }
    caught = !entries_starting(snapshots, ".work-").empty();
  }
  first.kill_hard();
  if (!caught) GTEST_SKIP() << "the snapshot was published before thawd could be killed";
  expect_snapshot_made_again_after_restart(first);
}

namespace {

// A criu for thawd's --criu that runs the real one and, while armed, runs
// `on_restore` (bash, with $criu the real criu's pid and $thawd thawd's)
// once in the middle of each restore. criu runs a step script at each step
// of a restore (--action-script) and waits for it, so the first step after
// the tree's root is forked meets it every time, however fast the restore.
// Spares (criu started ahead) are restores too and meet it once their
// options came.
class CriuWrapper {
 public:
  explicit CriuWrapper(const std::string& on_restore) {
    path_ = dir_.dir() + "/criu";
    const auto step = dir_.dir() + "/step";
    // -p: bash keeps the effective uid thawd runs criu with (the owner's).
    std::ofstream(path_) << R"(#!/bin/bash -p
for real in /usr/local/sbin/criu /usr/local/bin/criu /usr/sbin/criu /usr/bin/criu /sbin/criu; do
  [ -x "$real" ] && break
done
[ "$1" = restore ] && [ -e ")"
                         << armed() << R"(" ] || exec "$real" "$@"
export THAW_TEST_THAWD=$PPID
exec "$real" "$@" --action-script ")"
                         << step << R"("
)";
    std::ofstream(step) << R"(#!/bin/bash -p
[ "$CRTOOLS_SCRIPT_ACTION" = pre-restore ] && exit 0
criu=$PPID thawd=$THAW_TEST_THAWD
[ -e "${0%/*}/stepped-$criu" ] && exit 0
touch "${0%/*}/stepped-$criu"
)" << on_restore << "\n";
    fs::permissions(path_, fs::perms(0755));
    fs::permissions(step, fs::perms(0755));
  }
  const std::string& path() const { return path_; }
  // Restores meet on_restore only while armed.
  std::string armed() const { return dir_.dir() + "/armed"; }
  void arm() { std::ofstream(armed()) << ""; }
  void disarm() { fs::remove(armed()); }

 private:
  CodeParent dir_;
  std::string path_;
};

// Whether a process's command line names `path`.
bool any_process_runs(const std::string& path) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const auto args = read_proc_file(e.path() / "cmdline");
    if (args.find(path) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST(Faults, CriuKilledInTheMiddleOfARestoreCostsOnlyThatRestore) {
  CriuWrapper criu("kill -9 $criu");
  ThawdProcess thawd({"--warm-memory-mb", "0", "--criu", criu.path()});
  Lambda l(thawd);
  l.create("hello", "handler.handler", "python-hello");
  ASSERT_TRUE(eventually([&] { return l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 1; },
                         std::chrono::seconds(60)))
      << thawd.log();
  criu.arm();
  const auto started = std::chrono::steady_clock::now();
  const auto r = l.invoke("hello", R"({"name":"killed"})", {{"X-Thaw-Start-Mode", "restore"}});
  const auto took = std::chrono::steady_clock::now() - started;
  // Answered by a cold start instead, at once, not after the init timeout.
  ASSERT_EQ(r.result(), status::ok) << r.body();
  EXPECT_EQ(r["X-Thaw-Start-Mode"], "cold");
  EXPECT_LT(took, std::chrono::seconds(8));
  EXPECT_NE(thawd.log().find("not used, starting cold"), std::string::npos) << thawd.log();
  // Nothing of the half-restored tree stays, in thawd's groups or beside
  // thawd: only the cold instance runs.
  EXPECT_TRUE(eventually([&] {
    return processes_in_cgroups_under(thawd.cgroup_parent()).size() == 1;
  })) << processes_in_cgroups_under(thawd.cgroup_parent()).size();
  EXPECT_TRUE(eventually([&] { return !any_process_runs(":/" + thawd.cgroup_parent() + "/"); }));
  EXPECT_TRUE(entries_starting(thawd.state_dir() + "/instances", "hello-r").empty());
  // A new snapshot is made, and restores work again with criu left alone.
  criu.disarm();
  ASSERT_TRUE(eventually([&] { return l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 1; },
                         std::chrono::seconds(60)));
  const auto again = l.invoke("hello", R"({"name":"again"})", {{"X-Thaw-Start-Mode", "restore"}});
  ASSERT_EQ(again.result(), status::ok) << again.body();
  EXPECT_EQ(again["X-Thaw-Start-Mode"], "restore");
}

TEST(Faults, Kill9DuringARestoreLeavesNothingRunningAfterTheRestart) {
  // criu is held still in the middle of the restore until thawd is gone,
  // and some seconds more (the restarted thawd finds it there), then goes
  // on without it. The seconds are many: a sanitized thawd's start on a
  // loaded machine took more than 5 once, and the restart ends it early.
  CriuWrapper criu(R"(touch "${0%/*}/held"
while kill -0 $thawd 2>/dev/null; do sleep 0.01; done
sleep 15)");
  ThawdProcess first({"--warm-memory-mb", "0", "--criu", criu.path()});
  {
    Lambda l(first);
    l.create("hello", "handler.handler", "python-hello");
    ASSERT_TRUE(
        eventually([&] { return l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 1; },
                   std::chrono::seconds(60)));
  }
  criu.arm();
  auto invocation = std::async(std::launch::async, [&] {
    try {
      HttpClient c(first.port(), first.token());
      return c
          .request(verb::post, std::string(kFunctions) + "/hello/invocations", "{}",
                   {{"X-Thaw-Start-Mode", "restore"}})
          .result();
    } catch (const std::exception&) {
      return status::unknown;  // the connection ended with thawd
    }
  });
  const auto held = fs::path(criu.path()).parent_path().string() + "/held";
  ASSERT_TRUE(eventually([&] { return fs::exists(held); }, std::chrono::seconds(30)));
  first.kill_hard();
  invocation.wait();
  criu.disarm();
  ThawdProcess second({"--warm-memory-mb", "0"}, first.state_dir());
  Lambda l(second);
  EXPECT_NE(second.log().find("leftover_criu_ended"), std::string::npos) << second.log();
  // The tree criu was restoring without thawd does not outlive the restart.
  EXPECT_TRUE(eventually([&] { return processes_in_cgroups_under(second.cgroup_parent()).empty(); },
                         std::chrono::seconds(20)))
      << processes_in_cgroups_under(second.cgroup_parent()).size();
  const auto left = entries_starting(first.state_dir() + "/instances", "hello-r");
  EXPECT_TRUE(left.empty()) << left.front();
  const auto r = l.invoke("hello", R"({"name":"after"})");
  EXPECT_EQ(r.result(), status::ok) << r.body();
  // And so does the wrapper, which thawd ran as its criu.
  EXPECT_TRUE(eventually([&] { return !any_process_runs(criu.path()); }, std::chrono::seconds(20)));
}

TEST(Faults, AFullDiskFailsOnlyTheSnapshotWhichIsMadeOnceSpaceReturns) {
  SmallStateDir small("96m");
  if (!small.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here";
  ThawdProcess thawd({"--warm-memory-mb", "0"}, small.state());
  Lambda l(thawd);
  // Room for the code and the registry, not for the snapshot's memory images.
  small.fill_leaving(4 << 20);
  l.create("hello", "handler.handler", "python-hello");
  ASSERT_TRUE(eventually([&] { return thawd.log().find("failed") != std::string::npos; },
                         std::chrono::seconds(60)))
      << thawd.log();
  EXPECT_NE(thawd.log().find("No space left on device"), std::string::npos) << thawd.log();
  EXPECT_TRUE(l.get_json("/thaw/v1/snapshots")["Snapshots"].empty());
  EXPECT_TRUE(entries_starting(small.state() + "/snapshots", ".work-").empty());
  const auto r = l.invoke("hello", R"({"name":"full"})");
  ASSERT_EQ(r.result(), status::ok) << r.body();

  // Space returns: the next cold start makes the snapshot.
  small.make_room();
  ASSERT_EQ(l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "cold"}}).result(), status::ok);
  EXPECT_TRUE(eventually([&] { return l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 1; },
                         std::chrono::seconds(60)))
      << thawd.log();
}
