#include "sandbox/egress_policy.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

#include "thaw/error.hpp"

namespace thaw::sandbox {

namespace {

uint32_t mask_of(int prefix) {
  return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
}

uint16_t parse_port(std::string_view text, std::string_view rule) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > 65535)
    throw Error("egress rule \"" + std::string(rule) + "\": a port is 1 to 65535, got \"" +
                std::string(text) + "\"");
  return static_cast<uint16_t>(value);
}

}  // namespace

bool Ipv4Network::contains(uint32_t address) const {
  return (address & mask_of(prefix)) == base;
}

bool Ipv4Network::overlaps(const Ipv4Network& other) const {
  const int shorter = std::min(prefix, other.prefix);
  return (base & mask_of(shorter)) == (other.base & mask_of(shorter));
}

uint32_t Ipv4Network::size() const {
  return prefix == 0 ? ~uint32_t{0} : uint32_t{1} << (32 - prefix);
}

std::string Ipv4Network::text() const {
  return ipv4_text(base) + "/" + std::to_string(prefix);
}

uint32_t parse_ipv4_address(std::string_view text) {
  in_addr a{};
  const std::string s(text);
  if (inet_pton(AF_INET, s.c_str(), &a) != 1)
    throw Error("\"" + s + "\" is not an IPv4 address (a.b.c.d)");
  return ntohl(a.s_addr);
}

std::string ipv4_text(uint32_t address) {
  in_addr a{htonl(address)};
  char out[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, out, sizeof out);
  return out;
}

Ipv4Network parse_ipv4_network(std::string_view text) {
  Ipv4Network n;
  const auto slash = text.find('/');
  n.base = parse_ipv4_address(text.substr(0, slash));
  if (slash != std::string_view::npos) {
    const auto p = text.substr(slash + 1);
    int prefix = -1;
    const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (ec != std::errc() || end != p.data() + p.size() || prefix < 0 || prefix > 32)
      throw Error("\"" + std::string(text) + "\": the prefix length is 0 to 32");
    n.prefix = prefix;
  }
  if ((n.base & ~mask_of(n.prefix)) != 0)
    throw Error("\"" + std::string(text) + "\": host bits are set (did you mean " +
                ipv4_text(n.base & mask_of(n.prefix)) + "/" + std::to_string(n.prefix) + "?)");
  return n;
}

EgressRule parse_egress_rule(std::string_view text) {
  EgressRule r;
  const auto colon = text.find(':');
  try {
    r.network = parse_ipv4_network(text.substr(0, colon));
  } catch (const Error& e) {
    throw Error("egress rule \"" + std::string(text) + "\": " + e.what());
  }
  if (colon == std::string_view::npos) return r;
  const auto ports = text.substr(colon + 1);
  const auto dash = ports.find('-');
  r.first_port = parse_port(ports.substr(0, dash), text);
  r.last_port =
      dash == std::string_view::npos ? r.first_port : parse_port(ports.substr(dash + 1), text);
  if (r.last_port < r.first_port)
    throw Error("egress rule \"" + std::string(text) + "\": the port range is backwards");
  return r;
}

std::string egress_rule_text(const EgressRule& r) {
  std::string out = r.network.text();
  if (r.first_port == 0) return out;
  out += ":" + std::to_string(r.first_port);
  if (r.last_port != r.first_port) out += "-" + std::to_string(r.last_port);
  return out;
}

std::vector<std::string> EgressPolicy::rule_texts() const {
  std::vector<std::string> out;
  for (const auto& r : allow) out.push_back(egress_rule_text(r));
  return out;
}

std::string EgressPolicy::text() const {
  if (allow.empty()) return "none";
  auto rules = rule_texts();
  std::sort(rules.begin(), rules.end());
  rules.erase(std::unique(rules.begin(), rules.end()), rules.end());
  std::string out;
  for (const auto& r : rules) out += (out.empty() ? "" : ",") + r;
  if (connections_per_second)
    out += ";connections_per_second=" + std::to_string(connections_per_second);
  if (bandwidth_mbps) out += ";bandwidth_mbps=" + std::to_string(bandwidth_mbps);
  return out;
}

EgressPolicy parse_egress_policy(std::string_view text) {
  EgressPolicy p;
  if (text == "none") return p;
  if (text.empty()) throw Error("egress policy: empty (say \"none\" for no egress)");
  size_t at = 0;
  while (at <= text.size()) {
    const auto comma = text.find(',', at);
    const auto rule = text.substr(at, comma == std::string_view::npos ? text.npos : comma - at);
    p.allow.push_back(parse_egress_rule(rule));
    if (p.allow.size() > kMaxEgressRules)
      throw Error("egress policy: at most " + std::to_string(kMaxEgressRules) + " rules");
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  return p;
}

}  // namespace thaw::sandbox
