#pragma once
// The host's side of egress, in one nftables table that thawd owns: source
// NAT for the instances' subnet, nothing new into an instance, nothing from
// one instance to another or to the host itself (thawd's ports, the host's
// other services), and per policy a chain of the destinations it allows.
//
// An instance's host-side link carries its policy as its device group
// (Rtnetlink::set_group), and the table dispatches on it: binding an instance
// to its policy is one netlink request, never a firewall change. A policy's
// chain is added the first time a policy is used.
//
// The table is named after the subnet, so a thawd killed with it in place
// finds it at its next start and replaces it; two thawds on one host need
// two subnets.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "sandbox/egress_policy.hpp"

struct nft_ctx;

namespace thaw::sandbox {

struct EgressFirewallOptions {
  Ipv4Network subnet;            // the instances' addresses
  std::vector<uint32_t> dns;     // resolvers every instance with egress may ask (port 53)
  std::vector<EgressRule> host;  // host-local destinations the operator opens to instances
  std::string link_prefix;       // host-side links are named <prefix>...
};

class EgressFirewall {
 public:
  explicit EgressFirewall(EgressFirewallOptions options);  // (re)creates the table
  ~EgressFirewall();                                       // and removes it
  EgressFirewall(const EgressFirewall&) = delete;
  EgressFirewall& operator=(const EgressFirewall&) = delete;

  // The device group that stands for `policy` (not "none"), its chain added
  // on first use. Throws Error.
  uint32_t group_for(const EgressPolicy& policy);

  const std::string& table() const { return table_; }
  static std::string table_name(const Ipv4Network& subnet);
  // The table's rules as nft prints them (for tests and `thaw` diagnostics).
  std::string listing();

 private:
  void run(const std::string& commands);

  EgressFirewallOptions options_;
  std::string table_;
  std::mutex mutex_;
  nft_ctx* nft_ = nullptr;
  std::map<std::string, uint32_t> groups_;  // policy text -> group
};

}  // namespace thaw::sandbox
