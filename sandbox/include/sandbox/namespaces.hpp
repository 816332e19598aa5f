#pragma once
// User and network namespaces for instances. An instance's network namespace
// must be owned by its user namespace (CRIU needs both under thawd's control),
// so they are made as a pair: a short-lived holder process unshares both, the
// parent writes its id maps, the holder brings loopback up, and the pair lives
// on as two file descriptors. Making a pair costs a few hundred microseconds, so
// a pool keeps some ready; a pair is handed out once and never reused.
//
// A function with egress gets its pairs with their links made too (off the
// start's path: making one costs a start about a millisecond).
//
// Each function has a host id range of its own, and the host uid that its
// root inside maps to owns its user namespaces (namespace_owner.hpp says
// why), so pairs are made, and pooled, per mapping.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "sandbox/host_egress.hpp"
#include "thaw/unique_fd.hpp"

namespace thaw::sandbox {

constexpr uint32_t kIdRangeSize = 65536;  // ids per function, as /etc/subuid hands out
constexpr uint32_t kDefaultHostIdBase = 100000;

// Root inside the user namespace maps to `host_base` outside; `count` ids.
// That host uid (and gid) also owns the namespaces.
struct IdMapping {
  uint32_t host_base = kDefaultHostIdBase;
  uint32_t count = kIdRangeSize;
  uid_t to_host(uid_t inside) const { return host_base + inside; }
  uid_t owner() const { return host_base; }
  bool operator==(const IdMapping&) const = default;
};

struct UserNetNamespaces {
  UniqueFd user;
  UniqueFd net;
  // Made ahead for a function with egress (NamespacePool::acquire's
  // `egress`): its link in `net`, and the text of the policy it is for.
  std::unique_ptr<EgressLink> link;
  std::string link_policy;
};

// A function's egress, for the pairs made ahead of its starts.
struct PoolEgress {
  std::shared_ptr<HostEgress> host;
  EgressPolicy policy;
};

// Makes a fresh pair: user namespace with the mapping, network namespace owned
// by it with only loopback, up. Throws Error.
UserNetNamespaces make_user_net_namespaces(const IdMapping& mapping);

// "uid_map" text for a mapping: "0 100000 65536\n".
std::string id_map_text(const IdMapping& mapping);

// Keeps `target` pairs ready for each of the `mappings` mappings acquired
// most recently (the functions starting now); the pairs of a mapping that
// drops out of that set, or that nobody acquired for `idle_expiry`, are
// released.
class NamespacePool {
 public:
  explicit NamespacePool(size_t target, size_t mappings = 8,
                         std::chrono::milliseconds idle_expiry = std::chrono::minutes(10));
  ~NamespacePool();
  NamespacePool(const NamespacePool&) = delete;
  NamespacePool& operator=(const NamespacePool&) = delete;

  // A ready pair, or a freshly made one when none is (never blocks on the
  // refill thread). With `egress`, the pairs made for the mapping from now
  // on come with their link (a start then only takes it); a pair made for
  // another policy, or without a link, comes without one.
  UserNetNamespaces acquire(const IdMapping& mapping, const PoolEgress* egress = nullptr);
  size_t ready(const IdMapping& mapping) const;
  // Makes `mapping` wanted and blocks until `n` of its pairs are ready (for
  // benchmarks and tests).
  void wait_ready(const IdMapping& mapping, size_t n);

 private:
  struct Shelf {
    IdMapping mapping;
    std::deque<UserNetNamespaces> ready;
    std::chrono::steady_clock::time_point last_acquired;
    std::optional<PoolEgress> egress;  // of the last acquire
  };
  Shelf* find(const IdMapping& mapping);  // mutex_ held
  // Makes `mapping` the most recent; pairs of mappings that drop out go to
  // `released`. mutex_ held.
  Shelf& touch(const IdMapping& mapping, std::deque<UserNetNamespaces>& released);
  void refill_loop();

  // Moves the pairs of shelves idle past idle_expiry_ to `released`; returns
  // when the next one will be. mutex_ held.
  std::chrono::steady_clock::time_point expire(std::deque<UserNetNamespaces>& released);

  size_t target_;
  size_t mappings_;
  std::chrono::milliseconds idle_expiry_;
  mutable std::mutex mutex_;
  std::condition_variable wake_refill_;
  std::condition_variable filled_;
  std::deque<Shelf> shelves_;  // most recently acquired first
  bool stopping_ = false;
  std::thread refill_;
};

}  // namespace thaw::sandbox
