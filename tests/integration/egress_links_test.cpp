// Egress at the sandbox's level: links from the pool, the host's firewall,
// and an outside world of the test's own, with real kernel networking.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "outside_network.hpp"
#include "sandbox/egress_firewall.hpp"
#include "sandbox/egress_links.hpp"
#include "sandbox/host_egress.hpp"
#include "sandbox/namespaces.hpp"
#include "sandbox/netlink.hpp"

namespace thaw::sandbox {
namespace {

using itest::connect_and_read;
using itest::OutsideNetwork;
using itest::send_and_read;

// True once `count` says 0, within 10 s.
template <typename F>
bool eventually_zero(F count) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (count() != 0 && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return count() == 0;
}

class EgressLinksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, links, nftables)";
    subnet_ = itest::test_subnet(216);
    outside_ = std::make_unique<OutsideNetwork>(itest::test_subnet(214), 2);
    outside_->serve_greeting(0, 8080, "hello from 0:8080");
    outside_->serve_greeting(0, 9090, "hello from 0:9090");
    outside_->serve_greeting(1, 8080, "hello from 1:8080");
    EgressFirewallOptions o;
    o.subnet = subnet_;
    o.link_prefix = kEgressLinkPrefix;
    firewall_ = std::make_unique<EgressFirewall>(o);
    links_ = std::make_unique<EgressLinks>(subnet_);
  }
  void TearDown() override {
    links_.reset();
    firewall_.reset();
    outside_.reset();
  }
  std::string reach(int netns, int host, uint16_t port) {
    std::string error;
    auto got = connect_and_read(netns, outside_->host(host), port, &error);
    return error.empty() ? got : "refused: " + error;
  }
  // Links of ours that exist on the host.
  size_t host_links() {
    size_t n = 0;
    for (const auto& l : Rtnetlink().links())
      if (l.name.rfind(kEgressLinkPrefix, 0) == 0 &&
          subnet_.contains(static_cast<uint32_t>(strtoul(l.name.c_str() + 3, nullptr, 16))))
        ++n;
    return n;
  }

  Ipv4Network subnet_;
  std::unique_ptr<OutsideNetwork> outside_;
  std::unique_ptr<EgressFirewall> firewall_;
  std::unique_ptr<EgressLinks> links_;
};

TEST_F(EgressLinksTest, AllowedDestinationIsReachedAndOthersAreNot) {
  const auto policy = parse_egress_policy(outside_->host_text(0) + "/32:8080");
  const auto ns = make_network_namespace();
  auto link = links_->attach(ns.get(), firewall_->group_for(policy));
  EXPECT_EQ(reach(ns.get(), 0, 8080), "hello from 0:8080");
  // Refused by the host's firewall at once (a reset), not left to time out.
  EXPECT_EQ(reach(ns.get(), 0, 9090), "refused: Connection refused");  // another port
  EXPECT_EQ(reach(ns.get(), 1, 8080), "refused: Connection refused");  // another host
}

TEST_F(EgressLinksTest, WholeNetworkRuleAllowsEveryPort) {
  const auto policy = parse_egress_policy(itest::test_subnet(214).text());
  const auto ns = make_network_namespace();
  auto link = links_->attach(ns.get(), firewall_->group_for(policy));
  EXPECT_EQ(reach(ns.get(), 0, 9090), "hello from 0:9090");
  EXPECT_EQ(reach(ns.get(), 1, 8080), "hello from 1:8080");
}

TEST_F(EgressLinksTest, WithoutALinkNothingIsReached) {
  const auto ns = make_network_namespace();
  std::string error;
  connect_and_read(ns.get(), outside_->host(0), 8080, &error);
  EXPECT_EQ(error, "Network is unreachable");
}

TEST_F(EgressLinksTest, TheHostAndOtherInstancesAreRefused) {
  const auto policy = parse_egress_policy("0.0.0.0/0");
  const auto a = make_network_namespace(), b = make_network_namespace();
  auto la = links_->attach(a.get(), firewall_->group_for(policy));
  auto lb = links_->attach(b.get(), firewall_->group_for(policy));
  // A server in b, on its own address: a may not reach it.
  int raw;
  {
    InNetworkNamespace in(b.get());
    raw = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  const UniqueFd server(raw);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(7070);
  addr.sin_addr.s_addr = htonl(lb->instance_address());
  ASSERT_EQ(bind(server.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(server.get(), 4), 0);
  std::string error;
  connect_and_read(a.get(), lb->instance_address(), 7070, &error, 700);
  EXPECT_EQ(error, "Connection refused") << "one instance reached another";
  // A server of the host's, on its end of the test's link: refused although
  // the policy allows every address.
  int host_raw = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const UniqueFd host_server(host_raw);
  addr.sin_addr.s_addr = htonl(itest::test_subnet(214).base + 1);
  const int on = 1;
  setsockopt(host_raw, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  ASSERT_EQ(bind(host_raw, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(host_raw, 4), 0);
  connect_and_read(a.get(), itest::test_subnet(214).base + 1, 7070, &error, 700);
  EXPECT_EQ(error, "Connection refused") << "an instance reached a host service";
  connect_and_read(a.get(), la->host_address(), 7070, &error, 700);
  EXPECT_EQ(error, "Connection refused") << "an instance reached its gateway's address";
  // The outside is still reachable, so the refusals above were the firewall's.
  EXPECT_EQ(reach(a.get(), 1, 8080), "hello from 1:8080");
}

TEST_F(EgressLinksTest, NewConnectionsPerSecondAreLimitedPerInstance) {
  auto policy = parse_egress_policy(outside_->host_text(0) + "/32");
  policy.connections_per_second = 5;
  const auto a = make_network_namespace(), b = make_network_namespace();
  auto la = links_->attach(a.get(), firewall_->group_for(policy));
  auto lb = links_->attach(b.get(), firewall_->group_for(policy));
  int reached = 0, refused = 0;
  for (int i = 0; i < 30; ++i) {
    const auto got = reach(a.get(), 0, 8080);
    if (got == "hello from 0:8080") ++reached;
    if (got == "refused: Connection refused") ++refused;
  }
  // 5 a second with nftables' default burst of 5: the rest at once refused.
  EXPECT_GE(reached, 5);
  EXPECT_LE(reached, 12);
  EXPECT_EQ(reached + refused, 30);
  // The limit is the instance's own: another instance still connects.
  EXPECT_EQ(reach(b.get(), 0, 8080), "hello from 0:8080");
}

TEST_F(EgressLinksTest, BandwidthIsLimitedPerInstanceInBothDirections) {
  constexpr size_t kBytes = 4 << 20;
  outside_->serve_greeting(0, 8181, std::string(kBytes, 'd'));
  outside_->serve_sink(0, 8282);
  auto limited = parse_egress_policy(outside_->host_text(0) + "/32");
  limited.bandwidth_mbps = 8;  // 1 MB a second and a second of burst: 4 MB take about 3 s
  const auto free = parse_egress_policy(outside_->host_text(0) + "/32");
  const auto a = make_network_namespace(), b = make_network_namespace();
  auto la = links_->attach(a.get(), firewall_->group_for(limited));
  auto lb = links_->attach(b.get(), firewall_->group_for(free));
  const auto timed = [](auto&& transfer) {
    const auto started = std::chrono::steady_clock::now();
    const auto got = transfer();
    return std::pair{
        got, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()};
  };
  std::string error;
  const auto [down_limited, down_limited_s] = timed(
      [&] { return connect_and_read(a.get(), outside_->host(0), 8181, &error, 10000).size(); });
  const auto [down_free, down_free_s] = timed(
      [&] { return connect_and_read(b.get(), outside_->host(0), 8181, &error, 10000).size(); });
  EXPECT_EQ(down_limited, kBytes);
  EXPECT_EQ(down_free, kBytes);
  // Bounds wide apart: the limit is what separates them, not the machine.
  EXPECT_GT(down_limited_s, 1.5);
  EXPECT_LT(down_free_s, 1.0);
  const auto [up_limited, up_limited_s] =
      timed([&] { return send_and_read(a.get(), outside_->host(0), 8282, kBytes); });
  const auto [up_free, up_free_s] =
      timed([&] { return send_and_read(b.get(), outside_->host(0), 8282, kBytes); });
  EXPECT_EQ(up_limited, std::to_string(kBytes));
  EXPECT_EQ(up_free, std::to_string(kBytes));
  EXPECT_GT(up_limited_s, 1.5);
  EXPECT_LT(up_free_s, 1.0);
}

TEST_F(EgressLinksTest, CountersSeeTheInstancesBytes) {
  const auto ns = make_network_namespace();
  auto link = links_->attach(ns.get(), firewall_->group_for(parse_egress_policy("0.0.0.0/0")));
  const auto before = link->instance_counters();
  EXPECT_EQ(reach(ns.get(), 0, 8080), "hello from 0:8080");
  const auto after = link->instance_counters();
  EXPECT_GT(after.rx_bytes - before.rx_bytes, 17u);  // the greeting, and headers
  EXPECT_GT(after.tx_bytes, before.tx_bytes);
}

TEST_F(EgressLinksTest, LinksAreGoneWhenTheirInstancesAreAndAtTheEnd) {
  {
    std::vector<UniqueFd> spaces;
    std::vector<std::unique_ptr<EgressLink>> attached;
    const auto group = firewall_->group_for(parse_egress_policy("0.0.0.0/0"));
    for (int i = 0; i < 20; ++i) {
      spaces.push_back(make_network_namespace());
      attached.push_back(links_->attach(spaces.back().get(), group));
    }
    EXPECT_EQ(host_links(), 20u);
    EXPECT_EQ(links_->live(), 20u);
  }
  // Removed off the caller's path, by the worker; whatever is left, at the end.
  EXPECT_TRUE(eventually_zero([&] { return links_->live(); }));
  links_.reset();
  EXPECT_EQ(host_links(), 0u);
}

TEST_F(EgressLinksTest, ALinkWhoseNamespaceLingersIsRemovedAfterAGrace) {
  const auto ns = make_network_namespace();  // held open: the link cannot go with it
  auto link = links_->attach(ns.get(), firewall_->group_for(parse_egress_policy("0.0.0.0/0")));
  link.reset();
  EXPECT_EQ(host_links(), 1u);
  EXPECT_TRUE(eventually_zero([&] { return host_links(); })) << "never removed";
  EXPECT_TRUE(eventually_zero([&] { return links_->live(); }));
}

TEST_F(EgressLinksTest, NamespacePoolMakesPairsWithTheirLinksAhead) {
  links_.reset();
  firewall_.reset();  // the host's egress below makes its own
  HostEgressOptions o;
  o.subnet = subnet_;
  auto host = std::make_shared<HostEgress>(o);
  NamespacePool pool(2);
  const IdMapping mapping;
  const PoolEgress egress{host, parse_egress_policy(outside_->host_text(0) + "/32")};
  pool.acquire(mapping, &egress);  // none ready yet: made on the spot, without a link
  pool.wait_ready(mapping, 2);
  auto ns = pool.acquire(mapping, &egress);
  ASSERT_TRUE(ns.link) << "the pair came without its link";
  EXPECT_EQ(ns.link_policy, egress.policy.text());
  EXPECT_EQ(reach(ns.net.get(), 0, 8080), "hello from 0:8080");
  // The policy changed: what was made for the old one is not handed out.
  const PoolEgress other{host, parse_egress_policy(outside_->host_text(1) + "/32")};
  EXPECT_FALSE(pool.acquire(mapping, &other).link);
  pool.wait_ready(mapping, 2);
  auto again = pool.acquire(mapping, &other);
  ASSERT_TRUE(again.link);
  EXPECT_EQ(reach(again.net.get(), 1, 8080), "hello from 1:8080");
  EXPECT_EQ(reach(again.net.get(), 0, 8080), "refused: Connection refused");
}

TEST_F(EgressLinksTest, LeftoversOfAKilledThawdAreRemovedAtStart) {
  links_.reset();
  Rtnetlink host;
  const auto park = make_network_namespace();
  host.create_veth(EgressLinks::host_link_name(subnet_.base + 8), "left", park.get());
  EXPECT_EQ(host_links(), 1u);
  links_ = std::make_unique<EgressLinks>(subnet_);
  EXPECT_EQ(host_links(), 0u);
  // And a firewall made again replaces the table instead of failing.
  EgressFirewallOptions o;
  o.subnet = subnet_;
  o.link_prefix = kEgressLinkPrefix;
  firewall_.reset();
  auto first = std::make_unique<EgressFirewall>(o);
  first->group_for(parse_egress_policy("10.0.0.0/8"));
  EgressFirewall second(o);
  EXPECT_EQ(second.listing().find("policy_1"), std::string::npos);
  // first goes last and finds its table gone already: not an error.
}

}  // namespace
}  // namespace thaw::sandbox
