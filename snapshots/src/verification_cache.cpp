#include "verification_cache.hpp"

#include <sys/stat.h>

#include <filesystem>

namespace fs = std::filesystem;

namespace thaw::snapshots {

std::optional<VerificationCache::Stamps> VerificationCache::take(const std::string& dir,
                                                                 const SnapshotManifest& m) {
  Stamps stamps;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!plain_file(*it)) continue;  // as checksum_tree walks
    const auto rel = relative_in_walk(it->path(), dir);
    if (!checksummed(rel)) continue;
    if (!m.files.count(rel)) return std::nullopt;
    struct stat st {};
    if (stat(it->path().c_str(), &st) != 0) return std::nullopt;
    stamps[rel] = {static_cast<uint64_t>(st.st_size), st.st_ino,
                   st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
                   st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec};
  }
  if (ec || stamps.size() != m.files.size()) return std::nullopt;
  return stamps;
}

bool VerificationCache::unchanged(const std::string& dir, const SnapshotManifest& m) const {
  {
    std::lock_guard lock(mutex_);
    if (!verified_.count(dir)) return false;
  }
  const auto now = take(dir, m);
  std::lock_guard lock(mutex_);
  const auto it = verified_.find(dir);
  return now && it != verified_.end() && it->second == *now;
}

void VerificationCache::remember(const std::string& dir, Stamps stamps) {
  std::lock_guard lock(mutex_);
  verified_[dir] = std::move(stamps);
}

void VerificationCache::forget(const std::string& dir) {
  std::lock_guard lock(mutex_);
  verified_.erase(dir);
}

}  // namespace thaw::snapshots
