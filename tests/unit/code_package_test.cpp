#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <boost/beast/core/detail/base64.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "images/code_package.hpp"
#include "thaw/error.hpp"

using namespace thaw::images;
namespace fs = std::filesystem;

namespace {

struct Entry {
  std::string path;
  unsigned type = AE_IFREG;
  int perm = 0644;
  std::string data;  // file content
  std::string link;  // symlink target
  std::string hardlink;
};

Entry file(std::string path, std::string data, int perm = 0644) {
  Entry e;
  e.path = std::move(path), e.data = std::move(data), e.perm = perm;
  return e;
}
Entry dir(std::string path, int perm = 0755) {
  Entry e;
  e.path = std::move(path), e.type = AE_IFDIR, e.perm = perm;
  return e;
}
Entry soft_link(std::string path, std::string target) {
  Entry e;
  e.path = std::move(path), e.type = AE_IFLNK, e.perm = 0777, e.link = std::move(target);
  return e;
}
Entry hard_link(std::string path, std::string to) {
  Entry e;
  e.path = std::move(path), e.hardlink = std::move(to);
  return e;
}
Entry special(std::string path, unsigned type) {
  Entry e;
  e.path = std::move(path), e.type = type;
  return e;
}

la_ssize_t append(archive*, void* out, const void* buf, size_t n) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

enum class Kind { Zip, TarGz, Tar };

// Builds an archive in memory with libarchive's writer, so the tests need no tools.
std::string make_archive(Kind kind, const std::vector<Entry>& entries) {
  std::string out;
  archive* a = archive_write_new();
  if (kind == Kind::Zip) {
    archive_write_set_format_zip(a);
  } else {
    archive_write_set_format_pax_restricted(a);
    if (kind == Kind::TarGz) archive_write_add_filter_gzip(a);
  }
  archive_write_set_bytes_in_last_block(a, 1);  // no padding: the packed size is the real one
  EXPECT_EQ(archive_write_open(a, &out, nullptr, append, nullptr), ARCHIVE_OK);
  for (const auto& en : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, en.path.c_str());
    archive_entry_set_filetype(e, en.type);
    archive_entry_set_perm(e, static_cast<mode_t>(en.perm));
    if (!en.link.empty()) archive_entry_set_symlink(e, en.link.c_str());
    if (!en.hardlink.empty()) archive_entry_set_hardlink(e, en.hardlink.c_str());
    if (en.type == AE_IFCHR) archive_entry_set_rdev(e, makedev(1, 3));
    archive_entry_set_size(e, static_cast<la_int64_t>(en.data.size()));
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    if (!en.data.empty()) {
      EXPECT_EQ(archive_write_data(a, en.data.data(), en.data.size()),
                static_cast<la_ssize_t>(en.data.size()));
    }
    archive_entry_free(e);
  }
  EXPECT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

unsigned perms_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

const std::vector<Entry> kGood = {
    file("bootstrap", "#!/bin/sh\necho hi\n", 04755),
    dir("lib/", 0700),
    file("lib/handler.py", "def handler(e, c): return e\n"),
    soft_link("lib/current", "handler.py"),
    file("deep/er/file.txt", "x", 0600),  // parents made on the way
};

class CodePackage : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = fs::temp_directory_path() / "thaw-code-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    tmp_ = tmpl;
    store_ = std::make_unique<CodeStore>(tmp_ / "store");
  }
  void TearDown() override { fs::remove_all(tmp_); }

  std::set<std::string> store_listing() const {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(store_->root())) names.insert(e.path().filename());
    return names;
  }

  // The refusal must name the rule, and the store must look exactly as before.
  void expect_refused(const std::string& bytes, const std::string& rule,
                      const PackageLimits& limits = {}) {
    store_->add_archive(make_archive(Kind::Zip, {file("keep", "k")}));
    const auto before = store_listing();
    try {
      store_->add_archive(bytes, limits);
      ADD_FAILURE() << "accepted a package that breaks: " << rule;
    } catch (const thaw::Error& e) {
      EXPECT_NE(std::string(e.what()).find(rule), std::string::npos) << e.what();
    }
    EXPECT_EQ(store_listing(), before);
  }

  fs::path tmp_;
  std::unique_ptr<CodeStore> store_;
};

TEST_F(CodePackage, Sha256HexMatchesTheKnownDigest) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// Sandboxes reach their package by name as another uid; nobody lists the store.
TEST_F(CodePackage, RootIsTraversableButNotListableByOthers) {
  EXPECT_TRUE(fs::is_directory(store_->root()));
  EXPECT_EQ(perms_of(store_->root()), 0711u);
  EXPECT_TRUE(fs::path(store_->root()).is_absolute());
}

void expect_good_tree(const StoredPackage& pkg, const std::string& bytes) {
  const fs::path d = pkg.dir;
  EXPECT_EQ(pkg.sha256, sha256_hex(bytes));
  EXPECT_EQ(d.filename(), pkg.sha256);
  EXPECT_EQ(pkg.packed_bytes, bytes.size());
  EXPECT_EQ(pkg.entries, kGood.size());
  EXPECT_EQ(pkg.unpacked_bytes, 18u + 28u + 1u);
  EXPECT_EQ(read_file(d / "bootstrap"), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(read_file(d / "lib/current"), "def handler(e, c): return e\n");
  EXPECT_EQ(fs::read_symlink(d / "lib/current"), "handler.py");
  EXPECT_EQ(perms_of(d / "bootstrap"), 0755u);  // exec bit kept, setuid dropped
  EXPECT_EQ(perms_of(d / "lib/handler.py"), 0644u);
  EXPECT_EQ(perms_of(d / "deep/er/file.txt"), 0600u);
  for (const auto& sub : {d, d / "lib", d / "deep", d / "deep/er"})
    EXPECT_EQ(perms_of(sub), 0755u) << sub;
}

TEST_F(CodePackage, ZipUnpacksWithContentsAndExecBits) {
  const auto bytes = make_archive(Kind::Zip, kGood);
  expect_good_tree(store_->add_archive(bytes), bytes);
}

TEST_F(CodePackage, TarGzUnpacksWithContentsAndExecBits) {
  const auto bytes = make_archive(Kind::TarGz, kGood);
  expect_good_tree(store_->add_archive(bytes), bytes);
}

TEST_F(CodePackage, SameBytesAreStoredOnce) {
  const auto bytes = make_archive(Kind::Zip, kGood);
  const auto first = store_->add_archive(bytes);
  const auto marker = fs::path(first.dir) / "bootstrap";
  struct stat before {};
  ASSERT_EQ(stat(marker.c_str(), &before), 0);
  const auto second = store_->add_archive(bytes);
  struct stat after {};
  ASSERT_EQ(stat(marker.c_str(), &after), 0);
  EXPECT_EQ(second.dir, first.dir);
  EXPECT_EQ(second.entries, first.entries);
  EXPECT_EQ(after.st_ino, before.st_ino);  // not unpacked again
  EXPECT_EQ(store_listing(), (std::set<std::string>{first.sha256, first.sha256 + ".meta"}));
}

TEST_F(CodePackage, ArchiveFileIsStoredLikeItsBytes) {
  const auto bytes = make_archive(Kind::TarGz, kGood);
  const auto path = tmp_ / "code.tar.gz";
  std::ofstream(path, std::ios::binary) << bytes;
  expect_good_tree(store_->add_archive_file(path), bytes);
}

TEST_F(CodePackage, FindAndRemove) {
  const auto pkg = store_->add_archive(make_archive(Kind::Zip, kGood));
  const auto found = store_->find(pkg.sha256);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->dir, pkg.dir);
  EXPECT_EQ(found->packed_bytes, pkg.packed_bytes);
  EXPECT_EQ(found->unpacked_bytes, pkg.unpacked_bytes);
  EXPECT_EQ(found->entries, pkg.entries);
  EXPECT_FALSE(store_->find(std::string(64, '0')));
  EXPECT_FALSE(store_->find("../store"));
  store_->remove(pkg.sha256);
  EXPECT_FALSE(store_->find(pkg.sha256));
  EXPECT_TRUE(store_listing().empty());
  EXPECT_NO_THROW(store_->remove(pkg.sha256));
  EXPECT_THROW(store_->remove("../x"), thaw::Error);
}

TEST_F(CodePackage, DiscardUnusedKeepsOnlyWhatIsNamed) {
  const auto kept = store_->add_archive(make_archive(Kind::Zip, {file("a", "1")}));
  const auto gone = store_->add_archive(make_archive(Kind::Zip, {file("b", "2")}));
  fs::create_directory(fs::path(store_->root()) / "not-a-package");
  EXPECT_EQ(store_->discard_unused({kept.sha256}), 1);
  EXPECT_TRUE(store_->find(kept.sha256));
  EXPECT_FALSE(store_->find(gone.sha256));
  EXPECT_EQ(store_listing(),
            (std::set<std::string>{kept.sha256, kept.sha256 + ".meta", "not-a-package"}));
  EXPECT_EQ(store_->discard_unused({kept.sha256}), 0);
}

TEST_F(CodePackage, StoredPackageMustStillFitSmallerLimits) {
  const auto bytes = make_archive(Kind::Zip, kGood);
  store_->add_archive(bytes);
  PackageLimits small;
  small.max_entries = 2;
  EXPECT_THROW(store_->add_archive(bytes, small), thaw::Error);
}

TEST_F(CodePackage, RefusesDotDotEntry) {
  expect_refused(make_archive(Kind::TarGz, {file("a/../../evil", "x")}), "'..'");
  EXPECT_FALSE(fs::exists(tmp_ / "evil"));
}

TEST_F(CodePackage, RefusesAbsolutePath) {
  const auto target = (tmp_ / "pwned").string();
  expect_refused(make_archive(Kind::TarGz, {file(target, "x")}), "absolute path");
  EXPECT_FALSE(fs::exists(target));
}

TEST_F(CodePackage, RefusesSymlinkToAbsolutePath) {
  expect_refused(make_archive(Kind::Zip, {soft_link("etc", "/etc")}), "symlink to absolute path");
}

TEST_F(CodePackage, RefusesSymlinkEscapingRelatively) {
  expect_refused(make_archive(Kind::TarGz, {soft_link("a/b/up", "../../../outside")}),
                 "escapes the package");
}

TEST_F(CodePackage, RefusesSymlinkClimbingThroughAnotherSymlink) {
  // d/.. reads as the root, but d -> . makes it the root's parent.
  expect_refused(make_archive(Kind::TarGz, {soft_link("d", "."), soft_link("e", "d/..")}),
                 "'..' after a name");
}

TEST_F(CodePackage, RefusesWritingThroughASymlink) {
  expect_refused(
      make_archive(Kind::TarGz, {dir("sub/"), soft_link("link", "sub"), file("link/x", "x")}),
      "not a directory");
}

TEST_F(CodePackage, RefusesHardLink) {
  expect_refused(make_archive(Kind::TarGz, {file("a", "x"), hard_link("b", "a")}), "hard link");
}

TEST_F(CodePackage, RefusesDeviceFile) {
  expect_refused(make_archive(Kind::TarGz, {special("null", AE_IFCHR)}), "device file");
}

TEST_F(CodePackage, RefusesFifo) {
  expect_refused(make_archive(Kind::TarGz, {special("pipe", AE_IFIFO)}), "FIFO");
}

TEST_F(CodePackage, RefusesTooManyEntries) {
  std::vector<Entry> many;
  for (int i = 0; i < 5; ++i) many.push_back(file("f" + std::to_string(i), "x"));
  PackageLimits limits;
  limits.max_entries = 3;
  expect_refused(make_archive(Kind::Zip, many), "too many entries", limits);
}

TEST_F(CodePackage, RefusesTooLarge) {
  std::string data(5000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7919 % 251);
  PackageLimits limits;
  limits.max_unpacked_bytes = 1000;
  expect_refused(make_archive(Kind::TarGz, {file("big", data)}), "too large", limits);
}

TEST_F(CodePackage, RefusesZipBomb) {
  const auto bytes = make_archive(Kind::Zip, {file("zeros", std::string(4 << 20, '\0'))});
  ASSERT_LT(bytes.size(), 16u * 1024);  // it did compress
  expect_refused(bytes, "compression ratio");
}

TEST_F(CodePackage, RefusesGarbageBytes) {
  expect_refused("this is not an archive, just some text that goes on a while",
                 "not a zip or tar.gz");
  expect_refused("", "not a zip or tar.gz");
}

TEST_F(CodePackage, RefusesUncompressedTar) {
  expect_refused(make_archive(Kind::Tar, kGood), "not a zip or tar.gz");
}

TEST_F(CodePackage, DirectoryIsCopiedWithInternalSymlinks) {
  const auto src = tmp_ / "src";
  fs::create_directories(src / "lib");
  std::ofstream(src / "bootstrap") << "#!/bin/sh\n";
  fs::permissions(src / "bootstrap", fs::perms(0755));
  std::ofstream(src / "lib/a.py") << "print(1)\n";
  fs::create_symlink("../bootstrap", src / "lib/boot");
  const auto pkg = store_->add_directory(src);
  const fs::path d = pkg.dir;
  EXPECT_EQ(pkg.entries, 4u);
  EXPECT_EQ(pkg.unpacked_bytes, 10u + 9u);
  EXPECT_EQ(read_file(d / "lib/boot"), "#!/bin/sh\n");
  EXPECT_EQ(perms_of(d / "bootstrap"), 0755u);
  EXPECT_EQ(perms_of(d / "lib"), 0755u);
  // The same tree again is the same package; a change makes another one.
  EXPECT_EQ(store_->add_directory(src).sha256, pkg.sha256);
  fs::permissions(src / "bootstrap", fs::perms(0644));
  EXPECT_NE(store_->add_directory(src).sha256, pkg.sha256);
}

TEST_F(CodePackage, DirectoryWithEscapingSymlinkIsRefused) {
  const auto src = tmp_ / "src";
  fs::create_directories(src / "lib");
  std::ofstream(src / "lib/a.py") << "print(1)\n";
  fs::create_symlink("../../secret", src / "lib/out");
  const auto before = store_listing();
  try {
    store_->add_directory(src);
    ADD_FAILURE() << "accepted an escaping symlink";
  } catch (const thaw::Error& e) {
    EXPECT_NE(std::string(e.what()).find("escapes the package"), std::string::npos) << e.what();
  }
  EXPECT_EQ(store_listing(), before);
}

TEST_F(CodePackage, DirectoryWithFifoIsRefused) {
  const auto src = tmp_ / "src";
  fs::create_directories(src);
  ASSERT_EQ(mkfifo((src / "pipe").c_str(), 0644), 0);
  const auto before = store_listing();
  EXPECT_THROW(store_->add_directory(src), thaw::Error);
  EXPECT_EQ(store_listing(), before);
}

}  // namespace

// Found by tests/fuzz/code_package_fuzz: a tar.gz whose corruption libarchive
// reports without a message (a null error string) crashed the unpacking.
TEST_F(CodePackage, ACorruptArchiveWithoutAReasonIsRefused) {
  const std::string encoded =
      "H4sIABQVFmsC/+3UQQrCMBCF4Vn3FBEP0Bgbc55GhASlkSbe39iNUHDZguT/"
      "Nm+Yzaze+JRKOy7z+JTt6MpZu2S1Tq2N+c7L3jltRGnZwSuXca4npU3HQ+/j1OfQ3a4hqRA7QUMecbpvfeNT6skw/"
      "FBLAwQUAAAACAAKEYddtAhwaSsAAAAuAAAACgAAAGhhbhGHXbQIcGkrAAAALggAAAAGQAAACwAAAAAAAAAAAAAAgAFTL"
      "nAAAABsLnB5UEsF7v96Pmlrz6KM3+E0N95/BgAB";
  std::string bytes(boost::beast::detail::base64::decoded_size(encoded.size()), '\0');
  bytes.resize(
      boost::beast::detail::base64::decode(bytes.data(), encoded.data(), encoded.size()).first);
  expect_refused(bytes, "refused package");
}
