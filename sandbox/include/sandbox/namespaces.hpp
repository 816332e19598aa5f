#pragma once
// User and network namespaces for instances. An instance's network namespace
// must be owned by its user namespace (CRIU needs both under thawd's control),
// so they are made as a pair: a short-lived holder process unshares both, the
// parent writes its id maps, the holder brings loopback up, and the pair lives
// on as two file descriptors. Making a pair costs a few hundred microseconds, so
// a pool keeps some ready; a pair is handed out once and never reused.

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

#include "sandbox/unique_fd.hpp"

namespace thaw::sandbox {

// Root inside the user namespace maps to `host_base` outside; `count` ids.
struct IdMapping {
  uint32_t host_base = 100000;
  uint32_t count = 65536;
  uid_t to_host(uid_t inside) const { return host_base + inside; }
};

struct UserNetNamespaces {
  UniqueFd user;
  UniqueFd net;
};

// Makes a fresh pair: user namespace with the mapping, network namespace owned
// by it with only loopback, up. Throws Error.
UserNetNamespaces make_user_net_namespaces(const IdMapping& mapping);

// "uid_map" text for a mapping: "0 100000 65536\n".
std::string id_map_text(const IdMapping& mapping);

class NamespacePool {
 public:
  NamespacePool(IdMapping mapping, size_t target);
  ~NamespacePool();
  NamespacePool(const NamespacePool&) = delete;
  NamespacePool& operator=(const NamespacePool&) = delete;

  // A ready pair, or a freshly made one when the pool is empty (never blocks on
  // the refill thread).
  UserNetNamespaces acquire();
  const IdMapping& mapping() const { return mapping_; }
  size_t ready() const;
  // Blocks until `n` pairs are ready (for benchmarks and tests).
  void wait_ready(size_t n);

 private:
  void refill_loop();

  IdMapping mapping_;
  size_t target_;
  mutable std::mutex mutex_;
  std::condition_variable wake_refill_;
  std::condition_variable filled_;
  std::deque<UserNetNamespaces> ready_;
  bool stopping_ = false;
  std::thread refill_;
};

}  // namespace thaw::sandbox
