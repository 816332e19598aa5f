#include "sandbox/cgroup_spares.hpp"

#include <libcgroup.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "cgroup_internal.hpp"

namespace thaw::sandbox {

namespace {

// A restore takes ~25-60 ms, a cold start longer; most of its cgroup work
// (CRIU moving the tree in) comes in its first half.
constexpr auto kRefillPause = std::chrono::milliseconds(30);

// Makes an empty group at `path` in every hierarchy thaw uses.
bool make_group(const std::string& path) {
  struct cgroup* g = cgroup_new_cgroup(path.c_str());
  if (!g) return false;
  bool ok = true;
  for (const auto& c : detail::used_controllers())
    ok = ok && cgroup_add_controller(g, c.c_str()) != nullptr;
  ok = ok && cgroup_create_cgroup(g, 1) == 0;  // 1: leave ownership alone
  cgroup_free(&g);
  return ok;
}

void remove_group(const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) rmdir(d.c_str());
}

// The spares of one parent and the thread that makes them.
class Spares {
 public:
  Spares(std::string parent, size_t count)
      : parent_(std::move(parent)), count_(count), thread_([this] { run(); }) {}

  ~Spares() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
    for (const auto& name : ready_) remove_group(directories(name));
  }

  void set_count(size_t count) {
    {
      std::lock_guard lock(mutex_);
      count_ = count;
    }
    wake_.notify_one();
  }

  bool take(const std::string& name) {
    std::string spare;
    {
      std::lock_guard lock(mutex_);
      if (ready_.empty()) return false;
      spare = ready_.front();
      ready_.pop_front();
      // Before the maker wakes: it waits a pause from this moment, not from
      // the take before (it made a group at once, beside this start's).
      last_take_ = std::chrono::steady_clock::now();
    }
    wake_.notify_one();
    const auto from = directories(spare), to = directories(name);
    for (size_t i = 0; i < from.size(); ++i) {
      if (::rename(from[i].c_str(), to[i].c_str()) == 0) continue;
      // Put back what moved and drop the spare: the caller makes the group.
      for (size_t j = 0; j < i; ++j) ::rename(to[j].c_str(), from[j].c_str());
      remove_group(from);
      return false;
    }
    std::lock_guard lock(mutex_);
    ++taken_;
    return true;
  }

  size_t ready() const {
    std::lock_guard lock(mutex_);
    return ready_.size();
  }
  uint64_t taken() const {
    std::lock_guard lock(mutex_);
    return taken_;
  }

 private:
  std::vector<std::string> directories(const std::string& name) const {
    return detail::group_directories(parent_ + "/" + name);
  }

  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || ready_.size() != count_; });
      if (stopping_) return;
      // Not while the start that took a spare is still making its instance:
      // making a group and moving a task into one take the same kernel locks.
      const auto due = last_take_ + kRefillPause;
      if (ready_.size() < count_ && std::chrono::steady_clock::now() < due) {
        wake_.wait_until(lock, due, [this] { return stopping_; });
        continue;
      }
      if (ready_.size() > count_) {
        const auto name = ready_.back();
        ready_.pop_back();
        lock.unlock();
        remove_group(directories(name));
        lock.lock();
        continue;
      }
      // The pid keeps apart the spares of a thawd that died and its successor's.
      const auto name = "spare." + std::to_string(getpid()) + "." + std::to_string(next_++);
      lock.unlock();
      const bool made = make_group(parent_ + "/" + name);
      lock.lock();
      if (made) {
        ready_.push_back(name);
      } else {
        // Not now (the parent is being removed, or out of groups): not in a loop.
        wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
      }
    }
  }

  const std::string parent_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> ready_;
  size_t count_;
  uint64_t next_ = 0, taken_ = 0;
  std::chrono::steady_clock::time_point last_take_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is set up
};

std::mutex registry_mutex;
std::map<std::string, std::unique_ptr<Spares>>& registry() {
  static std::map<std::string, std::unique_ptr<Spares>> spares;
  return spares;
}

// cgroup2 has no rename: spares would never be used there.
bool renames_work() {
  const auto& layout = detail::host_cgroup_layout();
  for (const auto& c : detail::used_controllers())
    if (layout.version_of(c) != 1) return false;
  return true;
}

}  // namespace

void keep_cgroup_spares(const std::string& parent, size_t count) {
  std::unique_ptr<Spares> gone;
  {
    std::lock_guard lock(registry_mutex);
    auto& r = registry();
    auto it = r.find(parent);
    if (count == 0) {
      if (it == r.end()) return;
      gone = std::move(it->second);  // removed below, outside the lock
      r.erase(it);
    } else if (it != r.end()) {
      it->second->set_count(count);
    } else if (renames_work()) {
      detail::init_libcgroup();
      r.emplace(parent, std::make_unique<Spares>(parent, count));
    }
  }
}

bool take_cgroup_spare(const std::string& parent, const std::string& name) {
  std::lock_guard lock(registry_mutex);
  auto it = registry().find(parent);
  return it != registry().end() && it->second->take(name);
}

size_t cgroup_spares_ready(const std::string& parent) {
  std::lock_guard lock(registry_mutex);
  auto it = registry().find(parent);
  return it == registry().end() ? 0 : it->second->ready();
}

uint64_t cgroup_spares_taken(const std::string& parent) {
  std::lock_guard lock(registry_mutex);
  auto it = registry().find(parent);
  return it == registry().end() ? 0 : it->second->taken();
}

}  // namespace thaw::sandbox
