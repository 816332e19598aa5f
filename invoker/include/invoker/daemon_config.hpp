#pragma once
// thawd's configuration, parsed once from the command line.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace thaw::invoker {

struct DaemonConfig {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  std::string state_dir = ".thaw";
  unsigned http_threads = 2;
  std::string runtimes_dir;  // empty: the runtimes of the source tree thawd was built from
  bool snapshots = true;
  std::string cgroup_parent = "thaw";
  bool show_version = false;
  bool show_help = false;
};

// Parses argv; throws Error with the flag and the reason on bad input.
DaemonConfig parse_daemon_args(const std::vector<std::string>& args);
std::string daemon_help();

// "127.0.0.1:8080" -> host and port; throws Error.
std::pair<std::string, uint16_t> parse_host_port(const std::string& text);

}  // namespace thaw::invoker
