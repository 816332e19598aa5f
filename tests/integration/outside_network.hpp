#pragma once
// The "outside" of egress tests: a network namespace made by the test, linked
// to the host by a veth pair of its own, with a few addresses ("hosts") on it
// and servers started there. Nothing the tests send ever leaves the machine:
// instances reach only these addresses. Everything is removed with the object.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sandbox/egress_policy.hpp"
#include "thaw/unique_fd.hpp"

namespace thaw::itest {

// A /24 for this test process (10.<second>.<from the pid>.0/24), so test
// processes running side by side do not meet. Not within thawd's default
// egress subnet (10.213.0.0/16): every thawd a test starts sweeps that of
// links named as its own.
sandbox::Ipv4Network test_subnet(int second_octet);

class OutsideNetwork {
 public:
  // Hosts at .2, .3, ... of `net` (a /24); the host's end of the link is .1.
  explicit OutsideNetwork(sandbox::Ipv4Network net, int hosts = 2);
  ~OutsideNetwork();
  OutsideNetwork(const OutsideNetwork&) = delete;
  OutsideNetwork& operator=(const OutsideNetwork&) = delete;

  uint32_t host(int i) const { return net_.base + 2 + static_cast<uint32_t>(i); }
  std::string host_text(int i) const;
  int netns() const { return netns_.get(); }

  // A TCP server in the outside namespace on host(i):port that answers every
  // connection with `greeting` and closes it. Runs until the object goes.
  void serve_greeting(int i, uint16_t port, const std::string& greeting);
  // A TCP server on host(i):port that reads each connection to its end and
  // answers with the number of bytes it read.
  void serve_sink(int i, uint16_t port);
  // Starts argv in the outside namespace (killed and reaped with the object,
  // or by stop()).
  pid_t run(const std::vector<std::string>& argv);
  // Kills and reaps a process run() started.
  void stop(pid_t pid);

 private:
  // A TCP server on host(i):port; `answer` talks to each connection.
  void serve(int i, uint16_t port, std::function<void(int)> answer);

  sandbox::Ipv4Network net_;
  UniqueFd netns_;
  std::string link_;
  std::vector<pid_t> children_;
  std::vector<int> listeners_;
};

// Connects from `netns` to address:port, sends `bytes` bytes, closes its
// sending side and returns what the server answered ("" on failure).
std::string send_and_read(int netns, uint32_t address, uint16_t port, size_t bytes);

// Connects from the network namespace `netns` to address:port within the
// deadline and reads what the server says until it closes; "" and `error`
// set when the connection failed.
std::string connect_and_read(int netns, uint32_t address, uint16_t port, std::string* error,
                             int timeout_ms = 1500);

}  // namespace thaw::itest
