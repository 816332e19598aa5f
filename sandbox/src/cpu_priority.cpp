#include "sandbox/cpu_priority.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>

namespace thaw::sandbox {

namespace {

// On Linux a nice value belongs to a thread: PRIO_PROCESS with a thread id
// changes that thread alone.
int current_nice() {
  errno = 0;
  const int n = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  return errno == 0 ? n : 0;
}

bool set_nice(int nice) {
  return setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice) == 0;
}

}  // namespace

void lower_this_threads_priority() {
  // Failing leaves the thread at normal priority: slower warm invocations
  // under load, nothing worse, so there is nothing to report.
  if (current_nice() < kBackgroundNice) set_nice(kBackgroundNice);
}

BackgroundPriority::BackgroundPriority() : previous_(current_nice()), changed_(false) {
  if (previous_ < kBackgroundNice) changed_ = set_nice(kBackgroundNice);
}

BackgroundPriority::~BackgroundPriority() {
  // Raising it back needs CAP_SYS_NICE, which thawd (root) has.
  if (changed_) set_nice(previous_);
}

}  // namespace thaw::sandbox
