#include "outside_network.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <functional>
#include <thread>

#include "sandbox/netlink.hpp"
#include "thaw/error.hpp"

namespace thaw::itest {

namespace {

void write_file(const std::string& path, const std::string& text) {
  const UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    throw_errno("write " + path);
}

sockaddr_in socket_address(uint32_t address, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(address);
  return a;
}

}  // namespace

sandbox::Ipv4Network test_subnet(int second_octet) {
  // A third octet no other test process holds: the first whose abstract
  // socket name this process can bind (held until it exits, no file left),
  // from one its pid picks.
  static const uint32_t third = [] {
    for (int tries = 0; tries < 250; ++tries) {
      const auto n = static_cast<uint32_t>((getpid() + tries) % 250) + 1;
      const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      const auto name = "thaw-test-subnet-" + std::to_string(n);
      memcpy(a.sun_path + 1, name.data(), name.size());
      const auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
      if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), size) == 0) return n;
      if (fd >= 0) close(fd);
    }
    throw Error("no free test subnet: 250 test processes hold one each");
  }();
  return {(10u << 24) | (static_cast<uint32_t>(second_octet) << 16) | (third << 8), 24};
}

OutsideNetwork::OutsideNetwork(sandbox::Ipv4Network net, int hosts)
    : net_(net), netns_(sandbox::make_network_namespace()) {
  char name[16];
  snprintf(name, sizeof name, "tout%08x", net.base >> 8);
  link_ = name;
  sandbox::Rtnetlink on_host;
  if (auto stale = on_host.index_of(link_)) on_host.delete_link(*stale);  // a crashed run's
  on_host.create_veth(link_, "eth0", netns_.get());
  const int index = on_host.index_of(link_).value();
  // Replies to instances come in here and are forwarded to them.
  write_file("/proc/sys/net/ipv4/conf/" + link_ + "/forwarding", "1");
  on_host.add_address(index, in_addr{htonl(net.base + 1)}, 24);
  on_host.set_up(index);
  sandbox::Rtnetlink inside(netns_.get());
  const int eth0 = inside.index_of("eth0").value();
  for (int i = 0; i < hosts; ++i) inside.add_address(eth0, in_addr{htonl(host(i))}, 24);
  inside.set_up(eth0);
  inside.set_up(inside.index_of("lo").value());
}

OutsideNetwork::~OutsideNetwork() {
  for (int fd : listeners_) shutdown(fd, SHUT_RDWR);
  for (pid_t pid : children_) kill(pid, SIGKILL);
  for (pid_t pid : children_) waitpid(pid, nullptr, 0);
  try {
    sandbox::Rtnetlink on_host;
    if (auto index = on_host.index_of(link_)) on_host.delete_link(*index);
  } catch (const Error&) {
    // The namespace's end goes with the namespace, and the pair with it.
  }
}

std::string OutsideNetwork::host_text(int i) const {
  return sandbox::ipv4_text(host(i));
}

void OutsideNetwork::serve(int i, uint16_t port, std::function<void(int)> answer) {
  int fd;
  {
    sandbox::InNetworkNamespace in(netns_.get());
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  if (fd < 0) throw_errno("outside: socket");
  const int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  const auto a = socket_address(host(i), port);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || listen(fd, 64) != 0)
    throw_errno("outside: listen on " + host_text(i) + ":" + std::to_string(port));
  listeners_.push_back(fd);
  std::thread([fd, answer = std::move(answer)] {
    for (;;) {
      const int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) break;  // shut down by the destructor
      answer(c);
      close(c);
    }
    close(fd);
  }).detach();
}

void OutsideNetwork::serve_greeting(int i, uint16_t port, const std::string& greeting) {
  serve(i, port, [greeting](int c) { (void)!write(c, greeting.data(), greeting.size()); });
}

void OutsideNetwork::serve_sink(int i, uint16_t port) {
  serve(i, port, [](int c) {
    size_t total = 0;
    char buf[65536];
    for (ssize_t n; (n = read(c, buf, sizeof buf)) > 0;) total += static_cast<size_t>(n);
    const auto answer = std::to_string(total);
    (void)!write(c, answer.data(), answer.size());
  });
}

pid_t OutsideNetwork::run(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw_errno("outside: fork");
  if (pid == 0) {
    if (setns(netns_.get(), CLONE_NEWNET) != 0) _exit(126);
    execvp(args[0], args.data());
    _exit(127);
  }
  children_.push_back(pid);
  return pid;
}

void OutsideNetwork::stop(pid_t pid) {
  const auto it = std::find(children_.begin(), children_.end(), pid);
  if (it == children_.end()) return;  // not ours, or stopped already
  children_.erase(it);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

std::string send_and_read(int netns, uint32_t address, uint16_t port, size_t bytes) {
  int raw;
  {
    sandbox::InNetworkNamespace in(netns);
    raw = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  const UniqueFd fd(raw);
  const auto a = socket_address(address, port);
  if (!fd || connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) return "";
  const std::string chunk(65536, 'u');
  for (size_t sent = 0; sent < bytes;) {
    const ssize_t n = write(fd.get(), chunk.data(), std::min(chunk.size(), bytes - sent));
    if (n <= 0) return "";
    sent += static_cast<size_t>(n);
  }
  shutdown(fd.get(), SHUT_WR);
  std::string out;
  char buf[64];
  for (ssize_t n; (n = read(fd.get(), buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

std::string connect_and_read(int netns, uint32_t address, uint16_t port, std::string* error,
                             int timeout_ms) {
  int raw;
  {
    sandbox::InNetworkNamespace in(netns);
    raw = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  }
  const UniqueFd fd(raw);
  if (!fd) throw_errno("connect: socket");
  const auto a = socket_address(address, port);
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 &&
      errno != EINPROGRESS) {
    *error = strerror(errno);
    return "";
  }
  pollfd p{fd.get(), POLLOUT, 0};
  if (poll(&p, 1, timeout_ms) != 1) {
    *error = "timed out";
    return "";
  }
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) {
    *error = strerror(err);
    return "";
  }
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd r{fd.get(), POLLIN, 0};
    if (poll(&r, 1, timeout_ms) != 1) break;
    const ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  error->clear();
  return out;
}

}  // namespace thaw::itest
