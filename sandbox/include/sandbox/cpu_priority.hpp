#pragma once
// thawd serves first what is short and waited on: a warm invocation takes a
// millisecond, and a millisecond's wait behind other work doubles it. Work
// that takes tens of milliseconds or that no caller waits on (starting and
// restoring instances, snapshots, tearing instances down, asynchronous
// events, unpacking code) runs at a lower CPU priority while it lasts. It
// still gets every CPU cycle nothing else wants: on an idle host nothing
// changes, and under load it slows rather than stops (docs/hardening.md).

namespace thaw::sandbox {

// The nice value of background work: a weight of 110 against 1024 for the
// warm path, in the kernel's table.
inline constexpr int kBackgroundNice = 10;

// The calling thread, from now on, for a thread that only does such work.
// Processes it starts inherit the priority.
void lower_this_threads_priority();

// The calling thread while the scope lasts, then back to what it was.
class BackgroundPriority {
 public:
  BackgroundPriority();
  ~BackgroundPriority();
  BackgroundPriority(const BackgroundPriority&) = delete;
  BackgroundPriority& operator=(const BackgroundPriority&) = delete;

 private:
  int previous_;
  bool changed_;
};

}  // namespace thaw::sandbox
