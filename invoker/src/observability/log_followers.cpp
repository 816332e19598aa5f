#include "invoker/observability/log_followers.hpp"

#include <algorithm>

#include "invoker/observability/function_logs.hpp"
#include "invoker/observability/log.hpp"

namespace thaw::invoker {

LogFollowers::LogFollowers(FunctionLogs& logs, size_t max_waiting)
    : logs_(logs), max_waiting_(max_waiting), thread_([this] { run(); }) {
  // Every invocation's log grows: the thread wakes only when someone follows,
  // as a wake-up per invocation cost the warm path a tenth of its throughput.
  logs_.on_growth([this] {
    std::lock_guard lock(mutex_);
    if (waiting_.empty() && !looking_) return;
    grew_ = true;
    changed_.notify_one();
  });
}

LogFollowers::~LogFollowers() {
  stop();
  logs_.on_growth({});
  thread_.join();
}

void LogFollowers::follow(const std::string& function, uint64_t offset,
                          std::chrono::steady_clock::time_point deadline,
                          std::function<void()> answer) {
  {
    std::lock_guard lock(mutex_);
    // Those being looked at count too: they are out of waiting_ only for now.
    if (!stopping_ && waiting_.size() + looked_at_ < max_waiting_) {
      waiting_.push_back({function, offset, deadline, std::move(answer)});
      grew_ = true;  // it may have grown already: look once
      changed_.notify_one();
      return;
    }
  }
  answer();  // too many wait, or thawd stops: what there is, now
}

void LogFollowers::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_one();
}

size_t LogFollowers::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_.size();
}

void LogFollowers::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    const auto next = std::min_element(
        waiting_.begin(), waiting_.end(),
        [](const Follower& a, const Follower& b) { return a.deadline < b.deadline; });
    if (next == waiting_.end()) {
      changed_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
    } else {
      changed_.wait_until(lock, next->deadline, [this] { return stopping_ || grew_; });
    }
    const bool stopping = stopping_;
    grew_ = false;
    std::list<Follower> candidates;
    candidates.splice(candidates.end(), waiting_);
    looking_ = true;  // growth meanwhile must still count for them
    looked_at_ = candidates.size();
    lock.unlock();
    // Looked at and answered outside the lock: the logs take their own.
    std::list<Follower> still;
    const auto now = std::chrono::steady_clock::now();
    for (auto& f : candidates) {
      bool ready = stopping || now >= f.deadline;
      try {
        ready = ready || logs_.grew_past(f.function, f.offset);
      } catch (const std::exception&) {
        ready = true;  // its log is gone or unreadable: the answer says so
      }
      if (!ready) {
        still.push_back(std::move(f));
        continue;
      }
      try {
        f.answer();
      } catch (const std::exception& e) {
        log_event("warn", "log_follower_failed", {{"function", f.function}, {"reason", e.what()}});
      }
    }
    lock.lock();
    looking_ = false;
    looked_at_ = 0;
    waiting_.splice(waiting_.end(), still);
    if (stopping && waiting_.empty()) return;
  }
}

}  // namespace thaw::invoker
