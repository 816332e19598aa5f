#pragma once
// Guest memory kept warm for restores.
//
// In a VM whose host takes back the memory the guest leaves free (free page
// reporting, as on this machine kind: every free 2 MiB block is handed back
// after about two seconds), the first touch of such a block costs a fault on
// the host. Filling 64 MiB took 74-166 ms here on memory handed back and 3 ms
// on memory freed a moment before; a pandas restore (41 MB of pages, most in
// 2 MiB pages) took ~100 ms instead of ~47 ms.
//
// thawd therefore holds a reserve of memory it has touched, and right before a
// restore frees part of it: the restore's 2 MiB pages then come from blocks
// the host still backs. Freed blocks alternate with blocks kept, so the kernel
// cannot merge them into larger free blocks, which it would hand out after
// the 2 MiB blocks it already has. A background thread touches the freed part
// again once restores pause. Off (size 0) by default for libraries; thawd
// turns it on (--warm-memory-mb).
//
// The kernel keeps a freed huge page on the freeing CPU's own free list first,
// where other CPUs do not look: a 16 MiB fill right after a free took 0.7 ms
// on the freeing CPU (8 runs of 8) and 6-34 ms on the other one in 3 runs of
// 8 (host-reclaimed memory). A restore may run on any CPU, so each release
// is spread over every CPU this process may run on, a share freed from each.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace thaw::snapshots {

class WarmMemory {
 public:
  static constexpr size_t kBlock = size_t{2} << 20;  // a transparent huge page

  // Reserves `bytes` (rounded up to 4 MiB; 0: inert) and fills it in the
  // background. `quiet`: how long releases must pause before the refill.
  explicit WarmMemory(size_t bytes,
                      std::chrono::milliseconds quiet = std::chrono::milliseconds(200));
  ~WarmMemory();
  WarmMemory(const WarmMemory&) = delete;
  WarmMemory& operator=(const WarmMemory&) = delete;

  // Frees up to `bytes` of warm blocks now (whole blocks, at most half the
  // reserve at once); returns how much it freed.
  size_t release(size_t bytes);
  // The same from the background thread, which does it next: freeing 100 MiB
  // takes ~0.5 ms, and a restore's CRIU needs the memory only after ~10 ms.
  void release_soon(size_t bytes);
  // Warm bytes that release() may free now.
  size_t releasable() const;
  // Everything release() freed so far.
  uint64_t released_total() const;
  // Bytes of the reserve the kernel has in memory (mincore), for tests.
  size_t resident_bytes() const;
  // The CPUs the last release freed blocks from, in order, for tests.
  std::vector<int> last_release_cpus() const;
  // Waits until every freeable block is warm again, or the timeout passes.
  bool wait_until_full(std::chrono::milliseconds timeout) const;

 private:
  void refill_loop();
  size_t release_locked(size_t bytes);
  void free_from_each_cpu(const std::vector<size_t>& blocks);
  char* block(size_t i) const { return base_ + i * kBlock; }

  char* mapping_ = nullptr;  // what mmap returned
  size_t mapping_bytes_ = 0;
  char* base_ = nullptr;  // 2 MiB aligned
  size_t blocks_ = 0;     // even ones are freed by release(), odd ones stay
  std::chrono::milliseconds quiet_;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<bool> warm_;  // per even block
  size_t next_ = 0;         // where release() looks first
  bool filled_ = false;     // the first fill is done
  uint64_t released_total_ = 0;
  std::vector<int> last_release_cpus_;
  size_t pending_release_ = 0;  // asked by release_soon()
  std::chrono::steady_clock::time_point last_release_;
  bool stopping_ = false;
  std::thread refill_;
};

}  // namespace thaw::snapshots
