#include "images/code_package.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>  // renameat2
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "thaw/error.hpp"
#include "thaw/unique_fd.hpp"

namespace thaw::images {
namespace {

// Below this much output the ratio says nothing: tiny files compress absurdly well.
constexpr uint64_t kRatioFloor = 1024 * 1024;

using Fd = UniqueFd;

// libarchive's message for the last error; it may have none (a null pointer,
// which a std::string cannot take: found by tests/fuzz/code_package_fuzz).
std::string archive_reason(archive* a) {
  const char* reason = archive_error_string(a);
  return reason ? reason : "no reason given";
}

// A directory in the store that disappears with its contents unless renamed away first.
class TempDir {
 public:
  explicit TempDir(const std::string& root) : path_(root + "/.tmp-XXXXXX") {
    if (!mkdtemp(path_.data())) throw_errno("creating a temporary directory in " + root);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class Sha256 {
 public:
  Sha256() {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
      throw Error("sha256: cannot initialise the OpenSSL digest");
  }
  void update(std::string_view bytes) {
    if (EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()) != 1) throw Error("sha256");
  }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), md, &len) != 1) throw Error("sha256");
    std::string out;
    for (unsigned int i = 0; i < len; ++i)
      out.append({"0123456789abcdef"[md[i] >> 4], "0123456789abcdef"[md[i] & 0xf]});
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_{EVP_MD_CTX_new(), EVP_MD_CTX_free};
};

[[noreturn]] void refuse(const std::string& entry, const std::string& rule) {
  throw Error("refused package entry '" + entry + "': " + rule);
}

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = std::min(path.find('/', start), path.size());
    parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

// The entry's path as components below the package root, without "" and ".".
std::vector<std::string> entry_components(const std::string& entry) {
  if (entry.empty()) refuse(entry, "empty path");
  if (entry.front() == '/') refuse(entry, "absolute path");
  std::vector<std::string> parts;
  for (auto& part : split(entry)) {
    if (part == "..") refuse(entry, "'..' component in path");
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
  }
  return parts;
}

// `depth` is how many directories lie between the package root and the link;
// they are real directories, as nothing is ever created through a symlink. A
// `..` after a name is refused: the name may be a symlink itself (`d -> .`),
// so `d/..` climbs out of the package although it reads as staying in.
void check_symlink(const std::string& entry, size_t depth, const std::string& target) {
  if (target.empty()) refuse(entry, "symlink with an empty target");
  if (target.front() == '/') refuse(entry, "symlink to absolute path '" + target + "'");
  bool after_name = false;
  for (const auto& part : split(target)) {
    if (part.empty() || part == ".") continue;
    if (part != "..") {
      after_name = true;
    } else if (after_name) {
      refuse(entry, "symlink target '" + target +
                        "' has '..' after a name, which may escape the package through another "
                        "symlink");
    } else if (depth-- == 0) {
      refuse(entry, "symlink target '" + target + "' escapes the package");
    }
  }
}

// Counts entries and bytes as they are written, so a lying header cannot slip past the limits.
struct Budget {
  const PackageLimits& limits;
  uint64_t packed = 0;  // 0: a directory, where no ratio applies
  uint64_t bytes = 0;
  uint64_t entries = 0;

  void entry(const std::string& name) {
    if (++entries > limits.max_entries)
      refuse(name, "too many entries (limit " + std::to_string(limits.max_entries) + ")");
  }
  void check_room(const std::string& name, uint64_t n) const {
    if (n > limits.max_unpacked_bytes - std::min(bytes, limits.max_unpacked_bytes))
      refuse(name, "package too large: over the limit of " +
                       std::to_string(limits.max_unpacked_bytes) + " unpacked bytes");
  }
  void add(const std::string& name, uint64_t n) {
    check_room(name, n);
    bytes += n;
    if (packed > 0 && bytes >= kRatioFloor &&
        static_cast<double>(bytes) / static_cast<double>(packed) > limits.max_compression_ratio)
      refuse(name, std::to_string(bytes) + " bytes unpacked from " + std::to_string(packed) +
                       " packed: compression ratio over the limit (a zip bomb)");
  }
};

// Opens directory `name` under `dirfd`, creating it if missing, never through a symlink.
Fd open_or_make_dir(int dirfd, const std::string& name, const std::string& entry) {
  if (mkdirat(dirfd, name.c_str(), 0755) != 0 && errno != EEXIST)
    throw_errno("package entry '" + entry + "': mkdir " + name);
  Fd fd(openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd && (errno == ELOOP || errno == ENOTDIR))
    refuse(entry, "'" + name + "' is already a file or symlink, not a directory");
  if (!fd) throw_errno("package entry '" + entry + "': open " + name);
  // mkdirat honours the umask, and sandboxes read the tree as another uid.
  if (fchmod(fd.get(), 0755) != 0) throw_errno("package entry '" + entry + "': chmod " + name);
  return fd;
}

Fd open_parent(int root, const std::vector<std::string>& parts, const std::string& entry) {
  Fd dir(fcntl(root, F_DUPFD_CLOEXEC, 0));
  if (!dir) throw_errno("dup");
  for (size_t i = 0; i + 1 < parts.size(); ++i) dir = open_or_make_dir(dir.get(), parts[i], entry);
  return dir;
}

// Copies what `read_some` yields into `out`, counting it; `read_some` returns 0 at the end.
uint64_t copy_data(const std::function<size_t(char*, size_t)>& read_some, int out,
                   const std::string& entry, Budget& budget, Sha256* hash) {
  std::vector<char> buf(64 * 1024);
  uint64_t total = 0;
  while (size_t n = read_some(buf.data(), buf.size())) {
    budget.add(entry, n);
    total += n;
    if (hash) hash->update({buf.data(), n});
    for (size_t done = 0; done < n;) {
      ssize_t w = write(out, buf.data() + done, n - done);
      if (w < 0 && errno != EINTR) throw_errno("package entry '" + entry + "': write");
      done += static_cast<size_t>(std::max<ssize_t>(w, 0));
    }
  }
  return total;
}

// Checks each entry of a package, from an archive or a directory alike, against
// the rules and writes it below `root`, never through a symlink.
struct PackageWriter {
  int root;
  Budget budget;
  std::optional<Sha256> listing;  // a directory package is named by a listing of its tree

  void note(std::initializer_list<std::string_view> fields) {
    if (listing)
      for (auto f : fields) listing->update(f), listing->update(std::string_view("\0", 1));
  }

  // `type` is S_IFMT of the mode (libarchive's AE_IF* have the same values);
  // `size_hint` < 0 when unknown.
  void write(const std::string& name, mode_t type, mode_t perm, const std::string& link_target,
             const std::string& hardlink, int64_t size_hint,
             const std::function<size_t(char*, size_t)>& read_some) {
    budget.entry(name);
    const auto parts = entry_components(name);
    if (!hardlink.empty()) refuse(name, "hard link to '" + hardlink + "' (hard links are refused)");
    if (type == S_IFCHR || type == S_IFBLK) refuse(name, "device file");
    if (type == S_IFIFO) refuse(name, "FIFO");
    if (type == S_IFSOCK) refuse(name, "socket");
    if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK) refuse(name, "unknown entry type");
    if (parts.empty() && type == S_IFDIR) return;  // "./": the root, which exists already
    if (parts.empty()) refuse(name, "a file or symlink in place of the package root");
    const Fd parent = open_parent(root, parts, name);
    const char* last = parts.back().c_str();
    if (type == S_IFDIR) {
      open_or_make_dir(parent.get(), parts.back(), name);
      note({"d", name});
    } else if (type == S_IFLNK) {
      check_symlink(name, parts.size() - 1, link_target);
      if (symlinkat(link_target.c_str(), parent.get(), last) != 0) {
        if (errno == EEXIST) refuse(name, "duplicate entry");
        throw_errno("package entry '" + name + "': symlink");
      }
      note({"l", name, link_target});
    } else {
      // A header's size only lets an entry fail early; the count while copying decides.
      if (size_hint > 0) budget.check_room(name, static_cast<uint64_t>(size_hint));
      Fd out(
          openat(parent.get(), last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out && errno == EEXIST) refuse(name, "duplicate entry");
      if (!out) throw_errno("package entry '" + name + "': create");
      Sha256 content;
      const uint64_t size =
          copy_data(read_some, out.get(), name, budget, listing ? &content : nullptr);
      // Only the permission bits a reader needs survive: no setuid, setgid or sticky.
      if (fchmod(out.get(), perm & 0755) != 0) throw_errno("package entry '" + name + "': chmod");
      note({"f", std::to_string(perm & 0755), std::to_string(size), content.hex(), name});
    }
  }
};

std::string entry_string(const char* mbs, const char* utf8) {
  return mbs ? mbs : utf8 ? utf8 : "";
}

void check_format(archive* a) {
  const int format = archive_format(a) & ARCHIVE_FORMAT_BASE_MASK;
  const int filters = archive_filter_count(a);  // the last one is libarchive's own reader
  const bool zip = format == ARCHIVE_FORMAT_ZIP && filters == 1;
  const bool tgz = format == ARCHIVE_FORMAT_TAR && filters == 2 &&
                   archive_filter_code(a, 0) == ARCHIVE_FILTER_GZIP;
  if (zip || tgz) return;
  const char* name = archive_format_name(a);
  const std::string how = filters == 1   ? "uncompressed"
                          : filters == 2 ? std::string("under ") + archive_filter_name(a, 0)
                                         : "compressed more than once";
  throw Error(std::string("refused package: not a zip or tar.gz archive (found ") +
              (name ? name : "nothing") + ", " + how + ")");
}

// Copies directory `src` through `w`; names are sorted so the listing is canonical.
void copy_tree(int src, const std::string& prefix, PackageWriter& w) {
  std::vector<std::string> names;
  DIR* d = fdopendir(fcntl(src, F_DUPFD_CLOEXEC, 0));
  if (!d) throw_errno("reading directory '" + prefix + "'");
  while (dirent* ent = readdir(d))
    if (std::string_view(ent->d_name) != "." && std::string_view(ent->d_name) != "..")
      names.emplace_back(ent->d_name);
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    const std::string rel = prefix + name;
    struct stat st {};
    if (fstatat(src, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) throw_errno("stat " + rel);
    std::string target;
    Fd from;
    if (S_ISLNK(st.st_mode)) {
      target.resize(static_cast<size_t>(st.st_size) + 1);
      ssize_t n = readlinkat(src, name.c_str(), target.data(), target.size());
      if (n < 0) throw_errno("readlink " + rel);
      if (static_cast<size_t>(n) == target.size())
        throw Error(rel + ": symlink changed while read");
      target.resize(static_cast<size_t>(n));
    } else if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) {
      // O_NONBLOCK: should the file have become a FIFO since the stat, opening must not hang;
      // the type written is the one of what was opened.
      from = Fd(openat(src, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      if (!from || fstat(from.get(), &st) != 0) throw_errno("open " + rel);
    }
    w.write(rel, st.st_mode & S_IFMT, st.st_mode, target, "", st.st_size,
            [&](char* buf, size_t size) -> size_t {
              ssize_t n;
              while ((n = read(from.get(), buf, size)) < 0)
                if (errno != EINTR) throw_errno("read " + rel);
              return static_cast<size_t>(n);
            });
    if (S_ISDIR(st.st_mode)) copy_tree(from.get(), rel + "/", w);
  }
}

// A package stored earlier must still fit the limits of the caller asking for it now.
void check_stored(const StoredPackage& pkg, const PackageLimits& limits) {
  const double ratio = static_cast<double>(pkg.unpacked_bytes) /
                       static_cast<double>(std::max<uint64_t>(pkg.packed_bytes, 1));
  const char* rule = pkg.entries > limits.max_entries                 ? "too many entries"
                     : pkg.unpacked_bytes > limits.max_unpacked_bytes ? "package too large"
                     : pkg.unpacked_bytes >= kRatioFloor && ratio > limits.max_compression_ratio
                         ? "compression ratio too high (a zip bomb)"
                         : nullptr;
  if (rule) throw Error("refused package " + pkg.sha256 + ": " + rule);
}

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.hex();
}

CodeStore::CodeStore(const std::string& root)
    : root_(std::filesystem::absolute(root).lexically_normal().string()) {
  if (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  std::error_code ec;
  // Sandboxes reach their package as another uid, by its name: they may
  // traverse the store, and nobody but thawd may list it (0711).
  std::filesystem::create_directories(root_, ec);
  if (!ec) std::filesystem::permissions(root_, std::filesystem::perms(0711), ec);
  if (ec || !std::filesystem::is_directory(root_))
    throw Error("code store " + root_ + (ec ? "" : ": not a directory"), ec.value());
}

void CodeStore::discard_unfinished() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(root_, ec))
    if (e.path().filename().string().rfind(".tmp-", 0) == 0)
      std::filesystem::remove_all(e.path(), ec);
}

int CodeStore::discard_unused(const std::set<std::string>& keep) {
  std::vector<std::string> unused;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(root_, ec)) {
    const auto name = e.path().filename().string();
    if (is_sha256_hex(name) && !keep.count(name)) unused.push_back(name);
  }
  for (const auto& sha256 : unused) remove(sha256);
  return static_cast<int>(unused.size());
}

StoredPackage CodeStore::add_archive(std::string_view bytes, const PackageLimits& limits) {
  StoredPackage pkg;
  pkg.sha256 = sha256_hex(bytes);
  pkg.packed_bytes = bytes.size();
  if (auto existing = find(pkg.sha256)) {
    check_stored(*existing, limits);
    return *existing;
  }
  std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
  if (!a) throw Error("libarchive: out of memory");
  archive_read_support_format_zip(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_filter_gzip(a.get());
  if (archive_read_open_memory(a.get(), bytes.data(), bytes.size()) != ARCHIVE_OK)
    throw Error(std::string("refused package: not a zip or tar.gz archive (") +
                archive_reason(a.get()) + ")");

  TempDir tmp(root_);
  Fd root(open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) throw_errno("open " + tmp.path());
  PackageWriter w{root.get(), Budget{limits, bytes.size()}, std::nullopt};
  for (;;) {
    archive_entry* e = nullptr;
    const int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN)
      throw Error("refused package: corrupt archive after " + std::to_string(w.budget.entries) +
                  " entries (" + archive_reason(a.get()) + ")");
    if (w.budget.entries == 0) check_format(a.get());
    const auto name = entry_string(archive_entry_pathname(e), archive_entry_pathname_utf8(e));
    w.write(name, archive_entry_filetype(e), archive_entry_perm(e),
            entry_string(archive_entry_symlink(e), archive_entry_symlink_utf8(e)),
            entry_string(archive_entry_hardlink(e), archive_entry_hardlink_utf8(e)),
            archive_entry_size_is_set(e) ? archive_entry_size(e) : -1,
            [&](char* buf, size_t size) -> size_t {
              const la_ssize_t n = archive_read_data(a.get(), buf, size);
              if (n < 0) throw Error("package entry '" + name + "': " + archive_reason(a.get()));
              return static_cast<size_t>(n);
            });
  }
  check_format(a.get());  // an archive without entries was not checked yet
  pkg.unpacked_bytes = w.budget.bytes;
  pkg.entries = w.budget.entries;
  return commit(tmp.path(), pkg);
}

StoredPackage CodeStore::add_archive_file(const std::string& path, const PackageLimits& limits) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw Error("reading package " + path, ec.value());
  // Headers cost well under 1 KiB an entry, even on content that does not compress.
  if (size > limits.max_unpacked_bytes + limits.max_entries * 1024)
    throw Error("refused package " + path + ": package too large (" + std::to_string(size) +
                " bytes packed)");
  std::string bytes(size, '\0');
  std::ifstream in(path, std::ios::binary);
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size)))
    throw Error("reading package " + path + ": read failed or file shrank");
  return with_context("package " + path, [&] { return add_archive(bytes, limits); });
}

StoredPackage CodeStore::add_directory(const std::string& dir, const PackageLimits& limits) {
  Fd src(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!src) throw_errno("reading package directory " + dir);
  TempDir tmp(root_);
  Fd dst(open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dst) throw_errno("open " + tmp.path());
  PackageWriter w{dst.get(), Budget{limits}, Sha256()};
  with_context("package directory " + dir, [&] { copy_tree(src.get(), "", w); });
  StoredPackage pkg;
  pkg.sha256 = w.listing->hex();
  pkg.packed_bytes = pkg.unpacked_bytes = w.budget.bytes;
  pkg.entries = w.budget.entries;
  return commit(tmp.path(), pkg);
}

StoredPackage CodeStore::commit(const std::string& tmp_dir, StoredPackage pkg) {
  pkg.dir = root_ + "/" + pkg.sha256;
  const std::string where = "storing package " + pkg.sha256;
  if (chmod(tmp_dir.c_str(), 0755) != 0)
    throw_errno(where + ": chmod " + tmp_dir);  // mkdtemp: 0700
  int r = renameat2(AT_FDCWD, tmp_dir.c_str(), AT_FDCWD, pkg.dir.c_str(), RENAME_NOREPLACE);
  if (r != 0 && errno == EINVAL) r = rename(tmp_dir.c_str(), pkg.dir.c_str());  // fs without it
  // Already there: another writer stored the same content first, and the caller's
  // TempDir drops ours. Writing the sizes again repairs a store that lost them.
  if (r != 0 && errno != EEXIST && errno != ENOTEMPTY)
    throw_errno(where + ": rename " + tmp_dir + " to " + pkg.dir);

  // The sizes appear atomically too, so find() sees all of them or none.
  std::string meta_tmp = root_ + "/.tmp-meta-XXXXXX";
  Fd fd(mkostemp(meta_tmp.data(), O_CLOEXEC));
  if (!fd) throw_errno(where + ": create " + meta_tmp);
  const std::string meta = std::to_string(pkg.packed_bytes) + ' ' +
                           std::to_string(pkg.unpacked_bytes) + ' ' + std::to_string(pkg.entries) +
                           '\n';
  if (write(fd.get(), meta.data(), meta.size()) != static_cast<ssize_t>(meta.size()) ||
      fchmod(fd.get(), 0600) != 0 || rename(meta_tmp.c_str(), (pkg.dir + ".meta").c_str()) != 0) {
    const int err = errno ? errno : EIO;  // a short write leaves errno alone
    unlink(meta_tmp.c_str());
    throw_errno(where + ": writing " + pkg.dir + ".meta", err);
  }
  return pkg;
}

std::optional<StoredPackage> CodeStore::find(const std::string& sha256) const {
  if (!is_sha256_hex(sha256)) return std::nullopt;
  StoredPackage pkg;
  pkg.sha256 = sha256;
  pkg.dir = root_ + "/" + sha256;
  struct stat st {};
  if (lstat(pkg.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return std::nullopt;
  std::ifstream meta(pkg.dir + ".meta");
  if (!(meta >> pkg.packed_bytes >> pkg.unpacked_bytes >> pkg.entries)) return std::nullopt;
  return pkg;
}

void CodeStore::remove(const std::string& sha256) {
  if (!is_sha256_hex(sha256))
    throw Error("removing package '" + sha256 + "': not a lowercase sha256 hex digest");
  // The sizes go first: a tree without them is invisible to find(), and adding repairs it.
  const std::string dir = root_ + "/" + sha256;
  if (unlink((dir + ".meta").c_str()) != 0 && errno != ENOENT)
    throw_errno("removing package " + sha256 + ": unlink " + dir + ".meta");
  // Renamed over an empty temporary directory, the tree vanishes at once; then deleted.
  TempDir graveyard(root_);
  if (rename(dir.c_str(), graveyard.path().c_str()) != 0 && errno != ENOENT)
    throw_errno("removing package " + sha256 + ": rename " + dir);
}

}  // namespace thaw::images
