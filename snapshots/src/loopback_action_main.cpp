// thaw-criu-loopback: a CRIU action script. At "setup-namespaces" of a restore
// (the restored tree's namespaces exist, nothing is in them yet) it brings up
// loopback in the restored network namespace. CRIU's --empty-ns net leaves it
// down, and a TCP connection between two restored processes (a provided
// runtime's bootstrap and thaw's Runtime API server) is put back through it:
// with loopback down CRIU fails with "Network is unreachable".
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main() {
  const char* action = getenv("CRTOOLS_SCRIPT_ACTION");
  const char* pid = getenv("CRTOOLS_INIT_PID");
  if (!action || std::strcmp(action, "setup-namespaces") != 0) return 0;
  if (!pid) {
    std::fprintf(stderr, "thaw-criu-loopback: no CRTOOLS_INIT_PID\n");
    return 1;
  }
  const std::string ns = std::string("/proc/") + pid + "/ns/net";
  const int fd = open(ns.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    std::perror(("thaw-criu-loopback: join " + ns).c_str());
    return 1;
  }
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
    std::perror("thaw-criu-loopback: read lo's flags");
    return 1;
  }
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
    std::perror("thaw-criu-loopback: bring lo up");
    return 1;
  }
  return 0;
}
