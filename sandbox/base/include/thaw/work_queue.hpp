#pragma once
// One thread that runs small jobs in the order they came, for work a request
// should not wait for (see ScratchMount::detach_host_view).

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace thaw {

class WorkQueue {
 public:
  WorkQueue();
  ~WorkQueue();  // runs what is queued, then stops
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // A job must not throw; one that does is dropped with its error.
  void post(std::function<void()> job);
  // Returns once every job posted before the call has run.
  void drain();

 private:
  void run();
  std::mutex mutex_;
  std::condition_variable wake_, drained_;
  std::deque<std::function<void()>> jobs_;
  bool busy_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace thaw
