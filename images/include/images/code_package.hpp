#pragma once
// The store of function code packages. A package is untrusted input: it is
// unpacked only after every entry passed the rules below, into a tree named by
// its content hash that sandboxes later mount read-only as /var/task.
//
// Refused, with a thaw::Error naming the entry and the rule: absolute paths and
// `..` components, symlinks leaving the package, hard links, devices, FIFOs,
// sockets, too many entries, too many bytes, a zip-bomb compression ratio, and
// anything that is not a zip or a tar.gz. A refusal leaves the store as it was.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace thaw::images {

struct PackageLimits {
  uint64_t max_unpacked_bytes = 250ull * 1024 * 1024;  // AWS Lambda's limit
  uint64_t max_entries = 20000;
  double max_compression_ratio = 200.0;  // unpacked/packed above this: a zip bomb
};

struct StoredPackage {
  std::string sha256;  // hex of the package bytes (archive) or of a canonical listing (directory)
  std::string dir;     // absolute path of the unpacked tree in the store
  uint64_t packed_bytes = 0;  // archive size; for a directory, equal to unpacked_bytes
  uint64_t unpacked_bytes = 0;
  uint64_t entries = 0;
};

// Lowercase hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

// Content-addressed: the tree of package <sha256> lives at <root>/<sha256>/,
// its sizes in <root>/<sha256>.meta. Safe to use from several threads and
// processes: trees appear by an atomic rename that never replaces another.
class CodeStore {
 public:
  explicit CodeStore(const std::string& root);  // creates root if missing (e.g. <state>/code)
  const std::string& root() const { return root_; }

  // zip or tar.gz, detected from the bytes (libarchive); anything else is refused.
  // A package already in the store is returned as it is, if it fits `limits`.
  StoredPackage add_archive(std::string_view bytes, const PackageLimits& limits = {});
  StoredPackage add_archive_file(const std::string& path, const PackageLimits& limits = {});
  // Copies a directory tree (regular files, directories, symlinks that stay inside it).
  StoredPackage add_directory(const std::string& dir, const PackageLimits& limits = {});

  std::optional<StoredPackage> find(const std::string& sha256) const;
  // Removing a package that is not there does nothing.
  void remove(const std::string& sha256);
  // Removes what unpacking left unfinished (a process killed while it
  // unpacked: its temporary tree and sizes file). Only for the store's one
  // writer at its start, when no other unpacking can be under way.
  void discard_unfinished();
  // Removes every package not in `keep`; returns how many. Only while no
  // instance runs from the store (instances see their package's tree live).
  int discard_unused(const std::set<std::string>& keep);

 private:
  // Moves a checked tree from `tmp_dir` into place (or drops it if the package
  // is already there) and records its sizes.
  StoredPackage commit(const std::string& tmp_dir, StoredPackage pkg);

  std::string root_;
};

}  // namespace thaw::images
