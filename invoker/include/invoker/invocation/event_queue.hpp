#pragma once
// The durable queue of asynchronous invocations, in the state directory's
// SQLite database. An event is committed before its 202 is answered; workers
// claim due events, and a failed one is retried with backoff (Lambda: twice,
// after about one and then two minutes) or moved to the dead-letter list.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace thaw::invoker {

struct QueuedEvent {
  std::string id;  // the invocation's request id
  std::string function;
  std::string payload;
  int attempts = 0;  // finished attempts before this one
  int64_t enqueued_at_ms = 0;
  int max_retries = 2;
  int max_event_age_s = 21600;
};

struct DeadLetter {
  std::string id;
  std::string function;
  std::string payload;
  int attempts = 0;
  std::string error_type;
  std::string error_message;
  int64_t enqueued_at_ms = 0;
  int64_t failed_at_ms = 0;
};

class EventQueue {
 public:
  enum class Outcome { Retried, DeadLettered };

  // `base_backoff`: the wait before the first retry; it doubles per retry.
  explicit EventQueue(const std::string& db_path,
                      std::chrono::milliseconds base_backoff = std::chrono::minutes(1));
  ~EventQueue();
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;

  // Durable when it returns; the id is the request id the event runs with.
  std::string enqueue(const std::string& function, const std::string& payload, int max_retries,
                      int max_event_age_s);
  // The oldest due pending event, marked running; each is handed out once.
  std::optional<QueuedEvent> claim(int64_t now_ms);
  void succeed(const std::string& id);
  Outcome fail(const std::string& id, const std::string& error_type,
               const std::string& error_message, int64_t now_ms);
  // Pending events older than their maximum age become dead letters; returns how many.
  size_t expire(int64_t now_ms);
  // At start-up: events a killed thawd left running are pending again (at least once).
  void recover();

  size_t depth() const;  // pending and running
  std::vector<DeadLetter> dead_letters(const std::string& function, size_t limit) const;
  std::optional<DeadLetter> dead_letter(const std::string& id) const;
  // Back in the queue as a new event with the function's current retry
  // settings; nullopt when there is no such dead letter.
  std::optional<std::string> redrive(const std::string& dead_letter_id, int max_retries,
                                     int max_event_age_s);
  // A deleted function's pending events go; its dead letters stay.
  size_t drop_function(const std::string& function);

 private:
  sqlite3* db_ = nullptr;
  std::chrono::milliseconds base_backoff_;
  mutable std::mutex mutex_;
};

}  // namespace thaw::invoker
