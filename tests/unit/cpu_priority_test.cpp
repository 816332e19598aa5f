// Background work runs at a lower CPU priority: a scope lowers the calling
// thread alone and gives it back its priority; a process started meanwhile
// keeps the lower one; a thread lowered for good stays lowered.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <future>
#include <thread>

#include "sandbox/cpu_priority.hpp"

using namespace thaw::sandbox;

namespace {

int nice_of_thread(pid_t tid) {
  errno = 0;
  const int n = getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
  EXPECT_EQ(errno, 0);
  return n;
}

}  // namespace

TEST(CpuPriority, AScopeLowersOnlyTheCallingThreadAndGivesItsPriorityBack) {
  const int before = nice_of_thread(gettid());
  std::promise<pid_t> bystander_id;
  std::promise<void> done;
  std::thread bystander([&] {
    bystander_id.set_value(gettid());
    done.get_future().wait();
  });
  const pid_t other = bystander_id.get_future().get();
  {
    BackgroundPriority background;
    EXPECT_EQ(nice_of_thread(gettid()), kBackgroundNice);
    EXPECT_EQ(nice_of_thread(other), before) << "another thread keeps its priority";
    std::thread during([] {
      EXPECT_EQ(nice_of_thread(gettid()), kBackgroundNice)
          << "a thread started meanwhile inherits it, as Linux does";
    });
    during.join();
  }
  EXPECT_EQ(nice_of_thread(gettid()), before);
  done.set_value();
  bystander.join();
}

TEST(CpuPriority, AProcessStartedInTheScopeRunsAtTheLowerPriority) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child;
  {
    BackgroundPriority background;
    child = fork();
    if (child == 0) {
      const int n = getpriority(PRIO_PROCESS, 0);
      (void)!write(fds[1], &n, sizeof n);
      _exit(0);
    }
  }
  ASSERT_GT(child, 0);
  int seen = -100;
  ASSERT_EQ(read(fds[0], &seen, sizeof seen), static_cast<ssize_t>(sizeof seen));
  waitpid(child, nullptr, 0);
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(seen, kBackgroundNice);
}

TEST(CpuPriority, AThreadLoweredForGoodStaysLoweredAndNestedScopesKeepIt) {
  const int before = nice_of_thread(gettid());
  std::thread worker([] {
    lower_this_threads_priority();
    EXPECT_EQ(nice_of_thread(gettid()), kBackgroundNice);
    { BackgroundPriority again; }
    EXPECT_EQ(nice_of_thread(gettid()), kBackgroundNice) << "a scope gives back what it found";
  });
  worker.join();
  EXPECT_EQ(nice_of_thread(gettid()), before) << "the test's own thread is untouched";
}
