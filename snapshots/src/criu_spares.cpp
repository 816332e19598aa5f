#include "snapshots/criu_spares.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "thaw/error.hpp"

namespace thaw::snapshots {

namespace {

// Work directories of spares whose thawd is gone (killed before it could end
// them; the spares themselves exit when their socket closes).
void remove_orphans(const std::string& work_root) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(work_root, ec)) {
    const auto name = e.path().filename().string();
    if (name.rfind("spare-", 0) != 0) continue;
    const pid_t owner = static_cast<pid_t>(std::atol(name.c_str() + 6));
    if (owner > 0 && kill(owner, 0) != 0 && errno == ESRCH) std::filesystem::remove_all(e, ec);
  }
}

}  // namespace

CriuSpares::CriuSpares(std::string criu, std::string work_root, size_t limit,
                       std::function<void(const std::string&)> log)
    : criu_(std::move(criu)),
      work_root_(std::move(work_root)),
      limit_(limit),
      log_(std::move(log)) {
  remove_orphans(work_root_);
  thread_ = std::thread([this] { worker(); });
}

CriuSpares::~CriuSpares() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  spares_.clear();
}

std::unique_ptr<CriuSpare> CriuSpares::take(const std::string& images_dir) {
  std::unique_ptr<CriuSpare> found;
  {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(spares_.begin(), spares_.end(),
                           [&](const auto& s) { return s->images_dir() == images_dir; });
    if (it == spares_.end()) return nullptr;
    found = std::move(*it);
    spares_.erase(it);
  }
  return found;  // RestoreRun checks it is still usable
}

void CriuSpares::prepare(const std::string& images_dir, uid_t owner,
                         std::vector<std::string> options) {
  {
    std::lock_guard lock(mutex_);
    const auto same = [&](const Wanted& w) { return w.images_dir == images_dir; };
    if (stopping_ || std::any_of(wanted_.begin(), wanted_.end(), same)) return;
    wanted_.push_back({images_dir, owner, std::move(options)});
  }
  wake_.notify_one();
}

void CriuSpares::drop(const std::string& dir) {
  if (dir.empty()) return;
  const auto prefix = dir.back() == '/' ? dir : dir + "/";
  const auto under = [&](const std::string& d) { return d.rfind(prefix, 0) == 0; };
  {
    std::lock_guard lock(mutex_);
    wanted_.erase(std::remove_if(wanted_.begin(), wanted_.end(),
                                 [&](const Wanted& w) { return under(w.images_dir); }),
                  wanted_.end());
    if (wanted_.empty() && !busy_) idle_.notify_all();
  }
  end_where([&](const CriuSpare& s) { return under(s.images_dir()); });
}

void CriuSpares::prune() {
  end_where([](const CriuSpare& s) { return !s.usable(); });
}

void CriuSpares::end_where(const std::function<bool(const CriuSpare&)>& doomed_if) {
  std::deque<std::unique_ptr<CriuSpare>> doomed;
  {
    std::lock_guard lock(mutex_);
    for (auto it = spares_.begin(); it != spares_.end();) {
      if (doomed_if(**it)) {
        doomed.push_back(std::move(*it));
        it = spares_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Ended here, outside the lock: each waits for its criu to exit.
}

size_t CriuSpares::waiting() const {
  std::lock_guard lock(mutex_);
  return spares_.size();
}

void CriuSpares::settle() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return stopping_ || (wanted_.empty() && !busy_); });
}

void CriuSpares::worker() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !wanted_.empty(); });
    if (stopping_) break;
    const auto dir = wanted_.front().images_dir;
    const auto owner = wanted_.front().owner;
    const auto options = wanted_.front().options;
    wanted_.pop_front();
    const bool have = std::any_of(spares_.begin(), spares_.end(),
                                  [&](const auto& s) { return s->images_dir() == dir; });
    if (have) {
      if (wanted_.empty()) idle_.notify_all();
      continue;
    }
    busy_ = true;
    // Unique among thawds sharing the host's /run.
    const auto work =
        work_root_ + "/spare-" + std::to_string(getpid()) + "-" + std::to_string(next_id_++);
    lock.unlock();
    std::unique_ptr<CriuSpare> spare;
    try {
      spare = std::make_unique<CriuSpare>(criu_, dir, work, owner, options);
      // A spare waits beside requests (and finishes starting): at the lowest priority
      // it yields to them (to tasks of the same CPU cgroup: thawd's
      // instances are, where thawd runs in the root of the cpu hierarchy, as
      // here). A restore that takes it gives it the normal one (RestoreRun).
      // Only criu: this thread shares a lock with the requests' path.
      setpriority(PRIO_PROCESS, static_cast<id_t>(spare->pid()), kSpareNice);
    } catch (const Error& e) {
      // No spare: the next restore of dir starts criu itself, as without spares.
      if (log_) log_(std::string("no criu started ahead for ") + dir + ": " + e.what());
    }
    std::unique_ptr<CriuSpare> evicted;  // ended below, outside the lock
    lock.lock();
    busy_ = false;
    if (spare && !stopping_) {
      spares_.push_back(std::move(spare));
      if (spares_.size() > limit_) {
        evicted = std::move(spares_.front());
        spares_.pop_front();
      }
    }
    if (wanted_.empty()) idle_.notify_all();
    if (evicted || spare) {
      lock.unlock();
      evicted.reset();
      spare.reset();
      lock.lock();
    }
  }
  idle_.notify_all();
}

}  // namespace thaw::snapshots
