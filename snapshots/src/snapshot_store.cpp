#include "snapshots/snapshot_store.hpp"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "thaw/error.hpp"
#include "thaw/unique_fd.hpp"
#include "verification_cache.hpp"

namespace fs = std::filesystem;

namespace thaw::snapshots {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("snapshot: cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

uint64_t tree_bytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    if (plain_file(e)) total += e.file_size(ec);
  return total;
}

// A snapshot's memory images are for their owner alone (criu, acting as the
// owner of the function's namespaces, wrote them, and reads them back as
// that owner, some from inside the restored namespace); the snapshot's
// directory may be traversed, not listed. (Its copy of /tmp is thawd's, in
// a directory of root's alone; its names are the function's, not touched.)
void keep_to_owners(const std::string& work_dir) {
  fs::permissions(work_dir, fs::perms(0711));
  const auto images = work_dir + "/images";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(images, ec)) {
    UniqueFd fd(open(e.path().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    struct stat st {};
    if (!fd || fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (fchmod(fd.get(), st.st_mode & 0700) != 0)
      throw_errno("snapshot: chmod " + e.path().string());
  }
}

// A directory like `like` (mode and owner) at `path`.
bool make_directory_like(const std::string& path, const struct stat& like) {
  return mkdir(path.c_str(), 0700) == 0 && chmod(path.c_str(), like.st_mode & 07777) == 0 &&
         lchown(path.c_str(), like.st_uid, like.st_gid) == 0;
}

// A copy of the regular file `from` (opened without following links) at
// `to`, sized before it is written: a tmpfs mounted huge=within_size gives a
// file 2 MiB pages only where its size already covers them, so a file grown
// by appends (std::filesystem::copy) stays in 4 KiB pages, which CRIU reads
// slower.
bool copy_file_presized(const std::string& from, const std::string& to) {
  UniqueFd in(open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (!in || fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  UniqueFd out(open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out || ftruncate(out.get(), st.st_size) != 0) return false;
  for (off_t done = 0; done < st.st_size;) {
    const ssize_t n = sendfile(out.get(), in.get(), &done, static_cast<size_t>(st.st_size - done));
    if (n <= 0) return false;  // ENOSPC when the cache is full
  }
  return fchown(out.get(), st.st_uid, st.st_gid) == 0 && fchmod(out.get(), st.st_mode & 07777) == 0;
}

// Copies the tree `from` into a new directory `to` as it is: modes and owners
// kept (CRIU opens some images from inside the instance's user namespace, as
// a uid only the others' bits let in, and the instance's /tmp files belong to
// its own users), symbolic links copied as links, never followed (a link the
// function left in /tmp must not pull a host file into its snapshot). Any
// other kind of file (a FIFO in /tmp, say) makes the copy fail: the durable
// copy serves that snapshot.
bool copy_tree_as_is(const std::string& from, const std::string& to) {
  struct stat root {};
  if (lstat(from.c_str(), &root) != 0 || !make_directory_like(to, root)) return false;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(from, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const auto target = to + "/" + relative_in_walk(it->path(), from);
    struct stat st {};
    if (lstat(it->path().c_str(), &st) != 0) return false;
    bool copied = false;
    if (S_ISDIR(st.st_mode)) {
      copied = make_directory_like(target, st);
    } else if (S_ISREG(st.st_mode)) {
      copied = copy_file_presized(it->path().string(), target);
    } else if (S_ISLNK(st.st_mode)) {
      fs::copy_symlink(it->path(), target, ec);
      copied = !ec && lchown(target.c_str(), st.st_uid, st.st_gid) == 0;
    }
    if (!copied) return false;
  }
  return !ec;
}

}  // namespace

SnapshotClaim::~SnapshotClaim() {
  if (!published_) {
    std::error_code ec;
    fs::remove_all(work_dir_, ec);
  }
  store_.release(digest_);
}

SnapshotStore::SnapshotStore(std::string durable_root, std::string cache_root)
    : durable_(std::move(durable_root)),
      cache_(std::move(cache_root)),
      verified_(std::make_unique<VerificationCache>()) {
  // Snapshots hold functions' memory. Restored tasks reach their images by
  // name from inside their namespaces: others may traverse, not list.
  for (const auto& root : {durable_, cache_}) {
    if (root.empty()) continue;
    fs::create_directories(root);
    fs::permissions(root, fs::perms(0711));
  }
  // Work directories of a crashed thawd are incomplete snapshots: remove them.
  for (const auto& root : {durable_, cache_}) {
    if (root.empty()) continue;
    for (const auto& e : fs::directory_iterator(root))
      if (e.path().filename().string().rfind(".work-", 0) == 0) fs::remove_all(e.path());
  }
}

bool SnapshotStore::exists(const std::string& digest) const {
  return fs::exists(durable_dir(digest) + "/manifest.json");
}

std::unique_ptr<SnapshotClaim> SnapshotStore::try_claim(const std::string& digest) {
  std::lock_guard lock(mutex_);
  if (in_progress_.count(digest) || exists(digest)) return nullptr;
  in_progress_.insert(digest);
  const auto work = durable_ + "/.work-" + digest;
  fs::remove_all(work);
  fs::create_directories(work);
  return std::unique_ptr<SnapshotClaim>(new SnapshotClaim(*this, digest, work));
}

void SnapshotStore::release(const std::string& digest) {
  std::lock_guard lock(mutex_);
  in_progress_.erase(digest);
}

void SnapshotStore::publish(SnapshotClaim& claim, SnapshotManifest manifest) {
  keep_to_owners(claim.work_dir());
  manifest.function_digest = claim.digest();
  manifest.files = checksum_tree(claim.work_dir());
  if (manifest.created_unix_ms == 0) manifest.created_unix_ms = now_ms();
  {
    std::ofstream out(claim.work_dir() + "/manifest.json");
    out << to_json(manifest);
    if (!out) throw Error("snapshot: write manifest in " + claim.work_dir());
  }
  if (!cache_.empty()) {  // first, so that the snapshot is listed with its memory copy
    std::error_code ec;
    fs::remove_all(cache_dir(claim.digest()), ec);  // an older copy of the same digest
    if (start_filling(claim.digest())) fill_cache(claim.digest(), claim.work_dir(), manifest);
  }
  const auto final_dir = durable_dir(claim.digest());
  fs::remove_all(final_dir);
  fs::rename(claim.work_dir(), final_dir);  // visible only when complete
  claim.published_ = true;
  // Just checksummed, by us: the first restore need not hash it again.
  if (auto stamps = VerificationCache::take(final_dir, manifest))
    verified_->remember(final_dir, std::move(*stamps));
}

bool SnapshotStore::start_filling(const std::string& digest) {
  std::lock_guard lock(mutex_);
  return !not_cached_.count(digest) && filling_.insert(digest).second;
}

void SnapshotStore::fill_cache(const std::string& digest, const std::string& from,
                               const SnapshotManifest& checked) {
  // start_filling let one copy of the digest be made at a time: its work
  // directory is this one.
  const auto tmp = cache_ + "/.work-" + digest;
  std::error_code ec;
  bool cached = copy_tree_as_is(from, tmp);
  if (cached) fs::rename(tmp, cache_dir(digest), ec);
  cached = cached && !ec;
  if (!cached) fs::remove_all(tmp, ec);
  // Copied from files just checked, into memory only thawd reaches: the first
  // restore from it need not hash it again.
  if (cached)
    if (auto stamps = VerificationCache::take(cache_dir(digest), checked))
      verified_->remember(cache_dir(digest), std::move(*stamps));
  std::lock_guard lock(mutex_);
  filling_.erase(digest);
  if (!cached) not_cached_.insert(digest);
}

SnapshotManifest SnapshotStore::checked_manifest(const std::string& dir,
                                                 const RestoreExpectations& expected) {
  auto manifest = manifest_from_json(read_text(dir + "/manifest.json"));
  check_compatible(manifest, expected);
  if (!verified_->unchanged(dir, manifest)) {
    // Stamps from before hashing: a write during it shows at the next open.
    auto before = VerificationCache::take(dir, manifest);
    verify_files(manifest, dir);
    if (before) verified_->remember(dir, std::move(*before));
  }
  return manifest;
}

std::string SnapshotStore::checked_cache_copy(const std::string& digest,
                                              const RestoreExpectations& expected,
                                              SnapshotManifest& manifest) {
  auto dir = cache_dir(digest);
  std::error_code ec;
  if (!fs::exists(dir + "/manifest.json", ec)) return "";
  try {
    manifest = checked_manifest(dir, expected);
    return dir;
  } catch (const std::exception&) {  // Error, or a file system error on the way
    // The durable copy decides: it is checked next, and refused the same way
    // if it is the snapshot that is wrong rather than this copy.
    verified_->forget(dir);
    fs::remove_all(dir, ec);
    return "";
  }
}

SnapshotStore::~SnapshotStore() {
  settle();
}

void SnapshotStore::settle() {
  std::map<std::string, std::thread> warmers;
  {
    std::lock_guard lock(mutex_);
    warmers.swap(warmers_);
  }
  for (auto& [digest, t] : warmers) t.join();
}

std::pair<std::string, SnapshotManifest> SnapshotStore::open(const std::string& digest,
                                                             const RestoreExpectations& expected) {
  SnapshotManifest manifest;
  if (!cache_.empty())
    if (auto dir = checked_cache_copy(digest, expected, manifest); !dir.empty())
      return {dir, manifest};
  const auto dir = durable_dir(digest);
  if (!fs::exists(dir + "/manifest.json")) throw Error("no snapshot of digest " + digest);
  manifest = checked_manifest(dir, expected);
  // Warm the cache for the next restores (after a restart of thawd, say),
  // beside this one, which reads the durable copy it just checked; one thread
  // per digest at most.
  if (!cache_.empty() && start_filling(digest)) {
    std::lock_guard lock(mutex_);
    // It was not being filled: an earlier thread for it is past its last step.
    if (auto old = warmers_.find(digest); old != warmers_.end()) {
      old->second.join();
      warmers_.erase(old);
    }
    warmers_.emplace(
        digest, std::thread([this, digest, dir, manifest] { fill_cache(digest, dir, manifest); }));
  }
  return {dir, manifest};
}

void SnapshotStore::discard(const std::string& digest) {
  std::thread warmer;  // a copy of it still being made would land after the removal
  {
    std::lock_guard lock(mutex_);
    if (auto it = warmers_.find(digest); it != warmers_.end()) {
      warmer = std::move(it->second);
      warmers_.erase(it);
    }
  }
  if (warmer.joinable()) warmer.join();
  std::error_code ec;
  fs::remove_all(durable_dir(digest), ec);
  if (!cache_.empty()) fs::remove_all(cache_dir(digest), ec);
  verified_->forget(durable_dir(digest));
  verified_->forget(cache_dir(digest));
  std::lock_guard lock(mutex_);
  restores_.erase(digest);
  not_cached_.clear();  // the space it took may let them in now
}

int SnapshotStore::collect_garbage(const std::set<std::string>& keep) {
  int removed = 0;
  std::vector<std::string> doomed;
  for (const auto& e : fs::directory_iterator(durable_)) {
    const auto name = e.path().filename().string();
    if (name.rfind(".work-", 0) == 0 || keep.count(name)) continue;
    doomed.push_back(name);
  }
  for (const auto& d : doomed) {
    discard(d);
    ++removed;
  }
  if (!cache_.empty()) {
    // Copies whose durable snapshot is gone; not one being published (its
    // copy is made first) and never a durable snapshot.
    std::vector<std::string> orphans;
    for (const auto& e : fs::directory_iterator(cache_)) {
      const auto name = e.path().filename().string();
      if (name.rfind(".work-", 0) != 0 && !(keep.count(name) && exists(name)))
        orphans.push_back(name);
    }
    std::error_code ec;
    for (const auto& o : orphans) {
      {
        std::lock_guard lock(mutex_);
        if (in_progress_.count(o)) continue;
      }
      verified_->forget(cache_dir(o));
      fs::remove_all(cache_dir(o), ec);
    }
  }
  return removed;
}

void SnapshotStore::record_restore(const std::string& digest) {
  std::lock_guard lock(mutex_);
  auto& r = restores_[digest];
  ++r.first;
  r.second = now_ms();
}

std::vector<SnapshotInfo> SnapshotStore::list() const {
  std::vector<SnapshotInfo> out;
  for (const auto& e : fs::directory_iterator(durable_)) {
    const auto name = e.path().filename().string();
    if (name.rfind(".work-", 0) == 0 || !fs::exists(e.path() / "manifest.json")) continue;
    SnapshotInfo info;
    info.digest = name;
    info.bytes = tree_bytes(e.path().string());
    info.cached = !cache_.empty() && fs::exists(cache_dir(name) + "/manifest.json");
    try {
      info.created_unix_ms =
          manifest_from_json(read_text((e.path() / "manifest.json").string())).created_unix_ms;
    } catch (const Error&) {
    }
    std::lock_guard lock(mutex_);
    if (auto it = restores_.find(name); it != restores_.end()) {
      info.restores = it->second.first;
      info.last_restore_unix_ms = it->second.second;
    }
    out.push_back(info);
  }
  return out;
}

}  // namespace thaw::snapshots
