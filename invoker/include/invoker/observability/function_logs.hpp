#pragma once
// Each function's log (its output, START/END/REPORT lines) kept on local disk
// under the state directory, as CloudWatch Logs keeps a Lambda function's.
// Offsets are logical: bytes since the function's first log byte, valid
// across rotation and restarts. When a function's current file passes the
// cap it becomes the previous one (replacing the older), so at most about
// twice the cap is kept and the newest bytes always are.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace thaw::invoker {

struct LogChunk {
  std::string text;
  uint64_t next_offset = 0;             // where the next read starts
  uint64_t first_available_offset = 0;  // older bytes were rotated away
};

class FunctionLogs {
 public:
  FunctionLogs(std::string dir, uint64_t cap_bytes_per_function);
  ~FunctionLogs();
  FunctionLogs(const FunctionLogs&) = delete;
  FunctionLogs& operator=(const FunctionLogs&) = delete;

  void append(const std::string& function, std::string_view text);
  // Up to `max_bytes` from `from_offset` (or from the oldest byte kept, when
  // older bytes are gone).
  LogChunk read(const std::string& function, uint64_t from_offset, size_t max_bytes);
  // The newest bytes, up to `max_bytes`, starting at a line.
  LogChunk read_tail(const std::string& function, size_t max_bytes);
  // Blocks until the log grows past `offset` or the deadline passes; true if it grew.
  bool wait_for_more(const std::string& function, uint64_t offset,
                     std::chrono::steady_clock::time_point deadline);
  void remove(const std::string& function);
  // Whether the log has bytes past `offset` (or is gone, or thawd stops).
  bool grew_past(const std::string& function, uint64_t offset);
  // Called after every append, outside the lock (log_followers.hpp).
  void on_growth(std::function<void()> observer);
  // Wakes every follower and makes later waits return at once (thawd stopping:
  // a long poll must not hold a graceful stop up).
  void stop_waiting();

 private:
  struct Files {
    bool has_previous = false;
    uint64_t previous_start = 0;  // logical offset of <name>.log.1's first byte
    uint64_t current_start = 0;   // ... of <name>.log's
    uint64_t current_size = 0;
    int fd = -1;  // <name>.log, open for appending while thawd runs
    uint64_t end() const { return current_start + current_size; }
    uint64_t first() const { return has_previous ? previous_start : current_start; }
  };
  Files& files(const std::string& function);  // mutex_ held
  void append_locked(const std::string& function, std::string_view text);
  std::string path(const std::string& function, const char* suffix) const;
  void save_offsets(const std::string& function, const Files& f) const;
  std::string read_locked(const std::string& function, const Files& f, uint64_t from,
                          size_t max_bytes) const;

  std::string dir_;
  uint64_t cap_;
  std::mutex mutex_;
  std::condition_variable grew_;
  std::map<std::string, Files> files_;
  bool stopping_ = false;
  std::function<void()> on_growth_;
};

}  // namespace thaw::invoker
