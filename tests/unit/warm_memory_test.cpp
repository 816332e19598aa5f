// The warm reserve: filled in the background, freed in whole alternate 2 MiB
// blocks right before restores, filled again once restores pause.
#include "snapshots/warm_memory.hpp"

#include <gtest/gtest.h>

#include <sched.h>

#include <algorithm>
#include <thread>
#include <vector>

using thaw::snapshots::WarmMemory;
using namespace std::chrono_literals;

namespace {
constexpr size_t MiB = size_t{1} << 20;
}

TEST(WarmMemory, FillsItsReserveInTheBackground) {
  WarmMemory warm(32 * MiB);
  ASSERT_TRUE(warm.wait_until_full(20s));
  EXPECT_EQ(warm.releasable(), 16 * MiB);  // the even half; the odd half stays
  EXPECT_EQ(warm.resident_bytes(), 32 * MiB);
}

TEST(WarmMemory, ReleaseFreesWholeBlocksAtOnceAndTheRefillWaitsForAPause) {
  WarmMemory warm(64 * MiB, 1500ms);
  ASSERT_TRUE(warm.wait_until_full(20s));
  EXPECT_EQ(warm.release(5 * MiB), 6 * MiB);  // rounded up to whole blocks
  EXPECT_EQ(warm.resident_bytes(), 58 * MiB);
  EXPECT_EQ(warm.releasable(), 26 * MiB);
  // More than is warm: what is left, never more than half the reserve.
  EXPECT_EQ(warm.release(1024 * MiB), 26 * MiB);
  EXPECT_EQ(warm.release(1), 0u);
  EXPECT_EQ(warm.resident_bytes(), 32 * MiB);
  // Still within the pause: nothing touched again yet.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(warm.resident_bytes(), 32 * MiB);
  ASSERT_TRUE(warm.wait_until_full(20s));
  EXPECT_EQ(warm.resident_bytes(), 64 * MiB);
  EXPECT_EQ(warm.releasable(), 32 * MiB);
}

TEST(WarmMemory, ReleaseSoonFreesFromTheBackgroundThread) {
  WarmMemory warm(16 * MiB, 1500ms);
  ASSERT_TRUE(warm.wait_until_full(20s));
  warm.release_soon(4 * MiB);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (warm.released_total() < 4 * MiB && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(warm.released_total(), 4 * MiB);
  EXPECT_EQ(warm.releasable(), 4 * MiB);
  EXPECT_EQ(warm.resident_bytes(), 12 * MiB);
}

TEST(WarmMemory, SizeZeroIsInert) {
  WarmMemory warm(0);
  EXPECT_TRUE(warm.wait_until_full(0ms));
  EXPECT_EQ(warm.release(64 * MiB), 0u);
  warm.release_soon(64 * MiB);
  EXPECT_EQ(warm.resident_bytes(), 0u);
  EXPECT_EQ(warm.released_total(), 0u);
}

TEST(WarmMemory, ReservesWholePairsOfBlocks) {
  WarmMemory warm(3 * MiB);  // rounded up to one freeable and one kept block
  ASSERT_TRUE(warm.wait_until_full(20s));
  EXPECT_EQ(warm.releasable(), 2 * MiB);
  EXPECT_EQ(warm.resident_bytes(), 4 * MiB);
}

// A freed huge page waits on the freeing CPU's own list first, so a release
// frees a share from every CPU the process may run on, and leaves the
// caller's CPU mask as it was.
TEST(WarmMemory, ReleaseFreesAShareFromEveryAllowedCpuAndRestoresTheMask) {
  cpu_set_t before;
  ASSERT_EQ(sched_getaffinity(0, sizeof before, &before), 0);
  std::vector<int> allowed;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &before)) allowed.push_back(c);
  if (allowed.size() < 2) GTEST_SKIP() << "one CPU: nothing to spread over";
  WarmMemory warm(64 * MiB, 1500ms);
  ASSERT_TRUE(warm.wait_until_full(20s));
  const size_t blocks = std::min<size_t>(allowed.size(), 16);
  EXPECT_EQ(warm.release(blocks * WarmMemory::kBlock), blocks * WarmMemory::kBlock);
  const auto used = warm.last_release_cpus();
  EXPECT_EQ(used, std::vector<int>(allowed.begin(), allowed.begin() + blocks));
  cpu_set_t after;
  ASSERT_EQ(sched_getaffinity(0, sizeof after, &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after));
  EXPECT_EQ(warm.resident_bytes(), 64 * MiB - blocks * WarmMemory::kBlock);
  // One block has one CPU to come from: no pinning at all.
  EXPECT_EQ(warm.release(1), WarmMemory::kBlock);
  EXPECT_TRUE(warm.last_release_cpus().empty());
}
