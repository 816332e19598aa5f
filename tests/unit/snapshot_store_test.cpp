// The snapshot store's memory cache: restores read the cached copy while it
// is sound, a bad or missing copy is replaced from the durable one, and the
// cache never holds what the durable store no longer has. (Plain directories
// stand in for the tmpfs here; thawd's own tmpfs is tested end to end.)
#include "snapshots/snapshot_store.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "temp_dir.hpp"
#include "thaw/error.hpp"

namespace fs = std::filesystem;
using thaw::snapshots::RestoreExpectations;
using thaw::snapshots::SnapshotManifest;
using thaw::snapshots::SnapshotStore;

namespace {

constexpr const char* kDigest = "d1";

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

struct CachedStore {
  thaw::test::TempDir root;
  std::string durable = root.path() + "/durable", cache = root.path() + "/cache";
  SnapshotStore store{durable, cache};
  RestoreExpectations expected{kDigest, "4.2.1", "6.18"};

  // A published snapshot of kDigest: a pages file of 5 MB (more than one
  // huge page, not a whole number of them) and a nested file.
  void publish() {
    auto claim = store.try_claim(kDigest);
    ASSERT_TRUE(claim);
    fs::create_directories(claim->work_dir() + "/images");
    write(claim->work_dir() + "/images/pages-1.img", std::string(5'000'000, 'p'));
    write(claim->work_dir() + "/images/core-1.img", "core");
    SnapshotManifest m;
    m.criu_version = expected.criu_version;
    m.kernel_release = expected.kernel_release;
    store.publish(*claim, m);
  }
  std::string cached_pages() const { return cache + "/" + kDigest + "/images/pages-1.img"; }
  bool listed_as_cached() const {
    const auto list = store.list();
    return list.size() == 1 && list[0].cached;
  }
};

// Files this process writes may not grow past `bytes` while it lives: as a
// full tmpfs, writes fail (EFBIG instead of ENOSPC).
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &before_);
    old_handler_ = signal(SIGXFSZ, SIG_IGN);  // a failed write, not a killed test
    const rlimit limit{bytes, before_.rlim_max};
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &before_);
    signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit before_{};
  sighandler_t old_handler_{};
};

bool holds_work_directories(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind(".work-", 0) == 0) return true;
  return false;
}

}  // namespace

TEST(SnapshotStoreCache, RestoresReadTheCachedCopyOfAPublishedSnapshot) {
  CachedStore s;
  s.publish();
  EXPECT_TRUE(s.listed_as_cached());
  const auto [dir, manifest] = s.store.open(kDigest, s.expected);
  EXPECT_EQ(dir, s.cache + "/" + kDigest);
  EXPECT_EQ(read(s.cached_pages()), std::string(5'000'000, 'p'));
  EXPECT_EQ(read(dir + "/images/core-1.img"), "core");
  EXPECT_EQ(manifest.files.size(), 2u);
}

TEST(SnapshotStoreCache, ABadCachedCopyIsReplacedFromTheDurableOne) {
  CachedStore s;
  s.publish();
  write(s.cached_pages(), "spoiled");
  const auto [dir, manifest] = s.store.open(kDigest, s.expected);
  EXPECT_EQ(dir, s.durable + "/" + kDigest);  // this restore reads the sound copy
  s.store.settle();
  EXPECT_EQ(read(s.cached_pages()), std::string(5'000'000, 'p'));  // and the cache is sound again
  EXPECT_EQ(s.store.open(kDigest, s.expected).first, s.cache + "/" + kDigest);
}

TEST(SnapshotStoreCache, AnEmptyCacheIsFilledByTheFirstRestore) {
  CachedStore s;
  s.publish();
  fs::remove_all(s.cache + "/" + kDigest);  // as after a restart: the tmpfs went with thawd
  EXPECT_FALSE(s.listed_as_cached());
  EXPECT_EQ(s.store.open(kDigest, s.expected).first, s.durable + "/" + kDigest);
  s.store.settle();  // the copy is made beside the restore
  EXPECT_TRUE(s.listed_as_cached());
  EXPECT_EQ(s.store.open(kDigest, s.expected).first, s.cache + "/" + kDigest);
}

TEST(SnapshotStoreCache, AWrongDurableSnapshotIsRefusedEvenWhenItsCachedCopyIsGone) {
  CachedStore s;
  s.publish();
  fs::remove_all(s.cache + "/" + kDigest);
  write(s.durable + "/" + kDigest + "/images/core-1.img", "changed");
  EXPECT_THROW(s.store.open(kDigest, s.expected), thaw::Error);
  EXPECT_FALSE(fs::exists(s.cache + "/" + kDigest));  // nothing bad was cached
}

TEST(SnapshotStoreCache, DiscardAndGarbageCollectionEmptyTheCacheToo) {
  CachedStore s;
  s.publish();
  // A copy whose durable snapshot is gone (removed while thawd was stopped).
  fs::copy(s.cache + "/" + kDigest, s.cache + "/orphan", fs::copy_options::recursive);
  EXPECT_EQ(s.store.collect_garbage({kDigest, "orphan"}), 0);
  EXPECT_FALSE(fs::exists(s.cache + "/orphan"));
  EXPECT_TRUE(fs::exists(s.cache + "/" + kDigest));
  s.store.discard(kDigest);
  EXPECT_FALSE(fs::exists(s.cache + "/" + kDigest));
  EXPECT_FALSE(fs::exists(s.durable + "/" + kDigest));
}

TEST(SnapshotStoreCache, ASnapshotThatDoesNotFitIsReadFromDiskAndNotCopiedAgainAndAgain) {
  CachedStore s;
  s.publish();
  fs::remove_all(s.cache + "/" + kDigest);
  {
    FileSizeLimit full(1 << 20);  // the 5 MB pages file cannot be written
    EXPECT_EQ(s.store.open(kDigest, s.expected).first, s.durable + "/" + kDigest);
    s.store.settle();
  }
  EXPECT_FALSE(s.listed_as_cached());
  EXPECT_FALSE(holds_work_directories(s.cache)) << "a partial copy was left in the cache";
  // Room again, but each restore would pay the whole copy if it tried every
  // time: it waits until a snapshot is discarded.
  EXPECT_EQ(s.store.open(kDigest, s.expected).first, s.durable + "/" + kDigest);
  s.store.settle();
  EXPECT_FALSE(s.listed_as_cached());
  s.store.discard("another-digest");
  EXPECT_EQ(s.store.open(kDigest, s.expected).first, s.durable + "/" + kDigest);
  s.store.settle();
  EXPECT_TRUE(s.listed_as_cached());
}

// A function's /tmp goes into its snapshot (tmp-files/): a link it left there
// stays a link in the memory copy, never the host file it points to, and
// files keep their owners and modes, or the restored instance could not
// write its own files.
TEST(SnapshotStoreCache, TheCachedCopyKeepsLinksAsLinksAndOwnersAndModes) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (files owned by another uid)";
  CachedStore s;
  auto claim = s.store.try_claim(kDigest);
  ASSERT_TRUE(claim);
  const auto tmp = claim->work_dir() + "/tmp-files";
  fs::create_directories(tmp + "/dir");
  write(tmp + "/dir/own", "the instance's");
  ASSERT_EQ(chown((tmp + "/dir/own").c_str(), 101000, 101000), 0);
  ASSERT_EQ(chown((tmp + "/dir").c_str(), 101000, 101000), 0);
  ASSERT_EQ(chmod((tmp + "/dir/own").c_str(), 0640), 0);
  ASSERT_EQ(chmod((tmp + "/dir").c_str(), 01777), 0);
  const auto host_file = s.root.path() + "/host-secret";
  write(host_file, "host only");
  fs::create_symlink(host_file, tmp + "/link");
  SnapshotManifest m;
  m.criu_version = s.expected.criu_version;
  m.kernel_release = s.expected.kernel_release;
  s.store.publish(*claim, m);

  const auto cached = s.cache + "/" + kDigest + "/tmp-files";
  EXPECT_TRUE(fs::is_symlink(cached + "/link"));
  EXPECT_EQ(fs::read_symlink(cached + "/link"), host_file);
  struct stat file {
  }, dir{};
  ASSERT_EQ(lstat((cached + "/dir/own").c_str(), &file), 0);
  ASSERT_EQ(lstat((cached + "/dir").c_str(), &dir), 0);
  EXPECT_EQ(file.st_uid, 101000u);
  EXPECT_EQ(file.st_gid, 101000u);
  EXPECT_EQ(file.st_mode & 07777, 0640u);
  EXPECT_EQ(dir.st_uid, 101000u);
  EXPECT_EQ(dir.st_mode & 07777, 01777u);
  EXPECT_EQ(read(cached + "/dir/own"), "the instance's");
  // The manifest does not reach through the link either.
  EXPECT_EQ(s.store.open(kDigest, s.expected).second.files.count("tmp-files/link"), 0u);
}
