#include "sandbox/host_egress.hpp"

#include <sstream>

#include "thaw/error.hpp"

namespace thaw::sandbox {

namespace {

EgressFirewallOptions firewall_options(const HostEgressOptions& o) {
  EgressFirewallOptions f;
  f.subnet = *o.subnet;
  f.dns = o.dns;
  f.host = o.host_allow;
  f.link_prefix = kEgressLinkPrefix;
  return f;
}

}  // namespace

HostEgress::HostEgress(HostEgressOptions options) : options_(std::move(options)) {
  if (!enabled()) return;
  // Leftovers of a thawd killed with egress in use: the links go with a
  // set of links made and dropped, the table with a firewall made and
  // dropped.
  try {
    { const EgressLinks sweep(*options_.subnet); }
    { const EgressFirewall sweep(firewall_options(options_)); }
  } catch (const Error& e) {
    unavailable_ = e.what();
  }
}

HostEgress::~HostEgress() {
  // Links first: the firewall's table goes only once no instance uses it.
  links_.reset();
  firewall_.reset();
}

void HostEgress::start() {
  if (links_) return;
  if (!enabled())
    throw Error(
        "egress is off on this host (thawd --egress-subnet): the function's policy "
        "needs it");
  if (!unavailable_.empty()) throw Error("egress is unavailable on this host: " + unavailable_);
  firewall_ = std::make_unique<EgressFirewall>(firewall_options(options_));
  links_ = std::make_unique<EgressLinks>(*options_.subnet);
}

std::unique_ptr<EgressLink> HostEgress::attach(int netns_fd, const EgressPolicy& policy) {
  EgressLinks* links;
  uint32_t group;
  {
    const std::lock_guard lock(mutex_);
    start();
    links = links_.get();
    group = firewall_->group_for(policy);
  }
  return links->attach(netns_fd, group);
}

std::vector<uint32_t> reachable_nameservers(const std::string& resolv_conf) {
  std::vector<uint32_t> out;
  std::istringstream in(resolv_conf);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key, value;
    if (!(words >> key >> value) || key != "nameserver") continue;
    try {
      const auto a = parse_ipv4_address(value);
      if ((a >> 24) != 127) out.push_back(a);
    } catch (const Error&) {
      // IPv6 resolvers: instances have IPv4 egress only.
    }
  }
  return out;
}

}  // namespace thaw::sandbox
