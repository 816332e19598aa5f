#pragma once
// The host uids and gids thawd hands to functions: `ranges` ranges of
// sandbox::kIdRangeSize ids from `first` on, one per function (the registry
// records which), so that no two functions share a host uid: per-user kernel
// limits (pipe buffers, epoll watches, locked memory) and the counters
// charged to their namespaces' owner (inotify, user namespaces, message
// queues, pending signals) are each function's own. docs/tenants.md says more.
//
// A range is given out again only after every other free one was, so a
// deleted function's last processes have long ended before another function
// gets its ids.

#include <cstdint>
#include <optional>
#include <set>
#include <string>

namespace thaw::invoker {

struct IdPoolConfig {
  uint32_t first = 1u << 20;  // above the ranges adduser hands out to the first users
  uint32_t ranges = 4096;
};

// Throws Error naming the flag when the pool is empty, starts below 65536
// (the host's own users) or runs past the last valid id.
void validate(const IdPoolConfig& pool);

// Throws Error when a uid or gid of the pool belongs to a user or group of
// the host (/etc/passwd, /etc/group) or to a range handed out in
// /etc/subuid or /etc/subgid. `etc` is the directory those files are in.
void check_pool_is_unused(const IdPoolConfig& pool, const std::string& etc = "/etc");

// Whether `base` is the first id of one of the pool's ranges.
bool is_range_base(const IdPoolConfig& pool, uint32_t base);

// The next range to hand out: the first free one from `cursor` on (wrapping
// around), as its first id and its index; nullopt when all are taken.
struct PickedRange {
  uint32_t base;
  uint32_t index;
};
std::optional<PickedRange> pick_range(const IdPoolConfig& pool, uint32_t cursor,
                                      const std::set<uint32_t>& bases_in_use);

}  // namespace thaw::invoker
