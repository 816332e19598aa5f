// Copying a tree an instance controls: files with their content and modes,
// links as links (never followed), FIFOs and devices left out, and every
// bound refusing with its reason. Manifests keep any file name.
#include "sandbox/tree_copy.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "snapshots/manifest.hpp"
#include "temp_dir.hpp"
#include "thaw/error.hpp"

using namespace thaw;
namespace fs = std::filesystem;

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST(TreeCopy, FilesDirectoriesAndLinksAsLinksFifosLeftOut) {
  test::TempDir from, to;
  fs::create_directories(from.path() + "/d/inner");
  std::ofstream(from.path() + "/d/inner/file") << "content";
  chmod((from.path() + "/d/inner/file").c_str(), 0640);
  fs::create_symlink("/etc", from.path() + "/link");
  ASSERT_EQ(mkfifo((from.path() + "/fifo").c_str(), 0600), 0);
  const auto result = sandbox::copy_tree_beneath(from.path(), to.path() + "/copy");
  EXPECT_EQ(read(to.path() + "/copy/d/inner/file"), "content");
  EXPECT_EQ(fs::status(to.path() + "/copy/d/inner/file").permissions(), fs::perms(0640));
  EXPECT_TRUE(fs::is_symlink(to.path() + "/copy/link"));
  EXPECT_EQ(fs::read_symlink(to.path() + "/copy/link"), "/etc");
  EXPECT_FALSE(fs::exists(fs::symlink_status(to.path() + "/copy/fifo")));
  EXPECT_EQ(result.skipped, 1u);
  EXPECT_EQ(result.entries, 4u);  // d, inner, file, link
  EXPECT_EQ(result.bytes, 7u);
}

TEST(TreeCopy, EveryBoundRefusesWithItsReason) {
  test::TempDir from, to;
  for (int i = 0; i < 5; ++i) std::ofstream(from.path() + "/f" + std::to_string(i)) << "12345";
  sandbox::TreeCopyLimits few;
  few.max_entries = 4;
  try {
    sandbox::copy_tree_beneath(from.path(), to.path() + "/a", few);
    ADD_FAILURE() << "five files copied under a bound of four";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than 4 entries"), std::string::npos) << e.what();
  }
  sandbox::TreeCopyLimits small;
  small.max_bytes = 20;
  try {
    sandbox::copy_tree_beneath(from.path(), to.path() + "/b", small);
    ADD_FAILURE() << "25 bytes copied under a bound of 20";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than 20 bytes"), std::string::npos) << e.what();
  }
}

TEST(SnapshotManifest, FileNamesOfAnyBytesSurviveTheRoundTrip) {
  snapshots::SnapshotManifest m;
  const std::string odd = std::string("tmp-files/\xff\xfe name%41\n", 20);
  m.files[odd] = "sum1";
  m.files["images/pages-1.img"] = "sum2";
  const auto text = snapshots::to_json(m);
  EXPECT_EQ(text.find('\xff'), std::string::npos);
  const auto back = snapshots::manifest_from_json(text);
  EXPECT_EQ(back.files, m.files);
}

TEST(SnapshotManifest, NumbersWithAFractionAreRefused) {
  snapshots::SnapshotManifest m;
  m.format = snapshots::kManifestFormat;
  auto text = snapshots::to_json(m);
  const auto at = text.find("\"created_unix_ms\": 0");
  ASSERT_NE(at, std::string::npos) << text;
  // Read into an int64, 1e30 was undefined behaviour.
  text.replace(at, 20, "\"created_unix_ms\": 1e30");
  try {
    snapshots::manifest_from_json(text);
    ADD_FAILURE() << "a manifest with 1e30 was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fraction"), std::string::npos) << e.what();
  }
}
