// The durable queue of asynchronous invocations, on a real SQLite file.
#include "invoker/invocation/event_queue.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.hpp"
#include "thaw/error.hpp"

using namespace thaw::invoker;
using std::chrono::milliseconds;

namespace {

struct EventQueueTest : ::testing::Test {
  thaw::test::TempDir dir;
  std::string db() const { return dir.path() + "/thaw.db"; }
};

}  // namespace

TEST_F(EventQueueTest, AnAcceptedEventSurvivesReopeningTheDatabase) {
  std::string id;
  {
    EventQueue q(db());
    id = q.enqueue("f", R"({"n":1})", 2, 3600);
  }
  EventQueue q(db());
  EXPECT_EQ(q.depth(), 1u);
  auto e = q.claim(INT64_MAX / 2);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, id);
  EXPECT_EQ(e->payload, R"({"n":1})");
  EXPECT_FALSE(q.claim(INT64_MAX / 2));  // handed out once
}

TEST_F(EventQueueTest, ClaimsOldestFirstAndOnlyWhenDue) {
  EventQueue q(db(), milliseconds(1000));
  const auto a = q.enqueue("f", "1", 2, 3600);
  const auto b = q.enqueue("f", "2", 2, 3600);
  auto first = q.claim(INT64_MAX / 2);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->id, a);
  // After both enqueues, however slowly they committed (a busy disk can take
  // more than 10 ms per commit).
  const int64_t now =
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count() +
      10;
  EXPECT_EQ(q.fail(a, "E", "m", now), EventQueue::Outcome::Retried);
  auto second = q.claim(now);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->id, b);  // a waits out its backoff
  EXPECT_FALSE(q.claim(now + 999));
  auto retried = q.claim(now + 1000);
  ASSERT_TRUE(retried);
  EXPECT_EQ(retried->id, a);
  EXPECT_EQ(retried->attempts, 1);
}

TEST_F(EventQueueTest, TwoRetriesWithDoublingBackoffThenADeadLetter) {
  EventQueue q(db(), milliseconds(100));
  const auto id = q.enqueue("f", "{}", 2, 3600);
  int64_t now = q.claim(INT64_MAX / 2)->enqueued_at_ms;
  EXPECT_EQ(q.fail(id, "E", "first", now), EventQueue::Outcome::Retried);
  EXPECT_FALSE(q.claim(now + 99));
  ASSERT_TRUE(q.claim(now + 100));
  now += 100;
  EXPECT_EQ(q.fail(id, "E", "second", now), EventQueue::Outcome::Retried);
  EXPECT_FALSE(q.claim(now + 199));  // doubled
  ASSERT_TRUE(q.claim(now + 200));
  EXPECT_EQ(q.fail(id, "ValueError", "third", now + 200), EventQueue::Outcome::DeadLettered);
  EXPECT_EQ(q.depth(), 0u);
  const auto letters = q.dead_letters("f", 10);
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].attempts, 3);
  EXPECT_EQ(letters[0].error_type, "ValueError");
  EXPECT_EQ(letters[0].error_message, "third");
  EXPECT_TRUE(q.dead_letters("other", 10).empty());
}

TEST_F(EventQueueTest, NoRetriesMeansTheFirstFailureIsFinal) {
  EventQueue q(db());
  const auto id = q.enqueue("f", "{}", 0, 3600);
  const auto e = q.claim(INT64_MAX / 2);
  EXPECT_EQ(q.fail(id, "E", "m", e->enqueued_at_ms), EventQueue::Outcome::DeadLettered);
}

TEST_F(EventQueueTest, EventsOlderThanTheirMaximumAgeExpire) {
  EventQueue q(db());
  q.enqueue("f", "{}", 2, 60);
  auto e = q.claim(INT64_MAX / 2);
  q.recover();  // back to pending
  EXPECT_EQ(q.expire(e->enqueued_at_ms + 59000), 0u);
  EXPECT_EQ(q.expire(e->enqueued_at_ms + 61000), 1u);
  EXPECT_EQ(q.depth(), 0u);
  EXPECT_EQ(q.dead_letters("", 10).at(0).error_type, "EventAgeExceeded");
}

TEST_F(EventQueueTest, RecoverQueuesAgainWhatAKilledDaemonLeftRunning) {
  {
    EventQueue q(db());
    q.enqueue("f", "{}", 2, 3600);
    ASSERT_TRUE(q.claim(INT64_MAX / 2));
  }
  EventQueue q(db());
  EXPECT_FALSE(q.claim(INT64_MAX / 2));
  q.recover();
  EXPECT_TRUE(q.claim(INT64_MAX / 2));
}

TEST_F(EventQueueTest, RedriveAndDropFunction) {
  EventQueue q(db());
  const auto id = q.enqueue("f", "payload", 0, 3600);
  q.fail(q.claim(INT64_MAX / 2)->id, "E", "m", 0);
  const auto letter = q.dead_letters("f", 10).at(0);
  EXPECT_FALSE(q.redrive("nope", 2, 3600));
  const auto again = q.redrive(letter.id, 1, 3600);
  ASSERT_TRUE(again);
  EXPECT_NE(*again, id);
  EXPECT_TRUE(q.dead_letters("f", 10).empty());
  const auto e = q.claim(INT64_MAX / 2);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->payload, "payload");
  EXPECT_EQ(e->max_retries, 1);
  q.enqueue("g", "{}", 2, 3600);
  EXPECT_EQ(q.drop_function("g"), 1u);
}

TEST_F(EventQueueTest, ConcurrentClaimsHandEachEventOutOnce) {
  EventQueue q(db());
  std::set<std::string> ids;
  for (int i = 0; i < 200; ++i) ids.insert(q.enqueue("f", "{}", 2, 3600));
  std::mutex m;
  std::multiset<std::string> claimed;
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w)
    workers.emplace_back([&] {
      while (auto e = q.claim(INT64_MAX / 2)) {
        std::lock_guard lock(m);
        claimed.insert(e->id);
      }
    });
  for (auto& t : workers) t.join();
  EXPECT_EQ(claimed.size(), 200u);
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()), ids);
}

TEST_F(EventQueueTest, BadSettingsAreRefused) {
  EventQueue q(db());
  EXPECT_THROW(q.enqueue("f", "{}", -1, 60), thaw::Error);
  EXPECT_THROW(q.enqueue("f", "{}", 2, 0), thaw::Error);
}

// Events enqueued within one millisecond still come out in the order they
// went in (their ids are random and say nothing about it).
TEST_F(EventQueueTest, EventsOfOneMillisecondComeOutInTheOrderTheyWentIn) {
  EventQueue q(db(), milliseconds(1000));
  std::vector<std::string> in;
  for (int i = 0; i < 40; ++i) in.push_back(q.enqueue("f", std::to_string(i), 0, 3600));
  std::vector<std::string> out;
  while (auto e = q.claim(INT64_MAX / 2)) out.push_back(e->id);
  EXPECT_EQ(out, in);
}
