#pragma once
// Starts thaw-sandbox-shim for one ChildPlan (see shim_main.cpp).

#include <sys/types.h>

#include "child.hpp"

namespace thaw::sandbox::detail {

// Starts the helper with the plan's descriptors and the plan itself; returns
// its pid (a child of the caller, to be reaped by it). Throws on failure.
pid_t launch_shim(const ChildPlan& plan);

}  // namespace thaw::sandbox::detail
