#pragma once
// Long polls on function logs (`thaw logs --follow`), answered from a thread
// of their own. thawd has an HTTP thread per invocation it may run and a
// handful more: a follower that held one while it waited for its log to grow
// took that thread from invocations, and a few dozen followers stopped thawd
// answering. A follower here holds an entry in a list, bounded in number.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>

namespace thaw::invoker {

class FunctionLogs;

class LogFollowers {
 public:
  LogFollowers(FunctionLogs& logs, size_t max_waiting);
  ~LogFollowers();  // answers every follower still waiting
  LogFollowers(const LogFollowers&) = delete;
  LogFollowers& operator=(const LogFollowers&) = delete;

  // Calls `answer` once `function`'s log has bytes past `offset`, at
  // `deadline`, or when the followers stop; at once when `max_waiting`
  // already wait. `answer` runs on the followers' thread (or the caller's)
  // and must not block.
  void follow(const std::string& function, uint64_t offset,
              std::chrono::steady_clock::time_point deadline, std::function<void()> answer);
  // Answers everyone now, and every later follower at once (thawd stopping).
  void stop();
  size_t waiting() const;

 private:
  struct Follower {
    std::string function;
    uint64_t offset;
    std::chrono::steady_clock::time_point deadline;
    std::function<void()> answer;
  };
  void run();

  FunctionLogs& logs_;
  const size_t max_waiting_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::list<Follower> waiting_;
  bool grew_ = false;
  bool looking_ = false;  // followers are out of waiting_, being looked at
  size_t looked_at_ = 0;  // how many
  bool stopping_ = false;
  std::thread thread_;  // last: it uses the members above
};

}  // namespace thaw::invoker
