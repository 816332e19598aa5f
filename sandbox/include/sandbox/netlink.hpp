#pragma once
// The few rtnetlink requests egress needs, spoken directly to the kernel: a
// veth pair is a few hundred microseconds this way, against milliseconds
// through ip(8). Each Rtnetlink talks to the network namespace it was opened
// in; a request the kernel refuses throws Error with the request named and
// the kernel's reason.

#include <netinet/in.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "thaw/unique_fd.hpp"

namespace thaw::sandbox {

struct LinkCounters {
  uint64_t rx_bytes = 0;
  uint64_t tx_bytes = 0;
};

struct LinkInfo {
  int index = 0;
  std::string name;
};

class Rtnetlink {
 public:
  // A socket in the calling thread's network namespace.
  Rtnetlink();
  // A socket in the namespace `netns_fd` names (the calling thread enters it
  // for the socket call only).
  explicit Rtnetlink(int netns_fd);

  // A veth pair: `name` here, `peer` in `peer_netns_fd`, both down. `name`
  // gets device group `group`: nftables matches it (iifgroup), so a group is
  // a label the firewall reads without a rule per link.
  void create_veth(const std::string& name, const std::string& peer, int peer_netns_fd,
                   uint32_t group = 0);
  // Moves the link into `netns_fd` under `new_name` (its addresses are gone
  // there). It waits out an RCU grace period, 15-27 ms here: egress makes
  // links where they belong instead (bench/egress_links_bench compares).
  void move_link(int index, int netns_fd, const std::string& new_name);
  void delete_link(int index);
  // Every link in device group `group`, in one request: one RCU grace period
  // for all of them instead of one each.
  void delete_group(uint32_t group);
  void set_group(int index, uint32_t group);
  void set_up(int index);
  void add_address(int index, in_addr address, int prefix);
  void add_default_route(int index, in_addr gateway);

  std::optional<int> index_of(const std::string& name);
  std::vector<LinkInfo> links();
  LinkCounters counters(int index);

 private:
  // Sends a request and reads replies until its acknowledgement; `on_reply`
  // sees each data message (dumps).
  template <typename OnReply>
  void exchange(void* request, size_t size, const char* what, OnReply on_reply);
  void exchange(void* request, size_t size, const char* what);

  UniqueFd socket_;
  uint32_t sequence_ = 0;
};

// The calling thread's network namespace, for the span of a scope; back where
// it was at the end. (Only the calling thread moves: the rest of thawd stays.)
class InNetworkNamespace {
 public:
  explicit InNetworkNamespace(int netns_fd);
  ~InNetworkNamespace();
  InNetworkNamespace(const InNetworkNamespace&) = delete;
  InNetworkNamespace& operator=(const InNetworkNamespace&) = delete;

 private:
  UniqueFd home_;
};

// A new network namespace owned by thawd's user namespace, with nothing in it
// but loopback (down).
UniqueFd make_network_namespace();

}  // namespace thaw::sandbox
