#include "invoker/daemon_config.hpp"

#include <tuple>

#include "sandbox/error.hpp"

namespace thaw::invoker {

std::pair<std::string, uint16_t> parse_host_port(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    throw Error("--listen: expected HOST:PORT, got \"" + text + "\"");
  const auto port_text = text.substr(colon + 1);
  if (port_text.find_first_not_of("0123456789") != std::string::npos || port_text.size() > 5)
    throw Error("--listen: port must be a number from 0 to 65535, got \"" + port_text + "\"");
  const unsigned long port = std::stoul(port_text);
  if (port > 65535)
    throw Error("--listen: port must be a number from 0 to 65535, got \"" + port_text + "\"");
  return {text.substr(0, colon), static_cast<uint16_t>(port)};
}

DaemonConfig parse_daemon_args(const std::vector<std::string>& args) {
  DaemonConfig c;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw Error(a + ": needs a value");
      return args[++i];
    };
    if (a == "--version") {
      c.show_version = true;
    } else if (a == "--help" || a == "-h") {
      c.show_help = true;
    } else if (a == "--listen") {
      std::tie(c.listen_host, c.listen_port) = parse_host_port(value());
    } else if (a == "--state-dir") {
      c.state_dir = value();
      if (c.state_dir.empty()) throw Error("--state-dir: must not be empty");
    } else if (a == "--runtimes-dir") {
      c.runtimes_dir = value();
    } else if (a == "--cgroup-parent") {
      c.cgroup_parent = value();
      if (c.cgroup_parent.empty() || c.cgroup_parent.find("..") != std::string::npos ||
          c.cgroup_parent[0] == '/')
        throw Error("--cgroup-parent: must be a relative cgroup path without '..', got \"" +
                    c.cgroup_parent + "\"");
    } else if (a == "--no-snapshots") {
      c.snapshots = false;
    } else if (a == "--http-threads") {
      const auto& v = value();
      if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 3 ||
          std::stoul(v) < 1 || std::stoul(v) > 64)
        throw Error("--http-threads: must be a number from 1 to 64, got \"" + v + "\"");
      c.http_threads = static_cast<unsigned>(std::stoul(v));
    } else {
      throw Error("unknown flag \"" + a + "\" (see thawd --help)");
    }
  }
  return c;
}

std::string daemon_help() {
  return R"(Usage: thawd [flags]

thawd runs functions in isolated instances and serves AWS Lambda's API over HTTP.

Flags:
  --listen HOST:PORT     address of the HTTP API (default 127.0.0.1:8080)
  --state-dir DIR        where thawd keeps its state: pid file, database,
                         code store, snapshots (default .thaw)
  --http-threads N       threads serving HTTP (default 2)
  --runtimes-dir DIR     where the runtime bootstraps are (default: images/runtimes
                         of the source tree thawd was built from)
  --no-snapshots         never checkpoint or restore; every start is cold
  --cgroup-parent PATH   cgroup under which instances get theirs (default thaw)
  --version              print thaw's version, the CRIU found and whether
                         `criu check` passes, the cgroup layout and the kernel
  --help                 print this help
)";
}

}  // namespace thaw::invoker
