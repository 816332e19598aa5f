// Criu started ahead of restores (snapshots::CriuSpare, CriuSpares): it waits
// for its options, takes them over a socket, and ends without leaving a
// process or a directory behind. Real criu; restores through a spare are
// tested with thawd (thawd_scheduling_test.cpp).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "sandbox/error.hpp"
#include "snapshots/criu.hpp"
#include "snapshots/criu_environment.hpp"
#include "snapshots/criu_spares.hpp"

namespace fs = std::filesystem;
using thaw::Error;
namespace snapshots = thaw::snapshots;

namespace {

// A directory for the test's images and work directories, removed at the end.
struct Scratch {
  Scratch() {
    char tmpl[] = "/tmp/thaw-spares-XXXXXX";
    dir = mkdtemp(tmpl);
    fs::create_directories(dir + "/images");
  }
  ~Scratch() { fs::remove_all(dir); }
  std::string dir;
};

bool alive(pid_t pid) {
  return pid > 0 && kill(pid, 0) == 0;
}

// Criu's children of this process (spares are; they must all be gone).
int criu_children() {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::ifstream stat(e.path() / "stat");
    std::string pid, comm, state;
    pid_t ppid = 0;
    if (stat >> pid >> comm >> state >> ppid && ppid == getpid() && comm == "(criu)") ++n;
  }
  return n;
}

std::string usable_criu() {
  if (geteuid() != 0) return "";
  const auto criu = snapshots::probe_criu();
  return criu.usable() ? criu.path : "";
}

#define NEEDS_CRIU(criu)                                                             \
  const auto criu = usable_criu();                                                   \
  if (criu.empty()) GTEST_SKIP() << "needs root and CRIU 4.2+ passing `criu check`"; \
  snapshots::prepare_criu_environment()

}  // namespace

TEST(CriuSpare, WaitsForItsOptionsAndEndsWithoutThemLeavingNothing) {
  NEEDS_CRIU(criu);
  Scratch s;
  pid_t pid;
  std::string work;
  {
    snapshots::CriuSpare spare(criu, s.dir + "/images", s.dir + "/spare");
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
  NEEDS_CRIU(criu);
  Scratch s;
  snapshots::CriuSpare spare(criu, s.dir + "/images", s.dir + "/spare");
  EXPECT_TRUE(spare.usable());
  // criu opened the old directory when it started: a new one in its place
  // (a snapshot made again) must not be restored from the old one.
  fs::rename(s.dir + "/images", s.dir + "/old-images");
  fs::create_directories(s.dir + "/images");
  EXPECT_FALSE(spare.usable());
  snapshots::RestoreRequest r;
  r.images_dir = s.dir + "/images";
  EXPECT_THROW(snapshots::RestoreRun(spare, r), Error);
}

TEST(CriuSpare, TakesItsOptionsAndDescriptorsAndRestoresWithThem) {
  NEEDS_CRIU(criu);
  Scratch s;
  setenv("THAW_KEEP_CRIU_LOGS", s.dir.c_str(), 1);  // criu's debug log, to see what it took
  snapshots::CriuSpare spare(criu, s.dir + "/images", s.dir + "/spare");
  unsetenv("THAW_KEEP_CRIU_LOGS");
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  snapshots::RestoreRequest r;
  r.images_dir = s.dir + "/images";
  r.root = "/";
  r.inherit.push_back({p[1], "pipe:[1]"});
  r.mount_map.push_back({"/tmp", s.dir});
  snapshots::RestoreRun run(spare, r);
  close(p[1]);
  // No images: criu took the options, logged the passed descriptor, and failed
  // on the empty directory with its own reason (it did not hang, nor restore
  // without them).
  try {
    run.finish();
    ADD_FAILURE() << "a restore from an empty directory succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("criu restore from " + r.images_dir), std::string::npos)
        << e.what();
  }
  std::ifstream log(run.work_dir() + "/restore.log");
  const std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find("File pipe:[1] will be restored from inherit fd 200"), std::string::npos)
      << text;
  close(p[0]);
  EXPECT_EQ(criu_children(), 0);
}

TEST(CriuSpares, KeepsOneSparePerDirectoryUpToItsLimitAndEndsThemAll) {
  NEEDS_CRIU(criu);
  Scratch s;
  fs::create_directories(s.dir + "/a/images");
  fs::create_directories(s.dir + "/b/images");
  {
    snapshots::CriuSpares spares(criu, s.dir, 1);
    spares.prepare(s.dir + "/a/images");
    spares.prepare(s.dir + "/a/images");
    spares.settle();
    EXPECT_EQ(spares.waiting(), 1u);
    EXPECT_EQ(criu_children(), 1);
    auto taken = spares.take(s.dir + "/a/images");
    ASSERT_NE(taken, nullptr);
    EXPECT_EQ(spares.take(s.dir + "/a/images"), nullptr);
    EXPECT_EQ(spares.take(s.dir + "/b/images"), nullptr);
    taken.reset();

    // Over the limit, the one asked for least recently goes.
    spares.prepare(s.dir + "/a/images");
    spares.settle();
    spares.prepare(s.dir + "/b/images");
    spares.settle();
    EXPECT_EQ(spares.waiting(), 1u);
    EXPECT_EQ(spares.take(s.dir + "/a/images"), nullptr);
    spares.prepare(s.dir + "/a/images");
    spares.settle();

    // A snapshot removed takes its spare along; one whose directory is gone
    // goes at the next prune.
    spares.drop(s.dir + "/a");
    EXPECT_EQ(spares.waiting(), 0u);
    spares.prepare(s.dir + "/b/images");
    spares.settle();
    EXPECT_EQ(spares.waiting(), 1u);
    fs::remove_all(s.dir + "/b");
    spares.prune();
    EXPECT_EQ(spares.waiting(), 0u);
    EXPECT_EQ(criu_children(), 0);

    spares.prepare(s.dir + "/a/images");
    spares.settle();
    EXPECT_EQ(criu_children(), 1);
  }
  EXPECT_EQ(criu_children(), 0);
  for (const auto& e : fs::directory_iterator(s.dir))
    EXPECT_EQ(e.path().filename().string().rfind("spare-", 0), std::string::npos)
        << e.path() << " was left";
}
