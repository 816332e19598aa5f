#include "snapshots/snapshot_store.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sandbox/error.hpp"
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
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  return total;
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
  fs::create_directories(durable_);
  if (!cache_.empty()) fs::create_directories(cache_);
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
  manifest.function_digest = claim.digest();
  manifest.files = checksum_tree(claim.work_dir());
  if (manifest.created_unix_ms == 0) manifest.created_unix_ms = now_ms();
  {
    std::ofstream out(claim.work_dir() + "/manifest.json");
    out << to_json(manifest);
    if (!out) throw Error("snapshot: write manifest in " + claim.work_dir());
  }
  const auto final_dir = durable_dir(claim.digest());
  fs::remove_all(final_dir);
  fs::rename(claim.work_dir(), final_dir);  // visible only when complete
  claim.published_ = true;
  // Just checksummed, by us: the first restore need not hash it again.
  if (auto stamps = VerificationCache::take(final_dir, manifest))
    verified_->remember(final_dir, std::move(*stamps));
  if (!cache_.empty()) {
    const auto tmp = cache_ + "/.work-" + claim.digest();
    fs::remove_all(tmp);
    fs::copy(final_dir, tmp, fs::copy_options::recursive);
    fs::remove_all(cache_dir(claim.digest()));
    fs::rename(tmp, cache_dir(claim.digest()));
  }
}

SnapshotStore::~SnapshotStore() = default;

std::pair<std::string, SnapshotManifest> SnapshotStore::open(const std::string& digest,
                                                             const RestoreExpectations& expected) {
  std::string dir = cache_.empty() ? "" : cache_dir(digest);
  if (dir.empty() || !fs::exists(dir + "/manifest.json")) {
    dir = durable_dir(digest);
    if (!fs::exists(dir + "/manifest.json")) throw Error("no snapshot of digest " + digest);
    if (!cache_.empty()) {  // warm the cache for the next restore (e.g. after a restart of thawd)
      std::error_code ec;
      fs::copy(dir, cache_ + "/.work-" + digest, fs::copy_options::recursive, ec);
      if (!ec) fs::rename(cache_ + "/.work-" + digest, cache_dir(digest), ec);
    }
  }
  auto manifest = manifest_from_json(read_text(dir + "/manifest.json"));
  check_compatible(manifest, expected);
  if (!verified_->unchanged(dir, manifest)) {
    // Stamps from before hashing: a write during it shows at the next open.
    auto before = VerificationCache::take(dir, manifest);
    verify_files(manifest, dir);
    if (before) verified_->remember(dir, std::move(*before));
  }
  return {dir, manifest};
}

void SnapshotStore::discard(const std::string& digest) {
  std::error_code ec;
  fs::remove_all(durable_dir(digest), ec);
  if (!cache_.empty()) fs::remove_all(cache_dir(digest), ec);
  verified_->forget(durable_dir(digest));
  verified_->forget(cache_dir(digest));
  std::lock_guard lock(mutex_);
  restores_.erase(digest);
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
