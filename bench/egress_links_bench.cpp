// What egress costs a start: attach() of a link into a fresh namespace (what
// a cold start or a restore adds), and for comparison what the rejected
// design paid, a link made ahead and moved into the namespace; then how
// fast the links of ended instances are gone and their addresses free, and
// how fast the namespace pool makes pairs with links for cold starts. Needs root; touches
// only its own subnet.
//
//   egress_links_bench [N] [SUBNET]     (default 200, 10.212.0.0/16)
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/egress_firewall.hpp"
#include "sandbox/egress_links.hpp"
#include "sandbox/host_egress.hpp"
#include "sandbox/namespaces.hpp"
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

  std::vector<double> attach_ms, move_ms;
  double removed_per_s = 0;
  {
    sandbox::EgressLinks links(subnet);
    std::vector<UniqueFd> spaces;
    std::vector<std::unique_ptr<sandbox::EgressLink>> attached;
    for (size_t i = 0; i < n; ++i) spaces.push_back(sandbox::make_network_namespace());
    for (size_t i = 0; i < n; ++i) {
      const auto t = Clock::now();
      attached.push_back(links.attach(spaces[i].get(), group));
      attach_ms.push_back(ms_since(t));
    }
    // The instances end: their namespaces go, and their links with them.
    const auto t = Clock::now();
    attached.clear();
    spaces.clear();
    while (links.live() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    removed_per_s = static_cast<double>(n) / (ms_since(t) / 1000.0);
  }
  // The alternative: a pair made ahead beside the host, its end moved in.
  {
    sandbox::Rtnetlink host;
    const auto park = sandbox::make_network_namespace();
    sandbox::Rtnetlink parked(park.get());
    for (size_t i = 0; i < std::min<size_t>(n, 20); ++i) {
      const auto target = sandbox::make_network_namespace();
      const auto name = "thwbench" + std::to_string(i);
      host.create_veth(name, "p" + std::to_string(i), park.get());
      const int index = parked.index_of("p" + std::to_string(i)).value();
      const auto t = Clock::now();
      parked.move_link(index, target.get(), "eth0");
      move_ms.push_back(ms_since(t));
      host.delete_link(host.index_of(name).value());
    }
  }
  // The namespace pool's refill for a function with egress: pairs made
  // with their links, as cold starts take them.
  double refill_per_s = 0;
  {
    sandbox::HostEgressOptions options;
    options.subnet = subnet;
    auto host = std::make_shared<sandbox::HostEgress>(options);
    const sandbox::PoolEgress egress{host, sandbox::parse_egress_policy("10.0.0.0/8:443")};
    const size_t pairs = std::min<size_t>(n, 64);
    sandbox::NamespacePool pool(pairs);
    const sandbox::IdMapping mapping;
    pool.acquire(mapping, &egress);  // makes the mapping wanted, with its egress
    const auto t = Clock::now();
    pool.wait_ready(mapping, pairs);
    refill_per_s = static_cast<double>(pairs) / (ms_since(t) / 1000.0);
  }
  double plain_refill_per_s = 0;
  {
    const size_t pairs = std::min<size_t>(n, 64);
    sandbox::NamespacePool pool(pairs);
    const sandbox::IdMapping mapping;
    pool.acquire(mapping);
    const auto t = Clock::now();
    pool.wait_ready(mapping, pairs);
    plain_refill_per_s = static_cast<double>(pairs) / (ms_since(t) / 1000.0);
  }
  print("attach (made in the namespace)", attach_ms);
  print("move a link made ahead (rejected)", move_ms);
  printf("%-34s %.0f links/s (%zu links)\n", "links gone, addresses free again", removed_per_s, n);
  printf("%-34s %.0f pairs/s\n", "namespace pool refill, with links", refill_per_s);
  printf("%-34s %.0f pairs/s\n", "namespace pool refill, without", plain_refill_per_s);
  return 0;
}
