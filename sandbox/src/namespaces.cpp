// Making user+network namespace pairs, and the pool that keeps them ready.
#include <fcntl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "sandbox/namespace_owner.hpp"
#include "sandbox/namespaces.hpp"
#include "thaw/error.hpp"

namespace thaw::sandbox {

namespace {

void write_proc_file(pid_t pid, const char* name, const std::string& text) {
  const auto path = "/proc/" + std::to_string(pid) + "/" + name;
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) throw_errno("open " + path);
  if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    throw_errno("write " + path);
}

// The holder runs on its own small stack in thawd's memory (CLONE_VM), next
// to thawd's running threads. So: raw system calls only (no errno, no libc
// state), and no sanitizer instrumentation, whose bookkeeping lives in the
// memory it shares with them.
#define THAW_HOLDER_CODE __attribute__((no_sanitize("address", "undefined"), noinline))

[[noreturn]] THAW_HOLDER_CODE void holder_exit(int code) {
  syscall(SYS_exit, code);
  __builtin_unreachable();
}

[[noreturn]] THAW_HOLDER_CODE void run_holder(int sock) {
  // Descriptors inherited from other threads' work (their sockets and pipes)
  // would keep those alive for as long as we live: drop them all.
  if (sock > 3) syscall(SYS_close_range, 3, sock - 1, 0);
  syscall(SYS_close_range, sock + 1, ~0U, 0);
  char byte = 0;
  // The parent has written the id maps when this byte arrives.
  if (syscall(SYS_read, sock, &byte, 1) != 1) holder_exit(1);
  const long s = syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = {};
  ifr.ifr_name[0] = 'l';
  ifr.ifr_name[1] = 'o';
  char status = 1;
  if (s >= 0 && syscall(SYS_ioctl, s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (syscall(SYS_ioctl, s, SIOCSIFFLAGS, &ifr) == 0) status = 0;
  }
  if (syscall(SYS_write, sock, &status, 1) != 1) holder_exit(1);
  // Stay until the parent has opened our namespaces and closes its end.
  while (syscall(SYS_read, sock, &byte, 1) > 0) {
  }
  holder_exit(0);
}

struct HolderArgs {
  int sock;   // the holder's end
  int other;  // the parent's end, to close in the holder's own descriptor table
};

THAW_HOLDER_CODE int holder_main(void* p) {
  const auto* a = static_cast<const HolderArgs*>(p);
  // Or the parent's close would never reach us as end of file.
  syscall(SYS_close, a->other);
  run_holder(a->sock);
}

// The holder's stack. The holder shares thawd's memory instead of copying it:
// a fork copied thawd's page tables and left thawd copy-on-write faults
// (~10 us each here) on every page it touched next, in the middle of the
// cold start that had just taken a namespace from the pool.
class HolderStack {
 public:
  static constexpr size_t kSize = 64 * 1024;
  HolderStack()
      : base_(mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                   -1, 0)) {
    if (base_ == MAP_FAILED) throw_errno("namespaces: stack for the holder");
  }
  ~HolderStack() { munmap(base_, kSize); }
  HolderStack(const HolderStack&) = delete;
  HolderStack& operator=(const HolderStack&) = delete;
  void* top() const { return static_cast<char*>(base_) + kSize; }

 private:
  void* base_;
};

// "" without egress.
std::string policy_text(const std::optional<PoolEgress>& egress) {
  return egress ? egress->policy.text() : std::string();
}

}  // namespace

std::string id_map_text(const IdMapping& m) {
  return "0 " + std::to_string(m.host_base) + " " + std::to_string(m.count) + "\n";
}

UserNetNamespaces make_user_net_namespaces(const IdMapping& mapping) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    throw_errno("namespaces: socketpair");
  UniqueFd mine(pair[0]), theirs(pair[1]);

  // Outlives the holder: reap() below waits for it before this returns.
  HolderStack stack;
  HolderArgs holder{theirs.get(), mine.get()};
  pid_t pid;
  {
    // The namespaces' owner is the effective uid that creates them.
    ActingAsOwner owner(mapping.owner(), mapping.owner());
    pid =
        clone(holder_main, stack.top(), CLONE_NEWUSER | CLONE_NEWNET | CLONE_VM | SIGCHLD, &holder);
  }
  if (pid < 0) throw_errno("namespaces: clone(CLONE_NEWUSER|CLONE_NEWNET|CLONE_VM)");
  theirs.reset();

  auto reap = [&] {
    // The namespaces live on in our descriptors; the holder is done.
    kill(pid, SIGKILL);
    mine.reset();
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  };
  try {
    // thawd writes the maps with its own privileges, so setgroups stays allowed
    // inside and the instance can drop its supplementary groups.
    write_proc_file(pid, "uid_map", id_map_text(mapping));
    write_proc_file(pid, "gid_map", id_map_text(mapping));
    char byte = 0;
    if (write(mine.get(), &byte, 1) != 1) throw_errno("namespaces: wake holder");
    if (read(mine.get(), &byte, 1) != 1) throw Error("namespaces: holder exited early");
    if (byte != 0) throw Error("namespaces: bringing loopback up failed");
    UserNetNamespaces ns;
    const auto base = "/proc/" + std::to_string(pid) + "/ns/";
    ns.user.reset(open((base + "user").c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns.user) throw_errno("namespaces: open " + base + "user");
    ns.net.reset(open((base + "net").c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns.net) throw_errno("namespaces: open " + base + "net");
    reap();
    return ns;
  } catch (...) {
    kill(pid, SIGKILL);
    reap();
    throw;
  }
}

NamespacePool::NamespacePool(size_t target, size_t mappings, std::chrono::milliseconds idle_expiry)
    : target_(target),
      mappings_(std::max<size_t>(mappings, 1)),
      idle_expiry_(idle_expiry),
      refill_([this] { refill_loop(); }) {}

NamespacePool::~NamespacePool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_refill_.notify_all();
  refill_.join();
}

NamespacePool::Shelf* NamespacePool::find(const IdMapping& mapping) {
  for (auto& shelf : shelves_)
    if (shelf.mapping == mapping) return &shelf;
  return nullptr;
}

NamespacePool::Shelf& NamespacePool::touch(const IdMapping& mapping,
                                           std::deque<UserNetNamespaces>& released) {
  // This mapping becomes the most recent; the least recent beyond the limit
  // gives its pairs up.
  auto it = std::find_if(shelves_.begin(), shelves_.end(),
                         [&](const Shelf& s) { return s.mapping == mapping; });
  if (it == shelves_.end()) {
    shelves_.push_front(Shelf{mapping, {}, {}, {}});
  } else if (it != shelves_.begin()) {
    Shelf moved = std::move(*it);
    shelves_.erase(it);
    shelves_.push_front(std::move(moved));
  }
  while (shelves_.size() > mappings_) {
    for (auto& ns : shelves_.back().ready) released.push_back(std::move(ns));
    shelves_.pop_back();
  }
  shelves_.front().last_acquired = std::chrono::steady_clock::now();
  wake_refill_.notify_one();
  return shelves_.front();
}

std::chrono::steady_clock::time_point NamespacePool::expire(
    std::deque<UserNetNamespaces>& released) {
  const auto now = std::chrono::steady_clock::now();
  auto next = std::chrono::steady_clock::time_point::max();
  for (auto it = shelves_.begin(); it != shelves_.end();) {
    const auto due = it->last_acquired + idle_expiry_;
    if (due <= now) {
      for (auto& ns : it->ready) released.push_back(std::move(ns));
      it = shelves_.erase(it);
    } else {
      next = std::min(next, due);
      ++it;
    }
  }
  return next;
}

UserNetNamespaces NamespacePool::acquire(const IdMapping& mapping, const PoolEgress* egress) {
  std::deque<UserNetNamespaces> released;  // closed after the lock is let go
  UserNetNamespaces ns;
  {
    std::lock_guard lock(mutex_);
    auto& shelf = touch(mapping, released);
    const std::optional<PoolEgress> wanted =
        egress ? std::optional<PoolEgress>(*egress) : std::nullopt;
    if (policy_text(shelf.egress) != policy_text(wanted)) {
      // The function's policy changed: pairs made for the old one go (their
      // links with them), and the refill makes new ones.
      for (auto& ready : shelf.ready) released.push_back(std::move(ready));
      shelf.ready.clear();
    }
    shelf.egress = wanted;
    if (!shelf.ready.empty()) {
      ns = std::move(shelf.ready.front());
      shelf.ready.pop_front();
    }
  }
  if (!ns.user) ns = make_user_net_namespaces(mapping);  // none was ready
  // A link for another policy (it changed since) is not the start's to use.
  if (ns.link && (!egress || ns.link_policy != egress->policy.text())) {
    ns.link.reset();
    ns.link_policy.clear();
  }
  return ns;
}

size_t NamespacePool::ready(const IdMapping& mapping) const {
  std::lock_guard lock(mutex_);
  for (const auto& shelf : shelves_)
    if (shelf.mapping == mapping) return shelf.ready.size();
  return 0;
}

void NamespacePool::wait_ready(const IdMapping& mapping, size_t n) {
  std::deque<UserNetNamespaces> released;
  std::unique_lock lock(mutex_);
  touch(mapping, released);
  filled_.wait(lock, [&] {
    if (stopping_) return true;
    const auto* shelf = find(mapping);
    return !shelf || shelf->ready.size() >= std::min(n, target_);
  });
}

void NamespacePool::refill_loop() {
  // Refilling is background work: it must not take a core from a spawn on the
  // request path.
  sched_param idle{};
  pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    // A function not started for that long has no idle instance left either
    // (thawd passes its keep-alive): its pairs go too.
    std::deque<UserNetNamespaces> released;
    const auto next_expiry = expire(released);
    if (!released.empty()) {
      lock.unlock();
      released.clear();
      lock.lock();
      continue;
    }
    // The most recently acquired mapping that lacks pairs.
    const Shelf* wanting = nullptr;
    for (const auto& shelf : shelves_) {
      if (shelf.ready.size() < target_) {
        wanting = &shelf;
        break;
      }
    }
    if (!wanting) {
      if (next_expiry == std::chrono::steady_clock::time_point::max())
        wake_refill_.wait(lock);
      else
        wake_refill_.wait_until(lock, next_expiry);
      continue;
    }
    const IdMapping mapping = wanting->mapping;
    const auto egress = wanting->egress;
    lock.unlock();
    UserNetNamespaces ns;
    bool made = true;
    try {
      ns = make_user_net_namespaces(mapping);
    } catch (const Error&) {
      made = false;  // acquire() makes its own and reports the error
    }
    if (made && egress) {
      try {
        ns.link = egress->host->attach(ns.net.get(), egress->policy);
        ns.link_policy = egress->policy.text();
      } catch (const Error&) {
        // The start attaches one itself, and reports why it cannot.
      }
    }
    lock.lock();
    if (!made) {
      wake_refill_.wait_until(lock, next_expiry);
      continue;
    }
    // The mapping may have dropped out meanwhile, or its policy changed:
    // then the pair is released.
    auto* shelf = find(mapping);
    if (shelf && policy_text(shelf->egress) != policy_text(egress)) shelf = nullptr;
    if (shelf) {
      shelf->ready.push_back(std::move(ns));
      filled_.notify_all();
    } else {
      lock.unlock();
      ns = {};
      lock.lock();
    }
  }
}

}  // namespace thaw::sandbox
