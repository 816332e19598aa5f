#include "sandbox/egress_policy.hpp"

#include <gtest/gtest.h>

#include "thaw/error.hpp"

namespace thaw::sandbox {
namespace {

std::string error_of(std::string_view text) {
  try {
    parse_egress_policy(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(EgressPolicy, NoneIsAnEmptyAllowList) {
  EXPECT_TRUE(parse_egress_policy("none").none());
  EXPECT_EQ(parse_egress_policy("none").text(), "none");
}

TEST(EgressPolicy, RulesTakeNetworksAndPorts) {
  const auto p = parse_egress_policy("10.0.0.0/8,192.168.1.7:5432,172.16.0.0/12:8000-8080");
  ASSERT_EQ(p.allow.size(), 3u);
  EXPECT_EQ(p.allow[0].network.prefix, 8);
  EXPECT_EQ(p.allow[0].first_port, 0);
  EXPECT_EQ(p.allow[1].network.prefix, 32);
  EXPECT_EQ(p.allow[1].first_port, 5432);
  EXPECT_EQ(p.allow[1].last_port, 5432);
  EXPECT_EQ(p.allow[2].first_port, 8000);
  EXPECT_EQ(p.allow[2].last_port, 8080);
}

TEST(EgressPolicy, TextIsCanonical) {
  EXPECT_EQ(parse_egress_policy("10.0.0.1:80,10.0.0.0/8").text(),
            parse_egress_policy("10.0.0.0/8,10.0.0.1/32:80").text());
}

TEST(EgressPolicy, BadRulesAreRefusedWithTheirReason) {
  EXPECT_NE(error_of("").find("say \"none\""), std::string::npos);
  EXPECT_NE(error_of("10.0.0.1/8").find("host bits are set (did you mean 10.0.0.0/8?)"),
            std::string::npos);
  EXPECT_NE(error_of("10.0.0.0/33").find("prefix length is 0 to 32"), std::string::npos);
  EXPECT_NE(error_of("example.com").find("not an IPv4 address"), std::string::npos);
  EXPECT_NE(error_of("10.0.0.0/8:0").find("a port is 1 to 65535"), std::string::npos);
  EXPECT_NE(error_of("10.0.0.0/8:70000").find("a port is 1 to 65535"), std::string::npos);
  EXPECT_NE(error_of("10.0.0.0/8:90-80").find("backwards"), std::string::npos);
  EXPECT_NE(error_of("10.0.0.0/8,").find("not an IPv4 address"), std::string::npos);
  std::string many;
  for (size_t i = 0; i <= kMaxEgressRules; ++i) many += (i ? "," : "") + std::string("10.0.0.1");
  EXPECT_NE(error_of(many).find("at most 64 rules"), std::string::npos);
}

TEST(EgressPolicy, NetworksContainAndOverlap) {
  const auto n = parse_ipv4_network("10.213.0.0/16");
  EXPECT_TRUE(n.contains(parse_ipv4_address("10.213.255.1")));
  EXPECT_FALSE(n.contains(parse_ipv4_address("10.214.0.1")));
  EXPECT_TRUE(n.overlaps(parse_ipv4_network("10.0.0.0/8")));
  EXPECT_FALSE(n.overlaps(parse_ipv4_network("10.214.0.0/16")));
  EXPECT_EQ(n.size(), 65536u);
}

}  // namespace
}  // namespace thaw::sandbox
