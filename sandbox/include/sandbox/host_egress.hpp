#pragma once
// Egress for one host, as thawd configures it: the instances' subnet, the
// resolvers they may ask, host-local destinations the operator opens, and
// the policy of functions that state none. Nothing touches the host's
// firewall until the first instance with egress starts: a host
// whose functions never ask for it keeps its ruleset as it was. What a
// thawd killed earlier left in the subnet (its table, its links) is removed
// at construction all the same.

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/egress_firewall.hpp"
#include "sandbox/egress_links.hpp"
#include "sandbox/egress_policy.hpp"

namespace thaw::sandbox {

struct HostEgressOptions {
  std::optional<Ipv4Network> subnet;   // none: egress is off on this host
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
  // Why egress cannot work on this host (no nftables in the kernel, no
  // CAP_NET_ADMIN), found at construction; "" when it can. thawd serves on
  // without it, and starts that need it fail with this reason.
  const std::string& unavailable() const { return unavailable_; }
  const HostEgressOptions& options() const { return options_; }

  // A link into `netns_fd` under `policy` (not "none"). Throws Error, also
  // when egress is off.
  std::unique_ptr<EgressLink> attach(int netns_fd, const EgressPolicy& policy);

 private:
  void start();  // mutex_ held

  HostEgressOptions options_;
  std::string unavailable_;
  std::mutex mutex_;
  std::unique_ptr<EgressFirewall> firewall_;
  std::unique_ptr<EgressLinks> links_;
};

// The resolvers named in a resolv.conf text that instances can reach (not
// loopback: an instance's loopback is its own).
std::vector<uint32_t> reachable_nameservers(const std::string& resolv_conf);

}  // namespace thaw::sandbox
