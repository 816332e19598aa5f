// Making links on the caller's path; freeing their addresses on a worker's
// once they are gone.
#include "sandbox/egress_links.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>

#include "thaw/error.hpp"

namespace thaw::sandbox {

namespace {

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

}  // namespace

// Links of ended instances, put in this device group to be removed together.
constexpr uint32_t kDoomedGroup = 0x74687700;  // "thw\0"
// An ended instance's link normally goes with its namespace, which the
// kernel tears down in batches; one still there after this is removed.
constexpr auto kDrainGrace = std::chrono::seconds(5);

struct EgressLink::Pool {
  struct Draining {
    uint32_t host_address;
    std::string name;
    std::chrono::steady_clock::time_point since;
  };

  Ipv4Network subnet;

  // Requests on the host's side from callers; the worker has its own socket.
  std::mutex host_mutex;
  Rtnetlink host;

  mutable std::mutex mutex;
  std::condition_variable wake;
  std::deque<Draining> draining;  // links of ended instances
  std::vector<uint32_t> free_slots;
  uint32_t next_slot = 0;
  size_t live = 0;
  bool stopping = false;

  explicit Pool(Ipv4Network s) : subnet(s) {}

  uint32_t slots() const { return subnet.size() / 2; }

  // A free /31 of the subnet (its host address), or nothing when all are
  // taken. mutex held.
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

  void doom(uint32_t host_address, std::string name) {
    std::unique_lock lock(mutex);
    draining.push_back({host_address, std::move(name), std::chrono::steady_clock::now()});
    if (!stopping) {
      wake.notify_all();
      return;
    }
    // The worker is gone: remove it now.
    auto gone = std::move(draining);
    draining.clear();
    lock.unlock();
    const std::lock_guard host_lock(host_mutex);
    remove_all(host, gone, true);
  }

  // Frees the slots of `links` that are gone; with `force`, or past the
  // grace, removes the others (one request for all of them) and frees theirs.
  // Returns those still waiting.
  std::deque<Draining> remove_all(Rtnetlink& on_host, std::deque<Draining>& links, bool force,
                                  bool give_back_slots = true) {
    std::deque<Draining> waiting, freed;
    bool doomed_any = false;
    const auto now = std::chrono::steady_clock::now();
    for (auto& d : links) {
      std::optional<int> index;
      try {
        index = on_host.index_of(d.name);
        if (index && (force || now - d.since > kDrainGrace)) {
          on_host.set_group(*index, kDoomedGroup);
          doomed_any = true;
          index.reset();
        }
      } catch (const Error&) {
        index.reset();  // gone meanwhile, or beyond help: it dies with its namespace
      }
      (index ? waiting : freed).push_back(std::move(d));
    }
    if (doomed_any) {
      try {
        on_host.delete_group(kDoomedGroup);
      } catch (const Error&) {
        // Gone with their namespaces meanwhile.
      }
    }
    if (give_back_slots) {
      const std::lock_guard lock(mutex);
      for (const auto& d : freed) give_back(d.host_address);
    }
    return waiting;
  }

  void work() {
    Rtnetlink on_host;
    std::unique_lock lock(mutex);
    std::deque<Draining> waiting;
    while (!stopping) {
      wake.wait_for(lock, std::chrono::milliseconds(waiting.empty() ? 1000 : 100),
                    [&] { return stopping || !draining.empty(); });
      if (stopping) break;
      for (auto& d : draining) waiting.push_back(std::move(d));
      draining.clear();
      if (waiting.empty()) continue;
      lock.unlock();
      waiting = remove_all(on_host, waiting, false);
      lock.lock();
    }
    // What is left goes in the destructor's batch.
    for (auto& d : waiting) draining.push_back(std::move(d));
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

EgressLinks::EgressLinks(Ipv4Network subnet) : pool_(std::make_shared<EgressLink::Pool>(subnet)) {
  if (subnet.prefix > 30) throw Error("egress subnet " + subnet.text() + ": /30 or larger, please");
  const std::string prefix = kEgressLinkPrefix;
  std::deque<EgressLink::Pool::Draining> left;
  for (const auto& link : pool_->host.links()) {
    if (link.name.size() != prefix.size() + 8 || link.name.compare(0, prefix.size(), prefix) != 0)
      continue;
    const auto address =
        static_cast<uint32_t>(strtoul(link.name.c_str() + prefix.size(), nullptr, 16));
    if (subnet.contains(address))
      left.push_back({address, link.name, std::chrono::steady_clock::now()});
  }
  // Their addresses were never taken from this pool: none to give back.
  pool_->remove_all(pool_->host, left, true, false);
  worker_ = std::thread([pool = pool_] { pool->work(); });
}

EgressLinks::~EgressLinks() {
  {
    const std::lock_guard lock(pool_->mutex);
    pool_->stopping = true;
    pool_->wake.notify_all();
  }
  worker_.join();
  std::deque<EgressLink::Pool::Draining> left;
  {
    const std::lock_guard lock(pool_->mutex);
    left.swap(pool_->draining);
  }
  // Removed now, all in one request, not when the kernel gets round to
  // their namespaces.
  const std::lock_guard host_lock(pool_->host_mutex);
  pool_->remove_all(pool_->host, left, true);
}

std::unique_ptr<EgressLink> EgressLinks::attach(int netns_fd, uint32_t group) {
  auto& pool = *pool_;
  std::optional<uint32_t> slot;
  {
    const std::lock_guard lock(pool.mutex);
    slot = pool.take_slot();
  }
  if (!slot) throw Error("egress: every address of " + pool.subnet.text() + " is in use");
  const uint32_t host_address = *slot;
  const auto name = host_link_name(host_address);
  int host_index = 0;
  try {
    const std::lock_guard host_lock(pool.host_mutex);
    pool.host.create_veth(name, "eth0", netns_fd, group);
    host_index = pool.host.index_of(name).value_or(0);
  } catch (...) {
    const std::lock_guard lock(pool.mutex);
    pool.give_back(host_address);
    throw;
  }
  // From here the link is the instance's: any failure removes it with this.
  std::unique_ptr<EgressLink> link(new EgressLink(pool_, host_address, name, host_index));
  with_context("egress: link " + name, [&] {
    if (!host_index) throw Error("it vanished after it was made");
    // The host routes for the instance (forwarding from this link only),
    // and drops what the instance sends from an address not its own
    // (strict reverse path: another instance's address routes elsewhere).
    const auto conf = "/proc/sys/net/ipv4/conf/" + name + "/";
    write_sysctl(conf + "forwarding", "1");
    write_sysctl(conf + "rp_filter", "1");
    {
      const std::lock_guard host_lock(pool.host_mutex);
      pool.host.add_address(host_index, in_addr{htonl(host_address)}, 31);
      pool.host.set_up(host_index);
    }
    Rtnetlink inside(netns_fd);
    const auto index = inside.index_of("eth0");
    if (!index) throw Error("eth0 is not in the instance's namespace");
    inside.add_address(*index, in_addr{htonl(link->instance_address())}, 31);
    inside.set_up(*index);
    inside.add_default_route(*index, in_addr{htonl(host_address)});
  });
  return link;
}

size_t EgressLinks::live() const {
  const std::lock_guard lock(pool_->mutex);
  return pool_->live;
}

}  // namespace thaw::sandbox
