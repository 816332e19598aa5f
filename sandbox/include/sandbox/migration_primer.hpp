#pragma once
// Moving a task between cgroups takes the kernel's cgroup_threadgroup_rwsem
// for writing, and the first writer after a quiet spell waits for an RCU grace
// period before it gets it: 5-20 ms on this machine, every cold start and
// every restore, against 0.3 ms for a move made while the lock is still warm
// from another. (Hosts that mount cgroups with favordynmods never wait.)
//
// prime_task_migration() starts that wait in the background, with a move that
// changes nothing (a thread of thawd into the cgroup it is already in), so
// that the instance's own move a few milliseconds later finds the lock warm.
// While it waits, the kernel holds cgroup_mutex, which creating or removing a
// group also takes: InstanceCgroup calls it once the group exists, which is as
// early as it can start before the move (spawn's attach, CRIU's restore).
// That start is only a few ms ahead of the move, and the wait was still 2-11 ms
// in restores' logs; so after a start the primer keeps the lock warm for a
// while, with a no-op move every few ms (the lock goes cold one grace period
// after its last writer), and the next starts of a burst do not wait at all.
// While it is warm, forks and exits on the host take the lock's slower path
// (what favordynmods trades for good).

#include <chrono>
#include <cstdint>

namespace thaw::sandbox {

constexpr std::chrono::milliseconds kKeepMigrationWarm{10000};

// Never blocks. Starts a priming move unless one is under way, and keeps the
// lock warm until `keep_warm` from now (extending, never shortening, a window
// already open).
void prime_task_migration(std::chrono::milliseconds keep_warm = kKeepMigrationWarm);

// How many priming moves have completed in this process (for tests).
uint64_t task_migrations_primed();

}  // namespace thaw::sandbox
