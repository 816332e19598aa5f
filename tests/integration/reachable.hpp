#pragma once
// A checkout in a directory only root may enter (/root, a mktemp -d
// directory) cannot be reached from inside an instance's user namespace,
// whose root is an unprivileged host uid, and CRIU opens a restored
// instance's mount sources from there. As thawd does
// (snapshots/criu_environment.hpp), a test process takes a mount namespace of
// its own and binds the runtimes and the examples under /run/thaw, where
// every instance can reach them; the binds end with the process.

#include <string>

namespace thaw::itest {

// Call in SetUp before anything starts a thread (it unshares the mount
// namespace once per process). Returns the runtimes directory to use;
// example() answers from the exposed examples from then on.
std::string expose_checkout();

}  // namespace thaw::itest
