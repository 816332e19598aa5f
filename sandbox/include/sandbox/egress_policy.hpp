#pragma once
// Where a function's instances may send packets: nowhere but their own
// loopback (an empty allow list: "none"), or the destinations listed, each an
// IPv4 network with an optional port range (TCP and UDP). Values in, values
// out: parsed once at the API's edge, enforced by the host's firewall
// (egress_firewall.hpp), which the function cannot change.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace thaw::sandbox {

struct Ipv4Network {
  uint32_t base = 0;  // host byte order, host bits zero
  int prefix = 32;

  bool contains(uint32_t address) const;
  bool overlaps(const Ipv4Network& other) const;
  uint32_t size() const;     // addresses in it (2^32 is clamped to 2^32-1)
  std::string text() const;  // "10.0.0.0/8"
  bool operator==(const Ipv4Network&) const = default;
};

// "10.1.2.3" or "10.0.0.0/8"; host bits must be zero. Throws Error.
Ipv4Network parse_ipv4_network(std::string_view text);
uint32_t parse_ipv4_address(std::string_view text);  // host byte order
std::string ipv4_text(uint32_t address);

struct EgressRule {
  Ipv4Network network;
  uint16_t first_port = 0;  // 0 and 0: every port and protocol
  uint16_t last_port = 0;
  bool operator==(const EgressRule&) const = default;
};

constexpr size_t kMaxEgressRules = 64;
constexpr uint32_t kMaxConnectionsPerSecond = 100000;
constexpr uint32_t kMaxBandwidthMbps = 100000;

struct EgressPolicy {
  std::vector<EgressRule> allow;  // empty: none
  // New connections per second per instance; 0: no limit.
  uint32_t connections_per_second = 0;
  // Megabits per second per instance and direction; 0: no limit. Packets
  // over it are dropped, and TCP slows down to it.
  uint32_t bandwidth_mbps = 0;

  bool none() const { return allow.empty(); }
  // Each rule as egress_rule_text() writes it, in the order given.
  std::vector<std::string> rule_texts() const;
  // Canonical text: rules sorted, "none" when empty; equal policies, equal text.
  std::string text() const;
  bool operator==(const EgressPolicy&) const = default;
};

// "CIDR", "CIDR:PORT" or "CIDR:FIRST-LAST". Throws Error naming the rule.
EgressRule parse_egress_rule(std::string_view text);
std::string egress_rule_text(const EgressRule& rule);

// "none", or rules separated by commas (the operator's --egress-default).
EgressPolicy parse_egress_policy(std::string_view text);

}  // namespace thaw::sandbox
