// The link pool: a worker thread makes pairs ahead and removes the links of
// instances that ended; attach() only moves, addresses and labels.
#include "sandbox/egress_links.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "thaw/error.hpp"

namespace thaw::sandbox {

namespace {

constexpr const char* kParkedPrefix = "park";

std::string hex8(uint32_t value) {
  char text[9];
  snprintf(text, sizeof text, "%08x", value);
  return text;
}

void write_sysctl(const std::string& path, const char* value) {
  const UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) throw_errno("egress: open " + path);
  if (write(fd.get(), value, 1) != 1) throw_errno("egress: write " + path);
}

// A pair made ahead: its host end up and addressed, its instance end parked.
struct ReadyPair {
  uint32_t host_address;
  std::string host_name;
  int host_index;
  int parked_index;
};

}  // namespace

struct EgressLink::Pool {
  Ipv4Network subnet;
  size_t target;
  UniqueFd park = make_network_namespace();

  // Sockets for the callers' requests; the worker has its own.
  std::mutex host_mutex;
  Rtnetlink host;
  std::mutex park_mutex;
  Rtnetlink parked{park.get()};

  mutable std::mutex mutex;
  std::condition_variable wake;
  std::condition_variable filled;
  std::deque<ReadyPair> ready;
  std::deque<std::pair<uint32_t, std::string>> doomed;  // host address, host-side name
  std::vector<uint32_t> free_slots;
  uint32_t next_slot = 0;
  size_t live = 0;
  bool stopping = false;

  Pool(Ipv4Network s, size_t t) : subnet(s), target(t) {}

  uint32_t slots() const { return subnet.prefix >= 31 ? 1 : subnet.size() / 2; }

  // A free /31 of the subnet, or nothing when all are taken. mutex held.
  std::optional<uint32_t> take_slot() {
    uint32_t slot;
    if (!free_slots.empty()) {
      slot = free_slots.back();
      free_slots.pop_back();
    } else if (next_slot < slots()) {
      slot = next_slot++;
    } else {
      return std::nullopt;
    }
    ++live;
    return subnet.base + 2 * slot;
  }
  void give_back(uint32_t host_address) {  // mutex held
    free_slots.push_back((host_address - subnet.base) / 2);
    --live;
  }

  ReadyPair make_pair(Rtnetlink& on_host, Rtnetlink& in_park, uint32_t host_address) {
    ReadyPair p{host_address, EgressLinks::host_link_name(host_address), 0, 0};
    const auto parked_name = kParkedPrefix + hex8(host_address);
    on_host.create_veth(p.host_name, parked_name, park.get());
    try {
      p.host_index = on_host.index_of(p.host_name).value_or(0);
      if (!p.host_index) throw Error("egress: " + p.host_name + " vanished after it was made");
      // The host routes for the instance (forwarding from this link only),
      // and drops what the instance sends from an address not its own
      // (strict reverse path: another instance's address routes elsewhere).
      const auto conf = "/proc/sys/net/ipv4/conf/" + p.host_name + "/";
      write_sysctl(conf + "forwarding", "1");
      write_sysctl(conf + "rp_filter", "1");
      if (access(("/proc/sys/net/ipv6/conf/" + p.host_name).c_str(), F_OK) == 0)
        write_sysctl("/proc/sys/net/ipv6/conf/" + p.host_name + "/disable_ipv6", "1");
      on_host.add_address(p.host_index, in_addr{htonl(host_address)}, 31);
      on_host.set_up(p.host_index);
      p.parked_index = in_park.index_of(parked_name).value_or(0);
      if (!p.parked_index) throw Error("egress: " + parked_name + " is not in the park");
    } catch (...) {
      remove(on_host, p.host_name);
      throw;
    }
    return p;
  }

  // Removes a link by its host-side name (both ends go); gone already is fine.
  static void remove(Rtnetlink& on_host, const std::string& name) {
    try {
      if (const auto index = on_host.index_of(name)) on_host.delete_link(*index);
    } catch (const Error& e) {
      if (e.error_number() != ENODEV) throw;
    }
  }

  void doom(uint32_t host_address, std::string name) {
    std::unique_lock lock(mutex);
    if (!stopping) {
      doomed.emplace_back(host_address, std::move(name));
      wake.notify_all();
      return;
    }
    lock.unlock();
    {
      const std::lock_guard host_lock(host_mutex);
      try {
        remove(host, name);
      } catch (const Error&) {
        // Dies with the instance's namespace anyway.
      }
    }
    lock.lock();
    give_back(host_address);
  }

  void work() {
    Rtnetlink on_host;
    Rtnetlink in_park(park.get());
    std::unique_lock lock(mutex);
    while (!stopping) {
      if (!doomed.empty()) {
        auto [address, name] = std::move(doomed.front());
        doomed.pop_front();
        lock.unlock();
        try {
          remove(on_host, name);
        } catch (const Error&) {
          // Dies with the instance's namespace anyway; the slot is reused
          // only once the name is free (make_pair fails, and tries another).
        }
        lock.lock();
        give_back(address);
        continue;
      }
      if (ready.size() < target) {
        const auto slot = take_slot();
        if (slot) {
          lock.unlock();
          std::optional<ReadyPair> made;
          try {
            made = make_pair(on_host, in_park, *slot);
          } catch (const Error&) {
            // attach() makes its own and reports the error.
          }
          lock.lock();
          if (made) {
            ready.push_back(std::move(*made));
            filled.notify_all();
            continue;
          }
          give_back(*slot);
        }
      }
      wake.wait(lock);
    }
  }
};

EgressLink::~EgressLink() {
  pool_->doom(host_address_, host_name_);
}

LinkCounters EgressLink::instance_counters() {
  LinkCounters host_end;
  {
    const std::lock_guard lock(pool_->host_mutex);
    host_end = pool_->host.counters(host_index_);
  }
  // What the host's end received, the instance sent.
  return {host_end.tx_bytes, host_end.rx_bytes};
}

std::string EgressLinks::host_link_name(uint32_t host_address) {
  return kEgressLinkPrefix + hex8(host_address);
}

EgressLinks::EgressLinks(Ipv4Network subnet, size_t target)
    : pool_(std::make_shared<EgressLink::Pool>(subnet, target)) {
  if (subnet.prefix > 30) throw Error("egress subnet " + subnet.text() + ": /30 or larger, please");
  const std::string prefix = kEgressLinkPrefix;
  for (const auto& link : pool_->host.links()) {
    if (link.name.size() != prefix.size() + 8 || link.name.compare(0, prefix.size(), prefix) != 0)
      continue;
    const auto address =
        static_cast<uint32_t>(strtoul(link.name.c_str() + prefix.size(), nullptr, 16));
    if (subnet.contains(address)) EgressLink::Pool::remove(pool_->host, link.name);
  }
  worker_ = std::thread([pool = pool_] { pool->work(); });
}

EgressLinks::~EgressLinks() {
  {
    const std::lock_guard lock(pool_->mutex);
    pool_->stopping = true;
    pool_->wake.notify_all();
  }
  worker_.join();
  std::deque<ReadyPair> ready;
  std::deque<std::pair<uint32_t, std::string>> doomed;
  {
    const std::lock_guard lock(pool_->mutex);
    ready.swap(pool_->ready);
    doomed.swap(pool_->doomed);
  }
  for (const auto& p : ready) doomed.emplace_back(p.host_address, p.host_name);
  // Removed now, not when the kernel gets round to the park's namespace.
  for (auto& [address, name] : doomed) pool_->doom(address, std::move(name));
}

std::unique_ptr<EgressLink> EgressLinks::attach(int netns_fd, uint32_t group) {
  auto& pool = *pool_;
  std::optional<ReadyPair> pair;
  {
    const std::lock_guard lock(pool.mutex);
    if (!pool.ready.empty()) {
      pair = std::move(pool.ready.front());
      pool.ready.pop_front();
    }
    pool.wake.notify_all();  // refill
  }
  if (!pair) {
    std::optional<uint32_t> slot;
    {
      const std::lock_guard lock(pool.mutex);
      slot = pool.take_slot();
    }
    if (!slot) throw Error("egress: every address of " + pool.subnet.text() + " is in use");
    try {
      const std::lock_guard host_lock(pool.host_mutex);
      const std::lock_guard park_lock(pool.park_mutex);
      pair = pool.make_pair(pool.host, pool.parked, *slot);
    } catch (...) {
      const std::lock_guard lock(pool.mutex);
      pool.give_back(*slot);
      throw;
    }
  }
  // From here the link is the instance's: any failure removes it with this.
  std::unique_ptr<EgressLink> link(
      new EgressLink(pool_, pair->host_address, pair->host_name, pair->host_index));
  with_context("egress: attach " + pair->host_name, [&] {
    {
      const std::lock_guard lock(pool.park_mutex);
      pool.parked.move_link(pair->parked_index, netns_fd, "eth0");
    }
    Rtnetlink inside(netns_fd);
    const auto index = inside.index_of("eth0");
    if (!index) throw Error("eth0 is not in the instance's namespace after the move");
    inside.add_address(*index, in_addr{htonl(link->instance_address())}, 31);
    inside.set_up(*index);
    inside.add_default_route(*index, in_addr{htonl(link->host_address())});
    const std::lock_guard lock(pool.host_mutex);
    pool.host.set_group(pair->host_index, group);
  });
  return link;
}

size_t EgressLinks::ready() const {
  const std::lock_guard lock(pool_->mutex);
  return pool_->ready.size();
}

void EgressLinks::wait_ready(size_t n) {
  std::unique_lock lock(pool_->mutex);
  pool_->wake.notify_all();
  pool_->filled.wait(lock, [&] { return pool_->ready.size() >= std::min(n, pool_->target); });
}

size_t EgressLinks::live() const {
  const std::lock_guard lock(pool_->mutex);
  return pool_->live;
}

const Ipv4Network& EgressLinks::subnet() const {
  return pool_->subnet;
}

}  // namespace thaw::sandbox
