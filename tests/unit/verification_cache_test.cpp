// The verification cache lets a restore skip re-hashing a snapshot only while
// none of its files changed: a rewrite that keeps size and mtime, a missing
// file and an unlisted file each send it back to a full checksum.
#include "verification_cache.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "temp_dir.hpp"

using thaw::snapshots::SnapshotManifest;
using thaw::snapshots::VerificationCache;

namespace {

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

struct Snapshot {
  thaw::test::TempDir dir;
  SnapshotManifest manifest;
  VerificationCache cache;
  Snapshot() {
    write(dir.path() + "/pages-1.img", "pages");
    write(dir.path() + "/core-1.img", "core");
    write(dir.path() + "/manifest.json", "{}");  // not part of the image set
    manifest.files = {{"pages-1.img", "sum1"}, {"core-1.img", "sum2"}};
    auto stamps = VerificationCache::take(dir.path(), manifest);
    EXPECT_TRUE(stamps.has_value());
    cache.remember(dir.path(), std::move(*stamps));
  }
};

}  // namespace

TEST(VerificationCache, AnUntouchedSnapshotNeedsNoHashing) {
  Snapshot s;
  EXPECT_TRUE(s.cache.unchanged(s.dir.path(), s.manifest));
  write(s.dir.path() + "/restore.log", "CRIU's log is not an image");
  EXPECT_TRUE(s.cache.unchanged(s.dir.path(), s.manifest));
}

TEST(VerificationCache, ARewriteWithTheSameSizeAndMtimeIsNoticed) {
  Snapshot s;
  const auto path = s.dir.path() + "/pages-1.img";
  struct stat before {};
  ASSERT_EQ(stat(path.c_str(), &before), 0);
  usleep(20000);  // ctime has (at least) the kernel tick's resolution
  write(path, "PAGES");
  const timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);  // mtime set back
  EXPECT_FALSE(s.cache.unchanged(s.dir.path(), s.manifest));
}

TEST(VerificationCache, AMissingOrUnlistedFileIsNoticed) {
  Snapshot s;
  write(s.dir.path() + "/extra.img", "x");
  EXPECT_FALSE(s.cache.unchanged(s.dir.path(), s.manifest));
  unlink((s.dir.path() + "/extra.img").c_str());
  unlink((s.dir.path() + "/core-1.img").c_str());
  EXPECT_FALSE(s.cache.unchanged(s.dir.path(), s.manifest));
  EXPECT_FALSE(VerificationCache::take(s.dir.path(), s.manifest).has_value());
}

TEST(VerificationCache, AForgottenOrUnknownDirectoryIsNotTrusted) {
  Snapshot s;
  s.cache.forget(s.dir.path());
  EXPECT_FALSE(s.cache.unchanged(s.dir.path(), s.manifest));
  VerificationCache empty;
  EXPECT_FALSE(empty.unchanged(s.dir.path(), s.manifest));
}

// Files found in a walk are named relative to the snapshot by their spelling.
TEST(VerificationCache, WalkedFilesAreNamedRelativeToTheSnapshot) {
  using thaw::snapshots::relative_in_walk;
  EXPECT_EQ(relative_in_walk("/s/d1/images/pages-1.img", "/s/d1"), "images/pages-1.img");
  EXPECT_EQ(relative_in_walk("/s/d1/images/pages-1.img", "/s/d1/"), "images/pages-1.img");
  EXPECT_EQ(relative_in_walk("/s/d1/manifest.json", "/s/d1"), "manifest.json");
  EXPECT_EQ(relative_in_walk("d1/tmp-files/a/b", "d1"), "tmp-files/a/b");
}
