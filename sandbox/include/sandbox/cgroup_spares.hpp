#pragma once
// Empty instance cgroups made ahead of need. Every start, cold or restore,
// needs a group of its own, and making one costs 0.7-1.5 ms here (libcgroup
// walks and creates the path in every hierarchy, the kernel sets up each
// controller's state), on the request's path. Renaming a spare into place and
// writing its limits costs ~0.2 ms; a background thread makes the next spare.
//
// Only where every hierarchy thaw uses is cgroup v1: cgroup2 cannot rename a
// group, so there starts make their group as before.
#include <cstddef>
#include <cstdint>
#include <string>

namespace thaw::sandbox {

// From now on keeps `count` spare groups ready under `parent`; 0 stops and
// removes the spares there are. Spares are named "spare.PID.N", which no
// instance can be called (function names have no dots); a crashed process's
// spares are empty groups, which reap_orphan_cgroups removes.
void keep_cgroup_spares(const std::string& parent, size_t count);

// Moves a ready spare of `parent` to `parent`/`name` in every hierarchy;
// false when none is ready or a rename failed (the caller makes the group).
bool take_cgroup_spare(const std::string& parent, const std::string& name);

// Spares of `parent` ready now, and how many were taken so far (for tests).
size_t cgroup_spares_ready(const std::string& parent);
uint64_t cgroup_spares_taken(const std::string& parent);

}  // namespace thaw::sandbox
