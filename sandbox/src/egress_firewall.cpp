// The table, written as nft's own language and handed to libnftables, which
// turns it into one netlink transaction: all of it applies or none does.
#include "sandbox/egress_firewall.hpp"

#include <nftables/libnftables.h>

#include <cstdio>
#include <tuple>

#include "thaw/error.hpp"

namespace thaw::sandbox {

namespace {

std::string elements(const std::vector<uint32_t>& addresses) {
  std::string out;
  for (auto a : addresses) out += (out.empty() ? "" : ", ") + ipv4_text(a);
  return out;
}

std::string port_match(const EgressRule& r, const char* protocol) {
  std::string out = std::string(protocol) + " dport ";
  out += std::to_string(r.first_port);
  if (r.last_port != r.first_port) out += "-" + std::to_string(r.last_port);
  return out;
}

// Statements for `rules`, each ending in accept.
std::vector<std::string> rule_statements(const std::vector<EgressRule>& rules) {
  std::vector<std::string> out;
  for (const auto& r : rules) {
    const std::string to = "ip daddr " + r.network.text();
    if (r.first_port == 0) {
      out.push_back(to + " accept");
      continue;
    }
    out.push_back(to + " " + port_match(r, "tcp") + " accept");
    out.push_back(to + " " + port_match(r, "udp") + " accept");
  }
  return out;
}

// `text` with each placeholder replaced by its value.
std::string fill(std::string text, const std::vector<std::pair<std::string, std::string>>& values) {
  for (const auto& [key, value] : values)
    for (size_t at = text.find(key); at != std::string::npos;
         at = text.find(key, at + value.size()))
      text.replace(at, key.size(), value);
  return text;
}

}  // namespace

std::string EgressFirewall::table_name(const Ipv4Network& subnet) {
  char name[40];
  snprintf(name, sizeof name, "thaw_%08x_%d", subnet.base, subnet.prefix);
  return name;
}

EgressFirewall::EgressFirewall(EgressFirewallOptions options)
    : options_(std::move(options)), table_(table_name(options_.subnet)) {
  nft_ = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!nft_) throw Error("egress firewall: cannot make an nftables context");
  nft_ctx_buffer_output(nft_);
  nft_ctx_buffer_error(nft_);
  std::string dns;
  if (!options_.dns.empty()) dns = "elements = { " + elements(options_.dns) + " }; ";
  std::string host_rules;
  for (const auto& s : rule_statements(options_.host)) host_rules += "    " + s + "\n";
  // "add" then "delete": a table left by a thawd killed earlier goes, and no
  // error when there is none.
  const std::string ruleset = fill(R"(add table inet TABLE
delete table inet TABLE
table inet TABLE {
  set dns { type ipv4_addr; DNS}
  map policies { type devgroup : verdict; }
  map uploads { type devgroup : verdict; }
  map downloads { type devgroup : verdict; }
  # Refused at once: a function sees "connection refused", not its timeout.
  chain refuse {
    meta l4proto tcp reject with tcp reset
    reject with icmpx type admin-prohibited
  }
  chain from_instance {
    ip daddr SUBNET jump refuse
    meta iifgroup vmap @uploads
    ct state established,related accept
    ip daddr @dns udp dport 53 accept
    ip daddr @dns tcp dport 53 accept
    meta iifgroup vmap @policies
    jump refuse
  }
  chain to_instance {
    meta oifgroup vmap @downloads
    ct state established,related accept
    drop
  }
  chain instance_to_host {
    ct state established,related accept
    ip daddr @dns udp dport 53 accept
    ip daddr @dns tcp dport 53 accept
HOST_RULES    jump refuse
  }
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    iifname LINKS meta nfproto ipv6 drop
    iifname LINKS ip saddr SUBNET jump from_instance
    oifname LINKS ip daddr SUBNET jump to_instance
  }
  chain input {
    type filter hook input priority filter - 10; policy accept;
    iifname LINKS jump instance_to_host
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr SUBNET oifname != LINKS masquerade
  }
}
)",
                                   {{"TABLE", table_},
                                    {"SUBNET", options_.subnet.text()},
                                    {"LINKS", "\"" + options_.link_prefix + "*\""},
                                    {"DNS", dns},
                                    {"HOST_RULES", host_rules}});
  try {
    run(ruleset);
  } catch (...) {
    nft_ctx_free(nft_);
    throw;
  }
}

EgressFirewall::~EgressFirewall() {
  try {
    run("delete table inet " + table_);
  } catch (const Error&) {
    // Gone already (someone deleted it): nothing of ours is left.
  }
  nft_ctx_free(nft_);
}

void EgressFirewall::run(const std::string& commands) {
  if (nft_run_cmd_from_buffer(nft_, commands.c_str()) != 0) {
    std::string why = nft_ctx_get_error_buffer(nft_);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    throw Error("egress firewall (nftables): " + why);
  }
}

uint32_t EgressFirewall::group_for(const EgressPolicy& policy) {
  if (policy.none()) throw Error("egress firewall: the policy \"none\" has no link to label");
  const std::lock_guard lock(mutex_);
  const auto key = policy.text();
  if (auto it = groups_.find(key); it != groups_.end()) return it->second;
  // Group 0 is every link's default: policies start at 1.
  const auto group = static_cast<uint32_t>(groups_.size() + 1);
  const std::string t = "inet " + table_;
  const std::string chain = "policy_" + std::to_string(group);
  std::string commands = "add chain " + t + " " + chain + "\n";
  if (policy.connections_per_second) {
    // Per instance: keyed by the source address, which the link's reverse
    // path filter ties to the instance.
    const std::string set = "rate_" + std::to_string(group);
    commands += "add set " + t + " " + set +
                " { type ipv4_addr; size 65535; flags dynamic,timeout; timeout 1m; }\n";
    commands += "add rule " + t + " " + chain + " ct state new add @" + set +
                " { ip saddr limit rate over " + std::to_string(policy.connections_per_second) +
                "/second } jump refuse\n";
  }
  for (const auto& s : rule_statements(policy.allow))
    commands += "add rule " + t + " " + chain + " " + s + "\n";
  if (policy.bandwidth_mbps) {
    // Per instance and direction, a second's worth of burst; what is over
    // is dropped (TCP backs off to the rate), and the chain returns.
    const auto bytes = std::to_string(uint64_t{policy.bandwidth_mbps} * 125000);
    for (const auto& [direction, address, map] :
         {std::tuple{"up", "ip saddr", "uploads"}, std::tuple{"down", "ip daddr", "downloads"}}) {
      const std::string name = std::string(direction) + "_" + std::to_string(group);
      commands += "add set " + t + " " + name +
                  " { type ipv4_addr; size 65535; flags dynamic,timeout; timeout 1m; }\n";
      commands += "add chain " + t + " " + name + "\n";
      commands += "add rule " + t + " " + name + " add @" + name + " { " + address +
                  " limit rate over " + bytes + " bytes/second burst " + bytes + " bytes } drop\n";
      commands += "add element " + t + " " + map + " { " + std::to_string(group) + " : jump " +
                  name + " }\n";
    }
  }
  commands +=
      "add element " + t + " policies { " + std::to_string(group) + " : jump " + chain + " }\n";
  run(commands);
  groups_[key] = group;
  return group;
}

std::string EgressFirewall::listing() {
  const std::lock_guard lock(mutex_);
  run("list table inet " + table_);
  return nft_ctx_get_output_buffer(nft_);
}

}  // namespace thaw::sandbox
