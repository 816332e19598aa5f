#pragma once
// What a killed thawd of this state directory left behind, ended before
// anything starts: restores still running, instances still running, their
// directories and their cgroups. Another thawd's (another state directory,
// another cgroup parent) are never touched.

#include "invoker/instances/function_instance.hpp"

namespace thaw::invoker {

void reclaim_host(const HostEnvironment& host);

}  // namespace thaw::invoker
