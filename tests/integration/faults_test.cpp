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
#include <sstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

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
  const auto dir = parent + "/big-code";
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
    std::ifstream cmd(e.path() / "cmdline");
    std::string args((std::istreambuf_iterator<char>(cmd)), {});
    if (args.find(word) != std::string::npos) return true;
  }
  return false;
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
  const bool caught = eventually([&] { return child_running(first.pid(), "dump"); },
                                 std::chrono::seconds(30));
  if (!caught) GTEST_SKIP() << "criu dump ended before thawd could be killed in it";
  first.kill_hard();
  ThawdProcess second({"--warm-memory-mb", "0"}, first.state_dir());
  Lambda l(second);
  // No work directory of the killed dump, and no snapshot without its manifest.
  const auto snapshots = first.state_dir() + "/snapshots";
  EXPECT_TRUE(entries_starting(snapshots, ".work-").empty());
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(snapshots, ec))
    EXPECT_TRUE(fs::exists(e.path() / "manifest.json")) << e.path();
  // The function is there and answers; a later cold start makes the snapshot.
  const auto r = l.invoke("hello", R"({"name":"again"})");
  ASSERT_EQ(r.result(), status::ok) << r.body();
  EXPECT_TRUE(eventually([&] { return l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 1; },
                         std::chrono::seconds(60)));
}
