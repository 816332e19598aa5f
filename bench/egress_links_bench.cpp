// What egress costs a start, and how fast the pool refills: attach() of a
// ready link into a fresh namespace (what a cold start or a restore adds),
// attach() with the pool empty (a link made on the spot), and links made per
// second by the pool's worker. Needs root; touches only its own subnet.
//
//   egress_links_bench [N] [SUBNET]     (default 200, 10.212.0.0/16)
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "sandbox/egress_firewall.hpp"
#include "sandbox/egress_links.hpp"
#include "sandbox/netlink.hpp"
#include "stats.hpp"

using namespace thaw;
using bench::Clock;
using bench::ms_since;
using bench::percentile;

namespace {

void print(const char* what, const std::vector<double>& ms) {
  printf("%-34s n=%zu p50=%.3f ms p99=%.3f ms\n", what, ms.size(), percentile(ms, 50),
         percentile(ms, 99));
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::stoul(argv[1]) : 200;
  const auto subnet = sandbox::parse_ipv4_network(argc > 2 ? argv[2] : "10.212.0.0/16");
  if (geteuid() != 0) {
    fprintf(stderr, "egress_links_bench: needs root\n");
    return 2;
  }
  sandbox::EgressFirewallOptions o;
  o.subnet = subnet;
  o.link_prefix = sandbox::kEgressLinkPrefix;
  sandbox::EgressFirewall firewall(o);
  const auto group = firewall.group_for(sandbox::parse_egress_policy("10.0.0.0/8:443"));

  // Ready links: what a start with egress pays when the pool keeps up.
  std::vector<double> ready_ms, empty_ms;
  double refill_per_s = 0;
  {
    sandbox::EgressLinks links(subnet, n);
    const auto fill_started = Clock::now();
    links.wait_ready(n);
    refill_per_s = static_cast<double>(n) / (ms_since(fill_started) / 1000.0);
    std::vector<UniqueFd> spaces;
    std::vector<std::unique_ptr<sandbox::EgressLink>> attached;
    for (size_t i = 0; i < n; ++i) spaces.push_back(sandbox::make_network_namespace());
    for (size_t i = 0; i < n; ++i) {
      const auto t = Clock::now();
      attached.push_back(links.attach(spaces[i].get(), group));
      ready_ms.push_back(ms_since(t));
    }
  }
  // An empty pool: each start makes its own link.
  {
    sandbox::EgressLinks links(subnet, 0);
    std::vector<UniqueFd> spaces;
    std::vector<std::unique_ptr<sandbox::EgressLink>> attached;
    for (size_t i = 0; i < n; ++i) spaces.push_back(sandbox::make_network_namespace());
    for (size_t i = 0; i < n; ++i) {
      const auto t = Clock::now();
      attached.push_back(links.attach(spaces[i].get(), group));
      empty_ms.push_back(ms_since(t));
    }
  }
  print("attach, link ready in the pool", ready_ms);
  print("attach, pool empty (made on the spot)", empty_ms);
  printf("%-34s %.0f links/s (%zu links)\n", "pool refill", refill_per_s, n);
  return 0;
}
