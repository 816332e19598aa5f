#pragma once
// Links from instances to the host: a veth pair per instance, routed, with a
// /31 of the egress subnet (the host's end the even address, the instance's
// the odd one, its default gateway). attach() makes the pair with its
// instance end already in the instance's network namespace (a fresh one
// from the namespace pool at a cold start, the one CRIU made at a restore),
// named eth0 there, then addresses and routes it: about 0.6 ms. Links are
// not made ahead and moved in: moving a link between namespaces waits out
// an RCU grace period, 15-27 ms here (bench/egress_links_bench). Removing a
// link waits the same way, holding the kernel's lock that every attach()
// needs: so an ended instance's link is left to go with its namespace,
// which the kernel tears down in batches off everyone's path, and a worker
// frees its address once it is gone (or, past a grace, removes what is
// left, all in one request). Snapshots never hold a link: CRIU dumps no
// network.
//
// Host-side links are named <prefix><8 hex digits of the host end's address>,
// so what a thawd killed earlier left in its subnet is known by name and
// removed at the next start.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/egress_policy.hpp"
#include "sandbox/netlink.hpp"
#include "thaw/unique_fd.hpp"

namespace thaw::sandbox {

constexpr const char* kEgressLinkPrefix = "thw";

class EgressLinks;

// One instance's link; removed (both ends) when this goes.
class EgressLink {
 public:
  ~EgressLink();
  EgressLink(const EgressLink&) = delete;
  EgressLink& operator=(const EgressLink&) = delete;

  uint32_t instance_address() const { return host_address_ + 1; }
  uint32_t host_address() const { return host_address_; }
  const std::string& host_name() const { return host_name_; }
  // Bytes the instance sent and received over the link so far.
  LinkCounters instance_counters();

 private:
  friend class EgressLinks;
  struct Pool;
  EgressLink(std::shared_ptr<Pool> pool, uint32_t host_address, std::string host_name,
             int host_index)
      : pool_(std::move(pool)),
        host_address_(host_address),
        host_name_(std::move(host_name)),
        host_index_(host_index) {}
  std::shared_ptr<Pool> pool_;
  uint32_t host_address_;
  std::string host_name_;
  int host_index_;
};

class EgressLinks {
 public:
  // Removes links named as ours in `subnet` (left by a thawd killed
  // earlier). Throws Error.
  explicit EgressLinks(Ipv4Network subnet);
  ~EgressLinks();
  EgressLinks(const EgressLinks&) = delete;
  EgressLinks& operator=(const EgressLinks&) = delete;

  // A link into `netns_fd` as eth0, up, addressed, routed, its host end in
  // device group `group`.
  std::unique_ptr<EgressLink> attach(int netns_fd, uint32_t group);

  // Addresses in use: links attached, or of ended instances not yet gone.
  size_t live() const;

  // The host-side name of the link whose host end has `host_address`.
  static std::string host_link_name(uint32_t host_address);

 private:
  std::shared_ptr<EgressLink::Pool> pool_;
  std::thread worker_;
};

}  // namespace thaw::sandbox
