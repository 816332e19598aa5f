// Function logs on disk: offsets, rotation at the cap, restarts, followers.
#include "invoker/observability/function_logs.hpp"

#include <gtest/gtest.h>

#include <future>

#include "temp_dir.hpp"
#include "thaw/error.hpp"

using namespace thaw::invoker;

TEST(FunctionLogs, AppendAndReadFromAnOffset) {
  thaw::test::TempDir dir;
  FunctionLogs logs(dir.path(), 1024);
  logs.append("f", "one\n");
  logs.append("f", "two\n");
  auto all = logs.read("f", 0, 100);
  EXPECT_EQ(all.text, "one\ntwo\n");
  EXPECT_EQ(all.next_offset, 8u);
  EXPECT_EQ(logs.read("f", 4, 100).text, "two\n");
  EXPECT_EQ(logs.read("f", 8, 100).text, "");
  EXPECT_EQ(logs.read("never-logged", 0, 100).text, "");
}

TEST(FunctionLogs, RotationKeepsTheNewestBytesAndOffsetsStayValid) {
  thaw::test::TempDir dir;
  FunctionLogs logs(dir.path(), 10);
  for (int i = 0; i < 10; ++i) logs.append("f", "line" + std::to_string(i) + "\n");  // 6 bytes each
  const auto tail = logs.read_tail("f", 1000);
  EXPECT_EQ(tail.next_offset, 60u);
  EXPECT_NE(tail.text.find("line9\n"), std::string::npos);
  EXPECT_EQ(tail.text.find("line0"), std::string::npos);
  // An offset older than what is kept starts at the oldest byte kept.
  const auto old = logs.read("f", 0, 1000);
  EXPECT_GT(old.first_available_offset, 0u);
  EXPECT_EQ(old.text, logs.read("f", old.first_available_offset, 1000).text);
  EXPECT_EQ(logs.read("f", 54, 1000).text, "line9\n");
}

TEST(FunctionLogs, OffsetsContinueAfterARestart) {
  thaw::test::TempDir dir;
  {
    FunctionLogs logs(dir.path(), 10);
    for (int i = 0; i < 5; ++i) logs.append("f", "abcde\n");
  }
  FunctionLogs logs(dir.path(), 10);
  logs.append("f", "after\n");
  EXPECT_EQ(logs.read("f", 30, 100).text, "after\n");
  EXPECT_EQ(logs.read_tail("f", 100).next_offset, 36u);
}

TEST(FunctionLogs, RemoveAndNamesThatAreNotFunctionNames) {
  thaw::test::TempDir dir;
  FunctionLogs logs(dir.path(), 100);
  logs.append("f", "x\n");
  logs.remove("f");
  EXPECT_EQ(logs.read("f", 0, 10).text, "");
  EXPECT_THROW(logs.append("../escape", "x"), thaw::Error);
  EXPECT_THROW(logs.read("a/b", 0, 1), thaw::Error);
}

TEST(FunctionLogs, AFollowerWakesOnAppendOrTimesOut) {
  thaw::test::TempDir dir;
  FunctionLogs logs(dir.path(), 100);
  logs.append("f", "x\n");
  using Clock = std::chrono::steady_clock;
  EXPECT_FALSE(logs.wait_for_more("f", 2, Clock::now() + std::chrono::milliseconds(50)));
  auto waiter = std::async(std::launch::async, [&] {
    return logs.wait_for_more("f", 2, Clock::now() + std::chrono::seconds(30));
  });
  logs.append("f", "y\n");
  EXPECT_TRUE(waiter.get());
}
