#pragma once
// thawd's configuration, parsed once from the command line.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "invoker/functions/id_pool.hpp"
#include "sandbox/egress_policy.hpp"

namespace thaw::invoker {

struct DaemonConfig {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  std::string state_dir = ".thaw";
  unsigned http_threads = 2;
  std::string runtimes_dir;  // empty: the runtimes of the source tree thawd was built from
  bool snapshots = true;
  std::string criu;             // the criu binary; empty: the first in the usual places
  bool emulator_path = false;   // the Runtime Interface Emulator's path, without credentials
  bool public_trigger = false;  // /function/... without a credential (behind a gateway)
  std::string cgroup_parent = "thaw";
  unsigned max_concurrency = 32;              // invocations at once on this host
  uint64_t memory_budget_mb = 0;              // 0: 80% of the host's memory
  unsigned keep_alive_s = 600;                // idle instances live this long
  unsigned async_workers = 2;                 // threads running Event invocations
  uint64_t retry_backoff_ms = 60000;          // first retry of a failed event; doubles after
  uint64_t log_cap_mb = 8;                    // function logs kept per function
  uint64_t max_output_kb = 1024;              // an instance's output kept per invocation
  uint64_t max_connections = 1024;            // HTTP connections at once
  uint64_t max_connections_per_client = 128;  // ... from one address
  uint64_t max_buffered_body_mb = 512;        // request bodies held at once
  unsigned read_timeout_s = 30;    // a request's headers and body must arrive within this
  uint64_t warm_memory_mb = 256;   // kept warm for restores; 0: off
  uint64_t snapshot_cache_mb = 0;  // memory-backed copies of snapshots; 0: off
  unsigned criu_spares = 4;        // criu processes started ahead of restores
  uint32_t id_pool_first = IdPoolConfig{}.first;    // host ids for functions (id_pool.hpp)
  uint32_t id_pool_ranges = IdPoolConfig{}.ranges;  // ... one range per function
  // Egress (sandbox/host_egress.hpp): the instances' subnet (none: off), the
  // policy of functions that state none, the resolvers
  // instances ask (unset: the host's own, from /etc/resolv.conf), and
  // host-local destinations opened to instances.
  std::optional<sandbox::Ipv4Network> egress_subnet = sandbox::Ipv4Network{0x0ad50000, 16};
  sandbox::EgressPolicy egress_default;
  std::optional<std::vector<uint32_t>> egress_dns;
  std::vector<sandbox::EgressRule> egress_host_allow;
  std::string config_file;  // flags given there first, the command line wins
  bool show_version = false;
  bool show_help = false;
};

// Parses argv (after the file named by --config, a JSON object whose keys are
// the long flags without dashes: {"listen": "0.0.0.0:8080", "keep-alive": 60});
// throws Error with the flag and the reason on bad input.
DaemonConfig parse_daemon_args(const std::vector<std::string>& args);
std::string daemon_help();

// "127.0.0.1:8080", "[::1]:8080", "localhost:8080" -> an IP address and a
// port; throws Error.
std::pair<std::string, uint16_t> parse_host_port(const std::string& text);

}  // namespace thaw::invoker
