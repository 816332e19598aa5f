#pragma once
// CRIU probes kernel features on every run (about 40 ms here) unless it can
// keep its cache file, /run/criu.kdat, which it does only when /run is a tmpfs.
// thawd therefore runs in a mount namespace of its own with a tmpfs on /run.
// A private namespace also means mounts thawd makes for instances vanish with
// it instead of lingering on the host after a crash.

#include <cstdint>
#include <string>

namespace thaw::snapshots {

// Must be called before the process starts threads. Returns what it did
// ("kept the host's tmpfs /run", "private mount namespace, tmpfs on /run",
// plus ", cgroup yard PATH" when it mounted one),
// or throws Error.
std::string prepare_criu_environment();

// The cgroup yard prepare_criu_environment() mounted (every cgroup hierarchy,
// for CRIU's --cgroup-yard), or "" when there is none.
std::string cgroup_yard();

// Where a restore's CRIU keeps its log and pid file: /run/thaw/criu on that
// namespace's tmpfs, or "" when prepare_criu_environment() did not run.
// Creating and removing them on the state directory's disk file system cost
// a restore 0.5-2 ms here.
std::string criu_scratch_dir();

// Binds `dir` at /run/thaw/<name> inside that namespace and returns the new
// path. CRIU opens the sources of an instance's mounts from inside the
// instance's user namespace, whose root is an unprivileged host uid: every
// directory above them must be searchable by it, which a state directory
// under /root (mode 0700) is not. Under /run/thaw it always is.
std::string expose_directory(const std::string& dir, const std::string& name);

// Mounts a tmpfs of `bytes` at /run/thaw/snapshot-cache inside that
// namespace, for the snapshot store's memory-backed copies, and returns its
// path; throws Error. Its files use 2 MiB pages where the kernel allows
// (huge=within_size): CRIU reads a snapshot's pages from there as fast as
// from a disk file system's page cache, and from a tmpfs of 4 KiB pages ~50%
// slower (32 MiB: 7.6 against 5.0 ms here). It goes with the namespace, so a
// stopped thawd leaves no memory behind.
std::string mount_snapshot_cache(uint64_t bytes);

}  // namespace thaw::snapshots
