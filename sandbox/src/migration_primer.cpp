#include "sandbox/migration_primer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "sandbox/cgroup.hpp"

namespace thaw::sandbox {

namespace {

// This thread's cgroup in the hierarchy of `controller` ("" = the unified
// one), from /proc/thread-self/cgroup; "" when it is in none.
std::string own_cgroup(const std::string& controller) {
  for (const auto& m : cgroup_memberships("/proc/thread-self/cgroup"))
    if (m.holds(controller)) return m.path;
  return "";
}

struct Move {
  std::string file, value;  // file "" = nothing found to write
};

// A v1 hierarchy's "tasks" moves this one thread; on a v2-only host the whole
// process goes through cgroup.procs. Either way into where it already is.
Move harmless_move() {
  for (const char* c : {"pids", "cpuacct", "cpu", "memory"}) {
    const auto mount = controller_mount(c), path = own_cgroup(c);
    const auto file = mount + path + "/tasks";
    if (!mount.empty() && !path.empty() && access(file.c_str(), W_OK) == 0)
      return {file, std::to_string(gettid())};
  }
  const auto path = own_cgroup("");
  const auto file = "/sys/fs/cgroup" + path + "/cgroup.procs";
  if (!path.empty() && access(file.c_str(), W_OK) == 0) return {file, std::to_string(getpid())};
  return {};
}

class Primer {
 public:
  static Primer& instance() {
    static Primer primer;
    return primer;
  }
  ~Primer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  void kick(std::chrono::milliseconds keep_warm) {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    warm_until_ = std::max(warm_until_, Clock::now() + keep_warm);
    if (busy_) return;
    busy_ = true;
    wake_.notify_one();
  }
  uint64_t done() const { return done_.load(); }

 private:
  Primer() : thread_([this] { run(); }) {}

  void run() {
    const Move move = harmless_move();  // here: "tasks" takes this thread's id
    std::unique_lock lock(mutex_);
    for (;;) {
      // Between moves while the window is open, well inside a grace period
      // (5-20 ms here), so the lock never goes cold.
      if (!busy_ && Clock::now() < warm_until_) {
        wake_.wait_for(lock, kWarmInterval);
        busy_ = busy_ || Clock::now() < warm_until_;
      }
      wake_.wait(lock, [this] { return busy_ || stopping_; });
      if (stopping_) return;
      lock.unlock();
      bool moved = false;
      if (!move.file.empty()) {
        const int fd = open(move.file.c_str(), O_WRONLY | O_CLOEXEC);
        moved = fd >= 0 && write(fd, move.value.data(), move.value.size()) ==
                               static_cast<ssize_t>(move.value.size());
        if (fd >= 0) close(fd);
      }
      lock.lock();
      busy_ = false;
      if (moved) ++done_;
    }
  }

  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kWarmInterval{3};

  std::mutex mutex_;
  std::condition_variable wake_;
  bool busy_ = false, stopping_ = false;
  Clock::time_point warm_until_{};
  std::atomic<uint64_t> done_{0};
  std::thread thread_;  // last: it uses the members above
};

}  // namespace

void prime_task_migration(std::chrono::milliseconds keep_warm) {
  Primer::instance().kick(keep_warm);
}

uint64_t task_migrations_primed() {
  return Primer::instance().done();
}

}  // namespace thaw::sandbox
