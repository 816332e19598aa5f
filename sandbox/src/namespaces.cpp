// Making user+network namespace pairs, and the pool that keeps them ready.
#include <fcntl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "sandbox/error.hpp"
#include "sandbox/namespaces.hpp"

namespace thaw::sandbox {

namespace {

void write_proc_file(pid_t pid, const char* name, const std::string& text) {
  const auto path = "/proc/" + std::to_string(pid) + "/" + name;
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) throw_errno("open " + path);
  if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    throw_errno("write " + path);
}

// The holder: only plain system calls, as it may be forked from a threaded process.
[[noreturn]] void run_holder(int sock) {
  // Descriptors inherited from other threads' work (their sockets and pipes)
  // would keep those alive for as long as we live: drop them all.
  if (sock > 3) syscall(SYS_close_range, 3, sock - 1, 0);
  syscall(SYS_close_range, sock + 1, ~0U, 0);
  char byte = 0;
  if (read(sock, &byte, 1) != 1) _exit(1);  // the parent has written the id maps
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, "lo", 3);
  char status = 1;
  if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) == 0) status = 0;
  }
  if (write(sock, &status, 1) != 1) _exit(1);
  // Stay until the parent has opened our namespaces and closes its end.
  while (read(sock, &byte, 1) > 0) {
  }
  _exit(0);
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

  clone_args args{};
  args.flags = CLONE_NEWUSER | CLONE_NEWNET;
  args.exit_signal = SIGCHLD;
  const long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) throw_errno("namespaces: clone3(CLONE_NEWUSER|CLONE_NEWNET)");
  if (pid == 0) {
    close(mine.release());  // or the parent's close would never reach us as EOF
    run_holder(theirs.get());
  }
  theirs.reset();

  auto reap = [&] {
    // The namespaces live on in our descriptors; the holder is done.
    kill(static_cast<pid_t>(pid), SIGKILL);
    mine.reset();
    int status;
    while (waitpid(static_cast<pid_t>(pid), &status, 0) < 0 && errno == EINTR) {
    }
  };
  try {
    // thawd writes the maps with its own privileges, so setgroups stays allowed
    // inside and the instance can drop its supplementary groups.
    write_proc_file(static_cast<pid_t>(pid), "uid_map", id_map_text(mapping));
    write_proc_file(static_cast<pid_t>(pid), "gid_map", id_map_text(mapping));
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
    kill(static_cast<pid_t>(pid), SIGKILL);
    reap();
    throw;
  }
}

NamespacePool::NamespacePool(IdMapping mapping, size_t target)
    : mapping_(mapping), target_(target), refill_([this] { refill_loop(); }) {}

NamespacePool::~NamespacePool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_refill_.notify_all();
  refill_.join();
}

UserNetNamespaces NamespacePool::acquire() {
  {
    std::lock_guard lock(mutex_);
    if (!ready_.empty()) {
      auto ns = std::move(ready_.front());
      ready_.pop_front();
      wake_refill_.notify_one();
      return ns;
    }
  }
  wake_refill_.notify_one();
  return make_user_net_namespaces(mapping_);
}

size_t NamespacePool::ready() const {
  std::lock_guard lock(mutex_);
  return ready_.size();
}

void NamespacePool::wait_ready(size_t n) {
  std::unique_lock lock(mutex_);
  filled_.wait(lock, [&] { return stopping_ || ready_.size() >= std::min(n, target_); });
}

void NamespacePool::refill_loop() {
  // Refilling is background work: it must not take a core from a spawn on the
  // request path.
  sched_param idle{};
  pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (ready_.size() >= target_) {
      wake_refill_.wait(lock);
      continue;
    }
    lock.unlock();
    UserNetNamespaces ns;
    bool made = true;
    try {
      ns = make_user_net_namespaces(mapping_);
    } catch (const Error&) {
      made = false;  // acquire() makes its own and reports the error
    }
    lock.lock();
    if (!made) {
      wake_refill_.wait(lock);
      continue;
    }
    ready_.push_back(std::move(ns));
    filled_.notify_all();
  }
}

}  // namespace thaw::sandbox
