#pragma once
// Where snapshots live: one directory per function digest under the state
// directory (durable), optionally mirrored in a memory-backed cache that
// restores read from. A snapshot becomes visible only once complete.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "snapshots/manifest.hpp"

namespace thaw::snapshots {

struct SnapshotInfo {
  std::string digest;
  uint64_t bytes = 0;
  int64_t created_unix_ms = 0;
  uint64_t restores = 0;
  int64_t last_restore_unix_ms = 0;
  bool cached = false;  // a copy is in the memory-backed cache
};

class SnapshotStore;
class VerificationCache;

// The right to make the snapshot of one digest; only one exists at a time.
class SnapshotClaim {
 public:
  ~SnapshotClaim();  // an unpublished claim removes its work directory
  SnapshotClaim(const SnapshotClaim&) = delete;
  SnapshotClaim& operator=(const SnapshotClaim&) = delete;
  const std::string& work_dir() const { return work_dir_; }
  const std::string& digest() const { return digest_; }

 private:
  friend class SnapshotStore;
  SnapshotClaim(SnapshotStore& store, std::string digest, std::string work_dir)
      : store_(store), digest_(std::move(digest)), work_dir_(std::move(work_dir)) {}
  SnapshotStore& store_;
  std::string digest_;
  std::string work_dir_;
  bool published_ = false;
};

class SnapshotStore {
 public:
  // `cache_root` empty: restores read the durable copy. Otherwise every
  // snapshot is also copied there and restores read that copy; the cache is
  // best effort (a copy that does not fit, or fails its checksums, is dropped
  // and the durable copy serves), the durable copy stays the truth.
  explicit SnapshotStore(std::string durable_root, std::string cache_root = "");
  ~SnapshotStore();

  // Null when a snapshot of `digest` exists or is being made.
  std::unique_ptr<SnapshotClaim> try_claim(const std::string& digest);
  // Checksums the work directory into the manifest, then makes it visible.
  void publish(SnapshotClaim& claim, SnapshotManifest manifest);

  // The directory to restore from and its manifest, checked against
  // `expected` and the files' checksums (hashed again only when a file changed
  // since this store last verified it: verification_cache.hpp). Throws Error
  // with the reason.
  // A durable copy opened while the cache has none is copied there in the
  // background, not on the restore's way.
  std::pair<std::string, SnapshotManifest> open(const std::string& digest,
                                                const RestoreExpectations& expected);
  bool exists(const std::string& digest) const;
  void discard(const std::string& digest);
  // Removes every snapshot whose digest is not in `keep` (and any cached copy
  // without a durable one); returns how many snapshots.
  int collect_garbage(const std::set<std::string>& keep);
  void record_restore(const std::string& digest);
  std::vector<SnapshotInfo> list() const;
  // Waits until the cache copies open() started in the background are done.
  void settle();

 private:
  friend class SnapshotClaim;
  void release(const std::string& digest);
  std::string durable_dir(const std::string& digest) const { return durable_ + "/" + digest; }
  std::string cache_dir(const std::string& digest) const { return cache_ + "/" + digest; }
  // Whether the caller may copy `digest` into the cache now: no other copy
  // of it is being made, and none failed (each try would cost the whole
  // copy) since a discarded snapshot last freed space.
  bool start_filling(const std::string& digest);
  // After start_filling: copies snapshot `digest` from `from`, whose files
  // were just checked against `checked`, into the cache; when it does not fit
  // or cannot be written, nothing is left behind and the digest is marked.
  void fill_cache(const std::string& digest, const std::string& from,
                  const SnapshotManifest& checked);
  // The manifest in `dir`, checked against `expected` and the files'
  // checksums (skipped while the verification cache vouches for them).
  // Throws Error with the reason.
  SnapshotManifest checked_manifest(const std::string& dir, const RestoreExpectations& expected);
  // The cached copy checked like open() checks, or "" (and the copy removed)
  // when there is none or it fails a check.
  std::string checked_cache_copy(const std::string& digest, const RestoreExpectations& expected,
                                 SnapshotManifest& manifest);

  std::string durable_;
  std::string cache_;
  mutable std::mutex mutex_;
  std::set<std::string> in_progress_;
  std::set<std::string> not_cached_;            // their copy failed: fill_cache skips them
  std::set<std::string> filling_;               // their copy is being made
  std::map<std::string, std::thread> warmers_;  // background copies open() started
  std::map<std::string, std::pair<uint64_t, int64_t>> restores_;  // digest -> (count, last ms)
  std::unique_ptr<VerificationCache> verified_;
};

}  // namespace thaw::snapshots
