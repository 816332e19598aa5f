#pragma once
// Copies a directory tree an instance controls, as host root, without ever
// resolving a path through it. Every step is relative to a descriptor opened
// with O_NOFOLLOW, so an instance that swaps a directory for a symbolic link
// mid-copy (renameat2 RENAME_EXCHANGE) makes that step fail instead of
// leading the copy into the host's tree; a rename cannot leave the instance's
// file system, so the walk stays in it. Files are opened non-blocking and
// checked to be regular (a FIFO cannot stall the copy), links are copied as
// links, devices, FIFOs and sockets are left out. Counts, bytes and time are
// bounded: past a bound the copy fails with the reason.

#include <chrono>
#include <cstdint>
#include <string>

namespace thaw::sandbox {

struct TreeCopyLimits {
  uint64_t max_entries = 1 << 20;
  uint64_t max_bytes = 10ull << 30;
  std::chrono::milliseconds deadline{30000};
};

struct TreeCopyResult {
  uint64_t entries = 0;  // files, directories and links copied
  uint64_t bytes = 0;
  uint64_t skipped = 0;  // devices, FIFOs, sockets, and entries that changed under the copy
};

// Copies what is inside `from` into the directory `to` (created if missing),
// with owners, modes and times. Throws Error.
TreeCopyResult copy_tree_beneath(const std::string& from, const std::string& to,
                                 const TreeCopyLimits& limits = {});

}  // namespace thaw::sandbox
