#pragma once
// CRIU probes kernel features on every run (about 40 ms here) unless it can
// keep its cache file, /run/criu.kdat, which it does only when /run is a tmpfs.
// thawd therefore runs in a mount namespace of its own with a tmpfs on /run.
// A private namespace also means mounts thawd makes for instances vanish with
// it instead of lingering on the host after a crash.

#include <string>

namespace thaw::snapshots {

// Must be called before the process starts threads. Returns what it did
// ("kept the host's tmpfs /run", "private mount namespace, tmpfs on /run"),
// or throws Error.
std::string prepare_criu_environment();

}  // namespace thaw::snapshots
