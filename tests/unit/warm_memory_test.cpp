// The warm reserve: filled in the background, freed in whole alternate 2 MiB
// blocks right before restores, filled again once restores pause.
#include "snapshots/warm_memory.hpp"

#include <gtest/gtest.h>

#include <thread>

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
