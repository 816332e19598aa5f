#include "invoker/invocation/event_queue.hpp"

#include <sqlite3.h>

#include "../functions/sqlite_statement.hpp"
#include "invoker/instances/function_instance.hpp"
#include "thaw/error.hpp"

namespace thaw::invoker {

namespace {

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void step_done(sqlite3* db, Statement& st, const char* what) {
  if (sqlite3_step(st.s) != SQLITE_DONE)
    throw Error(std::string("event queue: ") + what + ": " + sqlite3_errmsg(db));
}

}  // namespace

EventQueue::EventQueue(const std::string& db_path, std::chrono::milliseconds base_backoff)
    : base_backoff_(base_backoff) {
  if (sqlite3_open_v2(db_path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw Error("event queue: open " + db_path + ": " + why);
  }
  // WAL + synchronous=FULL: an accepted event survives kill -9 and power loss.
  const char* setup =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;"
      "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, function TEXT NOT NULL,"
      " payload TEXT NOT NULL, attempts INTEGER NOT NULL, enqueued_at INTEGER NOT NULL,"
      " next_attempt_at INTEGER NOT NULL, state TEXT NOT NULL, max_retries INTEGER NOT NULL,"
      " max_event_age_s INTEGER NOT NULL);"
      "CREATE INDEX IF NOT EXISTS events_due ON events (state, next_attempt_at);"
      "CREATE TABLE IF NOT EXISTS dead_letters (id TEXT PRIMARY KEY, function TEXT NOT NULL,"
      " payload TEXT NOT NULL, attempts INTEGER NOT NULL, error_type TEXT, error_message TEXT,"
      " enqueued_at INTEGER NOT NULL, failed_at INTEGER NOT NULL);";
  char* err = nullptr;
  if (sqlite3_exec(db_, setup, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string why = err ? err : "?";
    sqlite3_free(err);
    sqlite3_close(db_);
    throw Error("event queue: set up " + db_path + ": " + why);
  }
}

EventQueue::~EventQueue() {
  sqlite3_close(db_);
}

std::string EventQueue::enqueue(const std::string& function, const std::string& payload,
                                int max_retries, int max_event_age_s) {
  if (max_retries < 0 || max_event_age_s <= 0)
    throw Error("event queue: retries must be 0 or more and the maximum age positive");
  auto id = new_request_id();
  const auto now = unix_ms();
  std::lock_guard lock(mutex_);
  Statement st(db_, "INSERT INTO events VALUES (?, ?, ?, 0, ?, ?, 'pending', ?, ?)");
  st.bind(1, id);
  st.bind(2, function);
  st.bind(3, payload);
  st.bind(4, now);
  st.bind(5, now);
  st.bind(6, int64_t{max_retries});
  st.bind(7, int64_t{max_event_age_s});
  step_done(db_, st, "enqueue");
  return id;
}

std::optional<QueuedEvent> EventQueue::claim(int64_t now_ms) {
  std::lock_guard lock(mutex_);
  Transaction tx(db_);
  Statement pick(db_,
                 "SELECT id, function, payload, attempts, enqueued_at, max_retries, "
                 "max_event_age_s FROM events WHERE state = 'pending' AND next_attempt_at <= ? "
                 // rowid: insertion order, for events enqueued within one ms
                 // (ids are random).
                 "ORDER BY next_attempt_at, enqueued_at, rowid LIMIT 1");
  pick.bind(1, now_ms);
  if (sqlite3_step(pick.s) != SQLITE_ROW) return std::nullopt;
  QueuedEvent e{pick.text(0),
                pick.text(1),
                pick.text(2),
                static_cast<int>(pick.integer(3)),
                pick.integer(4),
                static_cast<int>(pick.integer(5)),
                static_cast<int>(pick.integer(6))};
  Statement mark(db_, "UPDATE events SET state = 'running' WHERE id = ?");
  mark.bind(1, e.id);
  step_done(db_, mark, "claim");
  tx.commit();
  return e;
}

void EventQueue::succeed(const std::string& id) {
  std::lock_guard lock(mutex_);
  Statement st(db_, "DELETE FROM events WHERE id = ?");
  st.bind(1, id);
  step_done(db_, st, "succeed");
}

EventQueue::Outcome EventQueue::fail(const std::string& id, const std::string& error_type,
                                     const std::string& error_message, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  Transaction tx(db_);
  Statement get(db_,
                "SELECT attempts, enqueued_at, max_retries, max_event_age_s FROM events "
                "WHERE id = ?");
  get.bind(1, id);
  if (sqlite3_step(get.s) != SQLITE_ROW) throw Error("event queue: no event " + id);
  const int attempts = static_cast<int>(get.integer(0)) + 1;
  const int64_t enqueued = get.integer(1);
  const int max_retries = static_cast<int>(get.integer(2));
  const int64_t max_age_ms = get.integer(3) * 1000;
  const auto backoff = base_backoff_.count() << (attempts - 1);
  const bool retry = attempts <= max_retries && now_ms + backoff - enqueued <= max_age_ms;
  if (retry) {
    Statement st(db_,
                 "UPDATE events SET attempts = ?, state = 'pending', next_attempt_at = ? "
                 "WHERE id = ?");
    st.bind(1, int64_t{attempts});
    st.bind(2, now_ms + backoff);
    st.bind(3, id);
    step_done(db_, st, "retry");
  } else {
    Statement move(db_,
                   "INSERT INTO dead_letters SELECT id, function, payload, ?, ?, ?, enqueued_at, "
                   "? FROM events WHERE id = ?");
    move.bind(1, int64_t{attempts});
    move.bind(2, error_type);
    move.bind(3, error_message);
    move.bind(4, now_ms);
    move.bind(5, id);
    step_done(db_, move, "dead-letter");
    Statement del(db_, "DELETE FROM events WHERE id = ?");
    del.bind(1, id);
    step_done(db_, del, "dead-letter");
  }
  tx.commit();
  return retry ? Outcome::Retried : Outcome::DeadLettered;
}

size_t EventQueue::expire(int64_t now_ms) {
  std::lock_guard lock(mutex_);
  Transaction tx(db_);
  const char* old = "state = 'pending' AND enqueued_at + max_event_age_s * 1000 < ?";
  Statement move(db_, (std::string("INSERT INTO dead_letters SELECT id, function, payload, "
                                   "attempts, 'EventAgeExceeded', 'The event was older than "
                                   "MaximumEventAgeInSeconds', enqueued_at, ? FROM events "
                                   "WHERE ") +
                       old)
                          .c_str());
  move.bind(1, now_ms);
  move.bind(2, now_ms);
  step_done(db_, move, "expire");
  const auto moved = static_cast<size_t>(sqlite3_changes(db_));
  Statement del(db_, (std::string("DELETE FROM events WHERE ") + old).c_str());
  del.bind(1, now_ms);
  step_done(db_, del, "expire");
  tx.commit();
  return moved;
}

void EventQueue::recover() {
  std::lock_guard lock(mutex_);
  Statement st(db_, "UPDATE events SET state = 'pending' WHERE state = 'running'");
  step_done(db_, st, "recover");
}

size_t EventQueue::depth() const {
  std::lock_guard lock(mutex_);
  Statement st(db_, "SELECT COUNT(*) FROM events");
  sqlite3_step(st.s);
  return static_cast<size_t>(st.integer(0));
}

std::vector<DeadLetter> EventQueue::dead_letters(const std::string& function, size_t limit) const {
  std::lock_guard lock(mutex_);
  Statement st(db_,
               "SELECT id, function, payload, attempts, error_type, error_message, enqueued_at, "
               "failed_at FROM dead_letters WHERE ? = '' OR function = ? ORDER BY failed_at "
               "LIMIT ?");
  st.bind(1, function);
  st.bind(2, function);
  st.bind(3, static_cast<int64_t>(limit));
  std::vector<DeadLetter> out;
  while (sqlite3_step(st.s) == SQLITE_ROW)
    out.push_back({st.text(0), st.text(1), st.text(2), static_cast<int>(st.integer(3)), st.text(4),
                   st.text(5), st.integer(6), st.integer(7)});
  return out;
}

std::optional<DeadLetter> EventQueue::dead_letter(const std::string& id) const {
  std::lock_guard lock(mutex_);
  Statement st(db_,
               "SELECT id, function, payload, attempts, error_type, error_message, enqueued_at, "
               "failed_at FROM dead_letters WHERE id = ?");
  st.bind(1, id);
  if (sqlite3_step(st.s) != SQLITE_ROW) return std::nullopt;
  return DeadLetter{st.text(0), st.text(1), st.text(2),    static_cast<int>(st.integer(3)),
                    st.text(4), st.text(5), st.integer(6), st.integer(7)};
}

std::optional<std::string> EventQueue::redrive(const std::string& dead_letter_id, int max_retries,
                                               int max_event_age_s) {
  const auto id = new_request_id();
  const auto now = unix_ms();
  std::lock_guard lock(mutex_);
  Transaction tx(db_);
  Statement move(db_,
                 "INSERT INTO events SELECT ?, function, payload, 0, ?, ?, 'pending', ?, ? "
                 "FROM dead_letters WHERE id = ?");
  move.bind(1, id);
  move.bind(2, now);
  move.bind(3, now);
  move.bind(4, int64_t{max_retries});
  move.bind(5, int64_t{max_event_age_s});
  move.bind(6, dead_letter_id);
  step_done(db_, move, "redrive");
  if (sqlite3_changes(db_) == 0) return std::nullopt;
  Statement del(db_, "DELETE FROM dead_letters WHERE id = ?");
  del.bind(1, dead_letter_id);
  step_done(db_, del, "redrive");
  tx.commit();
  return id;
}

size_t EventQueue::drop_function(const std::string& function) {
  std::lock_guard lock(mutex_);
  Statement st(db_, "DELETE FROM events WHERE function = ? AND state = 'pending'");
  st.bind(1, function);
  step_done(db_, st, "drop");
  return static_cast<size_t>(sqlite3_changes(db_));
}

}  // namespace thaw::invoker
