#pragma once
// Egress for one host, as thawd configures it: the instances' subnet, the
// resolvers they may ask, host-local destinations the operator opens, and
// the policy of functions that state none. Nothing touches the host's
// firewall or links until the first instance with egress starts: a host
// whose functions never ask for it keeps its ruleset as it was. What a
// thawd killed earlier left in the subnet (its table, its links) is removed
// at construction all the same.

#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "sandbox/egress_firewall.hpp"
#include "sandbox/egress_links.hpp"
#include "sandbox/egress_policy.hpp"

namespace thaw::sandbox {

struct HostEgressOptions {
  std::optional<Ipv4Network> subnet;   // none: egress is off on this host
  size_t pool = 4;                     // links kept ready
  std::vector<uint32_t> dns;           // resolvers instances with egress may ask
  std::vector<EgressRule> host_allow;  // host-local destinations opened to instances
  EgressPolicy default_policy;         // for functions that state none ("none" by default)
};

class HostEgress {
 public:
  explicit HostEgress(HostEgressOptions options);
  ~HostEgress();
  HostEgress(const HostEgress&) = delete;
  HostEgress& operator=(const HostEgress&) = delete;

  bool enabled() const { return options_.subnet.has_value(); }
  const HostEgressOptions& options() const { return options_; }

  // A link into `netns_fd` under `policy` (not "none"). Throws Error, also
  // when egress is off.
  std::unique_ptr<EgressLink> attach(int netns_fd, const EgressPolicy& policy);

  // Sets up the firewall and the pool now (the first attach() would), and
  // waits until `n` links are ready: for benchmarks and tests.
  void wait_ready(size_t n);
  size_t live_links();

 private:
  void start();  // mutex_ held

  HostEgressOptions options_;
  std::mutex mutex_;
  std::unique_ptr<EgressFirewall> firewall_;
  std::unique_ptr<EgressLinks> links_;
};

// The resolvers named in a resolv.conf text that instances can reach (not
// loopback: an instance's loopback is its own).
std::vector<uint32_t> reachable_nameservers(const std::string& resolv_conf);

}  // namespace thaw::sandbox
