#pragma once
// Criu processes started ahead of restores (see CriuSpare), one per images
// directory that was restored from lately. A restore takes the spare of its
// directory if there is one, and a new one is started in the background once
// the restore is done, so that the next restore of a snapshot in demand
// starts without paying for criu's start.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "snapshots/criu.hpp"

namespace thaw::snapshots {

// The nice value a spare waits at (the lowest priority), beside requests;
// a restore that takes it gives it the normal one.
constexpr int kSpareNice = 19;

class CriuSpares {
 public:
  // Spares live in work_root/spare-PID-N; at most `limit` at a time (the
  // least recently asked for goes first). `log` hears why a spare could not
  // be started. What a thawd killed before it could end its spares left in
  // work_root is removed here.
  CriuSpares(std::string criu, std::string work_root, size_t limit = 4,
             std::function<void(const std::string&)> log = {});
  ~CriuSpares();  // ends every spare
  CriuSpares(const CriuSpares&) = delete;
  CriuSpares& operator=(const CriuSpares&) = delete;

  // The spare for images_dir if one was started, else null (whether it is
  // still usable, RestoreRun(CriuSpare&, ...) checks).
  std::unique_ptr<CriuSpare> take(const std::string& images_dir);
  // Starts a spare for images_dir, acting as `owner` (the owner of the
  // namespaces its restores make), in the background unless one waits.
  // `options`: what criu must know before it reads the images (CriuSpare).
  void prepare(const std::string& images_dir, uid_t owner, std::vector<std::string> options = {});
  // Ends the spares of directories under `dir` (a snapshot being removed).
  void drop(const std::string& dir);
  // Ends the spares whose directory is gone or was replaced.
  void prune();
  // How many wait (for tests).
  size_t waiting() const;
  // Blocks until every prepare() asked so far has been handled (for tests).
  void settle();

 private:
  void worker();
  // Ends the spares `doomed_if` picks.
  void end_where(const std::function<bool(const CriuSpare&)>& doomed_if);

  const std::string criu_, work_root_;
  const size_t limit_;
  const std::function<void(const std::string&)> log_;
  mutable std::mutex mutex_;
  std::condition_variable wake_, idle_;
  std::deque<std::unique_ptr<CriuSpare>> spares_;  // least recently asked for first
  struct Wanted {
    std::string images_dir;
    uid_t owner;
    std::vector<std::string> options;
  };
  std::deque<Wanted> wanted_;
  bool busy_ = false;
  bool stopping_ = false;
  unsigned next_id_ = 0;
  std::thread thread_;
};

}  // namespace thaw::snapshots
