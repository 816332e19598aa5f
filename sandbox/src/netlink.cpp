// rtnetlink requests built by hand: a header, a fixed part, attributes.
#include "sandbox/netlink.hpp"

#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "thaw/error.hpp"

namespace thaw::sandbox {

namespace {

// A request under construction: fixed size, attributes appended in place.
// Nested attributes are opened and closed around what they hold.
struct Message {
  alignas(nlmsghdr) std::array<char, 1024> buffer{};

  explicit Message(uint16_t type, uint16_t flags) {
    header()->nlmsg_len = NLMSG_LENGTH(0);
    header()->nlmsg_type = type;
    header()->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
  }
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buffer.data()); }
  size_t size() { return header()->nlmsg_len; }

  void* reserve(size_t n) {
    const size_t at = NLMSG_ALIGN(header()->nlmsg_len);
    if (at + NLMSG_ALIGN(n) > buffer.size()) throw Error("netlink: request too large");
    header()->nlmsg_len = static_cast<uint32_t>(at + NLMSG_ALIGN(n));
    return buffer.data() + at;
  }
  template <typename T>
  T* fixed() {
    return static_cast<T*>(reserve(sizeof(T)));
  }
  void attribute(uint16_t type, const void* data, size_t n) {
    auto* a = static_cast<rtattr*>(reserve(RTA_LENGTH(n)));
    a->rta_type = type;
    a->rta_len = static_cast<uint16_t>(RTA_LENGTH(n));
    if (n) memcpy(RTA_DATA(a), data, n);
  }
  void attribute(uint16_t type, const std::string& text) {
    attribute(type, text.c_str(), text.size() + 1);
  }
  template <typename T>
  void attribute(uint16_t type, T value) {
    attribute(type, &value, sizeof value);
  }
  size_t open_nest(uint16_t type) {
    const size_t at = NLMSG_ALIGN(header()->nlmsg_len);
    attribute(type, nullptr, 0);
    return at;
  }
  void close_nest(size_t at) {
    auto* a = reinterpret_cast<rtattr*>(buffer.data() + at);
    a->rta_len = static_cast<uint16_t>(header()->nlmsg_len - at);
  }
};

std::string link_name(const ifinfomsg* info, size_t length) {
  auto* a = IFLA_RTA(info);
  auto left = static_cast<int>(length);
  for (; RTA_OK(a, left); a = RTA_NEXT(a, left))
    if (a->rta_type == IFLA_IFNAME)
      return std::string(static_cast<const char*>(RTA_DATA(a)),
                         strnlen(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
  return {};
}

}  // namespace

Rtnetlink::Rtnetlink() : socket_(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) {
  if (!socket_) throw_errno("netlink: socket");
  // Replies only for what we ask; no multicast.
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(socket_.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0)
    throw_errno("netlink: bind");
  const int on = 1;
  setsockopt(socket_.get(), SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on);
}

Rtnetlink::Rtnetlink(int netns_fd)
    : Rtnetlink([netns_fd] {
        InNetworkNamespace in(netns_fd);
        return Rtnetlink();
      }()) {}

void Rtnetlink::exchange(void* request, size_t size, const char* what) {
  exchange(request, size, what, [](const nlmsghdr*) {});
}

template <typename OnReply>
void Rtnetlink::exchange(void* request, size_t size, const char* what, OnReply on_reply) {
  auto* h = static_cast<nlmsghdr*>(request);
  h->nlmsg_seq = ++sequence_;
  if (send(socket_.get(), request, size, 0) != static_cast<ssize_t>(size))
    throw_errno(std::string("netlink: send ") + what);
  alignas(nlmsghdr) std::array<char, 32768> reply;
  for (;;) {
    const ssize_t n = recv(socket_.get(), reply.data(), reply.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(std::string("netlink: receive ") + what);
    }
    auto left = static_cast<unsigned>(n);
    for (auto* m = reinterpret_cast<nlmsghdr*>(reply.data()); NLMSG_OK(m, left);
         m = NLMSG_NEXT(m, left)) {
      if (m->nlmsg_seq != sequence_) continue;  // late answer to an earlier request
      if (m->nlmsg_type == NLMSG_DONE) return;
      if (m->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(m));
        if (e->error == 0) return;
        throw_errno(std::string("netlink: ") + what, -e->error);
      }
      on_reply(m);
    }
  }
}

void Rtnetlink::create_veth(const std::string& name, const std::string& peer, int peer_netns_fd,
                            uint32_t group) {
  Message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  m.fixed<ifinfomsg>()->ifi_family = AF_UNSPEC;
  m.attribute(IFLA_IFNAME, name);
  if (group) m.attribute<uint32_t>(IFLA_GROUP, group);
  const size_t linkinfo = m.open_nest(IFLA_LINKINFO);
  m.attribute(IFLA_INFO_KIND, std::string("veth"));
  const size_t data = m.open_nest(IFLA_INFO_DATA);
  const size_t peer_info = m.open_nest(VETH_INFO_PEER);
  m.fixed<ifinfomsg>()->ifi_family = AF_UNSPEC;
  m.attribute(IFLA_IFNAME, peer);
  m.attribute<uint32_t>(IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
  m.close_nest(peer_info);
  m.close_nest(data);
  m.close_nest(linkinfo);
  exchange(m.buffer.data(), m.size(), ("create veth " + name).c_str());
}

void Rtnetlink::move_link(int index, int netns_fd, const std::string& new_name) {
  Message m(RTM_NEWLINK, 0);
  m.fixed<ifinfomsg>()->ifi_index = index;
  m.attribute<uint32_t>(IFLA_NET_NS_FD, static_cast<uint32_t>(netns_fd));
  m.attribute(IFLA_IFNAME, new_name);
  exchange(m.buffer.data(), m.size(), "move link into a network namespace");
}

void Rtnetlink::delete_link(int index) {
  Message m(RTM_DELLINK, 0);
  m.fixed<ifinfomsg>()->ifi_index = index;
  exchange(m.buffer.data(), m.size(), "delete link");
}

void Rtnetlink::delete_group(uint32_t group) {
  Message m(RTM_DELLINK, 0);
  m.fixed<ifinfomsg>()->ifi_family = AF_UNSPEC;
  m.attribute<uint32_t>(IFLA_GROUP, group);
  exchange(m.buffer.data(), m.size(), "delete a group of links");
}

void Rtnetlink::set_group(int index, uint32_t group) {
  Message m(RTM_NEWLINK, 0);
  m.fixed<ifinfomsg>()->ifi_index = index;
  m.attribute<uint32_t>(IFLA_GROUP, group);
  exchange(m.buffer.data(), m.size(), "set link group");
}

void Rtnetlink::set_up(int index) {
  Message m(RTM_NEWLINK, 0);
  auto* info = m.fixed<ifinfomsg>();
  info->ifi_index = index;
  info->ifi_flags = IFF_UP;
  info->ifi_change = IFF_UP;
  exchange(m.buffer.data(), m.size(), "set link up");
}

void Rtnetlink::add_address(int index, in_addr address, int prefix) {
  Message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  auto* a = m.fixed<ifaddrmsg>();
  a->ifa_family = AF_INET;
  a->ifa_prefixlen = static_cast<unsigned char>(prefix);
  a->ifa_index = static_cast<unsigned>(index);
  m.attribute(IFA_LOCAL, address);
  m.attribute(IFA_ADDRESS, address);
  exchange(m.buffer.data(), m.size(), "add address");
}

void Rtnetlink::add_default_route(int index, in_addr gateway) {
  Message m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  auto* r = m.fixed<rtmsg>();
  r->rtm_family = AF_INET;
  r->rtm_table = RT_TABLE_MAIN;
  r->rtm_protocol = RTPROT_STATIC;
  r->rtm_scope = RT_SCOPE_UNIVERSE;
  r->rtm_type = RTN_UNICAST;
  m.attribute(RTA_GATEWAY, gateway);
  m.attribute<uint32_t>(RTA_OIF, static_cast<uint32_t>(index));
  exchange(m.buffer.data(), m.size(), "add default route");
}

std::optional<int> Rtnetlink::index_of(const std::string& name) {
  Message m(RTM_GETLINK, 0);
  m.fixed<ifinfomsg>()->ifi_family = AF_UNSPEC;
  m.attribute(IFLA_IFNAME, name);
  std::optional<int> index;
  try {
    exchange(m.buffer.data(), m.size(), "get link", [&](const nlmsghdr* h) {
      if (h->nlmsg_type == RTM_NEWLINK)
        index = static_cast<const ifinfomsg*>(NLMSG_DATA(h))->ifi_index;
    });
  } catch (const Error& e) {
    if (e.error_number() == ENODEV) return std::nullopt;
    throw;
  }
  return index;
}

std::vector<LinkInfo> Rtnetlink::links() {
  Message m(RTM_GETLINK, NLM_F_DUMP);
  m.fixed<ifinfomsg>()->ifi_family = AF_UNSPEC;
  std::vector<LinkInfo> out;
  exchange(m.buffer.data(), m.size(), "list links", [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWLINK) return;
    const auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
    out.push_back({info->ifi_index, link_name(info, IFLA_PAYLOAD(h))});
  });
  return out;
}

LinkCounters Rtnetlink::counters(int index) {
  Message m(RTM_GETLINK, 0);
  m.fixed<ifinfomsg>()->ifi_index = index;
  LinkCounters out;
  exchange(m.buffer.data(), m.size(), "read link counters", [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWLINK) return;
    const auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
    auto* a = IFLA_RTA(info);
    auto left = static_cast<int>(IFLA_PAYLOAD(h));
    for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
      if (a->rta_type != IFLA_STATS64 || RTA_PAYLOAD(a) < sizeof(rtnl_link_stats64)) continue;
      rtnl_link_stats64 stats;
      memcpy(&stats, RTA_DATA(a), sizeof stats);
      out.rx_bytes = stats.rx_bytes;
      out.tx_bytes = stats.tx_bytes;
    }
  });
  return out;
}

InNetworkNamespace::InNetworkNamespace(int netns_fd)
    : home_(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
  if (!home_) throw_errno("netlink: open this thread's network namespace");
  if (setns(netns_fd, CLONE_NEWNET) != 0) throw_errno("netlink: enter a network namespace");
}

InNetworkNamespace::~InNetworkNamespace() {
  // Cannot fail for the namespace this thread came from while it is held open.
  setns(home_.get(), CLONE_NEWNET);
}

UniqueFd make_network_namespace() {
  const UniqueFd home(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home) throw_errno("netlink: open this thread's network namespace");
  if (unshare(CLONE_NEWNET) != 0) throw_errno("netlink: unshare(CLONE_NEWNET)");
  UniqueFd made(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  const int err = errno;
  if (setns(home.get(), CLONE_NEWNET) != 0)
    throw_errno("netlink: back to thawd's network namespace");
  if (!made) throw_errno("netlink: open the new network namespace", err);
  return made;
}

}  // namespace thaw::sandbox
