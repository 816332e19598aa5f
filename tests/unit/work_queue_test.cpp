#include "thaw/work_queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

using thaw::WorkQueue;

TEST(WorkQueue, RunsJobsInTheOrderTheyCameOffTheCallersThread) {
  WorkQueue queue;
  std::vector<int> order;
  std::atomic<bool> elsewhere{true};
  const auto caller = std::this_thread::get_id();
  for (int i = 0; i < 5; ++i)
    queue.post([&, i] {
      order.push_back(i);
      if (std::this_thread::get_id() == caller) elsewhere = false;
    });
  queue.drain();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(elsewhere);
}

TEST(WorkQueue, DrainWaitsForTheJobThatIsRunning) {
  WorkQueue queue;
  std::promise<void> release;
  auto gate = release.get_future().share();
  std::atomic<bool> done{false};
  queue.post([&, gate] {
    gate.wait();
    done = true;
  });
  auto drained = std::async(std::launch::async, [&] { queue.drain(); });
  EXPECT_EQ(drained.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  release.set_value();
  drained.get();
  EXPECT_TRUE(done);
}

TEST(WorkQueue, AJobThatThrowsIsDroppedAndTheNextOnesRun) {
  WorkQueue queue;
  int ran = 0;
  queue.post([] { throw std::runtime_error("lost"); });
  queue.post([&] { ++ran; });
  queue.drain();
  EXPECT_EQ(ran, 1);
}

TEST(WorkQueue, JobsStillQueuedRunBeforeItIsGone) {
  std::atomic<int> ran{0};
  {
    WorkQueue queue;
    std::promise<void> release;
    auto gate = release.get_future().share();
    queue.post([gate] { gate.wait(); });
    for (int i = 0; i < 3; ++i) queue.post([&] { ++ran; });
    release.set_value();
  }
  EXPECT_EQ(ran, 3);
}
