// Log long polls: answered on growth, at their deadline, at once past the cap,
// and never left waiting when the log grows while they are being looked at.
#include "invoker/observability/log_followers.hpp"

#include <gtest/gtest.h>

#include <future>
#include <memory>

#include "invoker/observability/function_logs.hpp"
#include "temp_dir.hpp"

using namespace thaw::invoker;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// A follower whose answer can be awaited.
std::future<void> follow(LogFollowers& followers, const std::string& function, uint64_t offset,
                         Clock::duration wait) {
  auto answered = std::make_shared<std::promise<void>>();
  auto future = answered->get_future();
  followers.follow(function, offset, Clock::now() + wait, [answered] { answered->set_value(); });
  return future;
}

}  // namespace

TEST(LogFollowers, AFollowerIsAnsweredWhenItsLogGrows) {
  thaw::test::TempDir dir;
  FunctionLogs logs(dir.path(), 1 << 20);
  LogFollowers followers(logs, 8);
  logs.append("f", "x\n");
  auto answered = follow(followers, "f", 2, 60s);
  EXPECT_EQ(answered.wait_for(100ms), std::future_status::timeout);
  logs.append("g", "another function's line\n");
  EXPECT_EQ(answered.wait_for(100ms), std::future_status::timeout);
  logs.append("f", "y\n");
  EXPECT_EQ(answered.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(followers.waiting(), 0u);
}

TEST(LogFollowers, AFollowerIsAnsweredAtItsDeadline) {
  thaw::test::TempDir dir;
  FunctionLogs logs(dir.path(), 1 << 20);
  LogFollowers followers(logs, 8);
  const auto begun = Clock::now();
  auto answered = follow(followers, "f", 0, 200ms);
  ASSERT_EQ(answered.wait_for(10s), std::future_status::ready);
  EXPECT_GE(Clock::now() - begun, 200ms);
}

TEST(LogFollowers, PastTheCapAFollowerIsAnsweredAtOnce) {
  thaw::test::TempDir dir;
  FunctionLogs logs(dir.path(), 1 << 20);
  LogFollowers followers(logs, 1);
  auto first = follow(followers, "f", 0, 60s);
  auto second = follow(followers, "f", 0, 60s);
  EXPECT_EQ(second.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(first.wait_for(100ms), std::future_status::timeout);
  followers.stop();
  EXPECT_EQ(first.wait_for(10s), std::future_status::ready);
}

// The followers' thread answers followers with no lock held, after it looked
// at the others: growth during an answer must still count for those others.
TEST(LogFollowers, GrowthWhileFollowersAreLookedAtIsNotLost) {
  thaw::test::TempDir dir;
  FunctionLogs logs(dir.path(), 1 << 20);
  LogFollowers followers(logs, 8);
  logs.append("f", "x\n");
  auto waits = follow(followers, "f", 2, 60s);
  ASSERT_EQ(waits.wait_for(200ms), std::future_status::timeout);
  // Already grown past 0: answered in the next look, after `waits` was looked
  // at, and its answer makes the log grow past what `waits` waits for.
  followers.follow("f", 0, Clock::now() + 60s, [&logs] { logs.append("f", "y\n"); });
  EXPECT_EQ(waits.wait_for(10s), std::future_status::ready);
}
