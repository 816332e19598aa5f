#pragma once
// Which snapshot directories were checksummed, and what their files looked
// like then (size, inode, mtime, ctime). A restore re-hashes a snapshot only
// when any of that changed: no write can set a file's ctime back, so a file
// written, truncated or replaced since is checksummed again. Hashing pandas'
// 41 MB of images on every restore cost ~25 ms.

#include <sys/types.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "snapshots/manifest.hpp"

namespace thaw::snapshots {

class VerificationCache {
 public:
  struct Stamp {
    uint64_t size = 0;
    ino_t inode = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    bool operator==(const Stamp&) const = default;
  };
  using Stamps = std::map<std::string, Stamp>;  // relative path -> stamp

  // The stamps of the files `m` lists under `dir`; nothing when a listed file
  // is missing or an unlisted one is present.
  static std::optional<Stamps> take(const std::string& dir, const SnapshotManifest& m);

  // True when `dir` was verified and its files still carry the same stamps.
  bool unchanged(const std::string& dir, const SnapshotManifest& m) const;
  // Records stamps taken before `dir` was verified against `m`.
  void remember(const std::string& dir, Stamps stamps);
  void forget(const std::string& dir);

 private:
  mutable std::mutex mutex_;
  std::map<std::string, Stamps> verified_;
};

}  // namespace thaw::snapshots
