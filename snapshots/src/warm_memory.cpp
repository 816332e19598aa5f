#include "snapshots/warm_memory.hpp"

#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "thaw/error.hpp"

namespace thaw::snapshots {

namespace {

// Makes the block resident: one fault per huge page where the kernel gives
// one. Faults, not MADV_POPULATE_WRITE: populating holds thawd's mmap lock
// for as long as the host takes to back the block again (milliseconds), and
// every thread of thawd that maps, unmaps or protects memory meanwhile (any
// malloc that grows an arena) waits for it, and every fault behind that one:
// restores waited up to 75 ms. A fault holds only its area's lock (per-VMA
// locks, Linux 6.4 on; before, a fault too held the mmap lock, for one block).
void touch(char* p, size_t bytes) {
  const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  volatile char* v = p;
  for (size_t off = 0; off < bytes; off += page) v[off] = 0;
}

}  // namespace

WarmMemory::WarmMemory(size_t bytes, std::chrono::milliseconds quiet) : quiet_(quiet) {
  if (bytes == 0) {
    filled_ = true;
    return;
  }
  blocks_ = (bytes + 2 * kBlock - 1) / (2 * kBlock) * 2;
  mapping_bytes_ = (blocks_ + 1) * kBlock;  // room to align to a block
  void* m =
      mmap(nullptr, mapping_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    throw_errno("warm memory: mmap of " + std::to_string(mapping_bytes_ >> 20) + " MiB");
  mapping_ = static_cast<char*>(m);
  const auto addr = reinterpret_cast<uintptr_t>(mapping_);
  base_ = mapping_ + (kBlock - addr % kBlock) % kBlock;
  // Refused where the kernel has no transparent huge pages: 4 KiB pages then.
  madvise(base_, blocks_ * kBlock, MADV_HUGEPAGE);
  warm_.assign(blocks_ / 2, false);
  refill_ = std::thread([this] { refill_loop(); });
}

WarmMemory::~WarmMemory() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (refill_.joinable()) refill_.join();
  if (mapping_) munmap(mapping_, mapping_bytes_);
}

size_t WarmMemory::release(size_t bytes) {
  std::lock_guard lock(mutex_);
  return release_locked(bytes);
}

void WarmMemory::release_soon(size_t bytes) {
  if (!base_ || bytes == 0) return;
  {
    std::lock_guard lock(mutex_);
    pending_release_ += bytes;
  }
  changed_.notify_all();
}

size_t WarmMemory::release_locked(size_t bytes) {
  std::vector<size_t> chosen;
  const size_t start = next_;
  for (size_t seen = 0; seen < warm_.size() && chosen.size() * kBlock < bytes; ++seen) {
    const size_t j = (start + seen) % warm_.size();
    if (!warm_[j]) continue;
    chosen.push_back(2 * j);
    warm_[j] = false;
    next_ = (j + 1) % warm_.size();
  }
  free_from_each_cpu(chosen);
  const size_t freed = chosen.size() * kBlock;
  released_total_ += freed;
  if (freed) {
    last_release_ = std::chrono::steady_clock::now();
    changed_.notify_all();
  }
  return freed;
}

void WarmMemory::free_from_each_cpu(const std::vector<size_t>& blocks) {
  last_release_cpus_.clear();
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  // Pinning fails only if the CPU went offline since: the blocks are then
  // freed from wherever the thread runs, as without this.
  const size_t shares = std::max<size_t>(1, std::min(cpus.size(), blocks.size()));
  for (size_t k = 0; k < shares; ++k) {
    if (shares > 1) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus[k], &one);
      if (sched_setaffinity(0, sizeof one, &one) == 0) last_release_cpus_.push_back(cpus[k]);
    }
    for (size_t i = k; i < blocks.size(); i += shares)
      madvise(block(blocks[i]), kBlock, MADV_DONTNEED);
  }
  if (shares > 1) sched_setaffinity(0, sizeof allowed, &allowed);
}

std::vector<int> WarmMemory::last_release_cpus() const {
  std::lock_guard lock(mutex_);
  return last_release_cpus_;
}

size_t WarmMemory::releasable() const {
  std::lock_guard lock(mutex_);
  return static_cast<size_t>(std::count(warm_.begin(), warm_.end(), true)) * kBlock;
}

uint64_t WarmMemory::released_total() const {
  std::lock_guard lock(mutex_);
  return released_total_;
}

size_t WarmMemory::resident_bytes() const {
  if (!base_) return 0;
  const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in(blocks_ * kBlock / page);
  if (mincore(base_, blocks_ * kBlock, in.data()) != 0) throw_errno("warm memory: mincore");
  return static_cast<size_t>(
             std::count_if(in.begin(), in.end(), [](unsigned char c) { return c & 1; })) *
         page;
}

bool WarmMemory::wait_until_full(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [this] {
    return filled_ && std::all_of(warm_.begin(), warm_.end(), [](bool w) { return w; });
  });
}

void WarmMemory::refill_loop() {
  std::unique_lock lock(mutex_);
  // First fill: the kept (odd) blocks too, which stay warm from then on.
  for (size_t i = 0; i < blocks_ && !stopping_; ++i) {
    lock.unlock();
    touch(block(i), kBlock);
    lock.lock();
    if (i % 2 == 0) warm_[i / 2] = true;
    if (pending_release_) release_locked(std::exchange(pending_release_, 0));
  }
  filled_ = true;
  changed_.notify_all();
  while (!stopping_) {
    if (pending_release_) {
      release_locked(std::exchange(pending_release_, 0));
      continue;
    }
    const auto cold = std::find(warm_.begin(), warm_.end(), false);
    if (cold == warm_.end()) {
      changed_.wait(lock);
      continue;
    }
    // Touching memory the host took back is slow and competes with restores
    // for the CPU: wait until they pause.
    const auto due = last_release_ + quiet_;
    if (std::chrono::steady_clock::now() < due) {
      changed_.wait_until(lock, due);
      continue;
    }
    const size_t j = static_cast<size_t>(cold - warm_.begin());
    lock.unlock();
    touch(block(2 * j), kBlock);
    lock.lock();
    warm_[j] = true;
    changed_.notify_all();
  }
}

}  // namespace thaw::snapshots
