#include "invoker/daemon/daemon_config.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <tuple>

#include "thaw/error.hpp"

namespace thaw::invoker {

namespace {

uint64_t number(const std::string& flag, const std::string& v, uint64_t min, uint64_t max) {
  if (v.empty() || v.size() > 12 || v.find_first_not_of("0123456789") != std::string::npos ||
      std::stoull(v) < min || std::stoull(v) > max)
    throw Error(flag + ": must be a number from " + std::to_string(min) + " to " +
                std::to_string(max) + ", got \"" + v + "\"");
  return std::stoull(v);
}

void apply_flags(DaemonConfig& c, const std::vector<std::string>& args);

// The config file as flags: {"listen": "h:p", "no-snapshots": true} ->
// --listen h:p --no-snapshots.
std::vector<std::string> flags_from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("--config: cannot read " + path);
  const auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw Error("--config: " + path + " is not a JSON object");
  std::vector<std::string> args;
  for (const auto& [key, value] : j.items()) {
    if (key == "config") throw Error("--config: " + path + " may not name another config file");
    if (value.is_boolean()) {
      if (value.get<bool>()) {
        args.push_back("--" + key);
        continue;
      }
      // false leaves a switch off, as not naming it does; but the key must
      // be one of thawd's switches, or a typo would pass unseen.
      try {
        DaemonConfig scratch;
        apply_flags(scratch, {"--" + key});
      } catch (const Error& e) {
        throw Error("--config: " + path + ": \"" + key +
                    "\": false is only for switches such as no-snapshots (" + e.what() + ")");
      }
    } else if (value.is_string()) {
      args.push_back("--" + key);
      args.push_back(value.get<std::string>());
    } else if (value.is_number_unsigned()) {
      args.push_back("--" + key);
      args.push_back(std::to_string(value.get<uint64_t>()));
    } else {
      throw Error("--config: " + path + ": \"" + key + "\" must be a string, a number or true");
    }
  }
  return args;
}

void apply_flags(DaemonConfig& c, const std::vector<std::string>& args) {
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
    } else if (a == "--config") {
      value();  // read before the other flags
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
    } else if (a == "--criu") {
      c.criu = value();
      if (c.criu.empty() || c.criu[0] != '/')
        throw Error("--criu: must be an absolute path, got \"" + c.criu + "\"");
    } else if (a == "--no-snapshots") {
      c.snapshots = false;
    } else if (a == "--emulator-path") {
      c.emulator_path = true;
    } else if (a == "--public-trigger") {
      c.public_trigger = true;
    } else if (a == "--http-threads") {
      c.http_threads = static_cast<unsigned>(number(a, value(), 1, 64));
    } else if (a == "--max-concurrency") {
      c.max_concurrency = static_cast<unsigned>(number(a, value(), 1, 10000));
    } else if (a == "--memory-budget-mb") {
      c.memory_budget_mb = number(a, value(), 128, 1ull << 30);
    } else if (a == "--keep-alive") {
      c.keep_alive_s = static_cast<unsigned>(number(a, value(), 1, 86400));
    } else if (a == "--async-workers") {
      c.async_workers = static_cast<unsigned>(number(a, value(), 1, 64));
    } else if (a == "--retry-backoff-ms") {
      c.retry_backoff_ms = number(a, value(), 1, 3600000);
    } else if (a == "--read-timeout") {
      c.read_timeout_s = static_cast<unsigned>(number(a, value(), 1, 300));
    } else if (a == "--warm-memory-mb") {
      c.warm_memory_mb = number(a, value(), 0, 65536);
    } else if (a == "--snapshot-cache-mb") {
      c.snapshot_cache_mb = number(a, value(), 0, 1 << 20);
    } else if (a == "--log-cap-mb") {
      c.log_cap_mb = number(a, value(), 1, 1024);
    } else if (a == "--max-connections") {
      c.max_connections = number(a, value(), 1, 1 << 20);
    } else if (a == "--max-connections-per-client") {
      c.max_connections_per_client = number(a, value(), 1, 1 << 20);
    } else if (a == "--max-buffered-body-mb") {
      c.max_buffered_body_mb = number(a, value(), 8, 1 << 20);
    } else if (a == "--max-output-kb") {
      c.max_output_kb = number(a, value(), 4, 1024 * 1024);
    } else if (a == "--id-pool-first") {
      c.id_pool_first = static_cast<uint32_t>(number(a, value(), 0, 0xfffffffe));
    } else if (a == "--id-pool-ranges") {
      c.id_pool_ranges = static_cast<uint32_t>(number(a, value(), 1, 65535));
    } else {
      throw Error("unknown flag \"" + a + "\" (see thawd --help)");
    }
  }
}

}  // namespace

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
  for (size_t i = 0; i < args.size(); ++i)
    if (args[i] == "--config") {
      if (i + 1 >= args.size()) throw Error("--config: needs a value");
      c.config_file = args[i + 1];
    }
  if (!c.config_file.empty()) {
    try {
      apply_flags(c, flags_from_file(c.config_file));
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " (in " + c.config_file + ")");
    }
  }
  apply_flags(c, args);
  validate(IdPoolConfig{c.id_pool_first, c.id_pool_ranges});
  return c;
}

std::string daemon_help() {
  return R"(Usage: thawd [flags]

thawd runs functions in isolated instances and serves AWS Lambda's API over HTTP.

Flags:
  --listen HOST:PORT       address of the HTTP API (default 127.0.0.1:8080)
  --state-dir DIR          where thawd keeps its state: pid file, database,
                           code store, snapshots, logs (default .thaw)
  --http-threads N         threads for requests other than invocations, on top of
                           one per invocation that may run (default 2)
  --max-concurrency N      invocations running at once on this host; more get
                           429 TooManyRequestsException (default 32)
  --memory-budget-mb MB    the sum of live instances' MemorySize stays under this;
                           idle instances are evicted least recently used first
                           (default 80% of the host's memory)
  --keep-alive SECONDS     idle instances are reaped after this (default 600)
  --async-workers N        threads running Event invocations (default 2)
  --retry-backoff-ms MS    wait before retrying a failed Event invocation; doubles
                           with each retry (default 60000, as Lambda's first retry)
  --log-cap-mb MB          function logs kept per function (default 8)
  --max-connections N      HTTP connections at once (default 1024); past it 503
  --max-connections-per-client N
                           from one client address (default 128)
  --max-buffered-body-mb MB
                           request bodies buffered at once, all connections
                           (default 512); past it 503
  --max-output-kb KB       output kept per invocation, the rest dropped and counted
                           (default 1024)
  --id-pool-first UID      first host uid and gid of the ranges functions get, one
                           of 65536 ids per function; no host user, group or
                           /etc/subuid range may use them (default 1048576)
  --id-pool-ranges N       how many ranges, so how many functions (default 4096)
  --read-timeout SECONDS   a request's headers and body must arrive within this;
                           slower clients are disconnected (default 30)
  --runtimes-dir DIR       where the runtimes are (default: images/runtimes of the
                           build tree thawd was built in, assembled by the build)
  --no-snapshots           never checkpoint or restore; every start is cold
  --criu PATH              the criu binary for snapshots (default: the first of
                           /usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin,
                           /sbin); without a usable one (4.2 or newer, `criu
                           check` passing), thawd says so once and starts cold
  --warm-memory-mb MB      memory thawd keeps touched and frees right before each
                           restore, so restores need not wait for the host of a VM
                           to hand back memory it reclaimed (default 256; 0: off)
  --snapshot-cache-mb MB   keep a copy of each snapshot in a memory file system of
                           this size, private to thawd, and restore from it; the
                           copy under the state directory stays the durable one.
                           Snapshots that do not fit are read from disk. At most
                           half of the host's memory; the default memory budget
                           leaves it out (default 0: off; restores then read the
                           disk copy through the page cache, which memory
                           pressure can evict)
  --public-trigger         the HTTP trigger (/function/NAME/...) needs no credential:
                           for thawds behind a gateway that authenticates callers
                           (scripts/gateway-config); everything else still does
  --emulator-path          for local testing: POST /2015-03-31/functions/function/invocations
                           invokes the only deployed function without a credential,
                           as the Lambda Runtime Interface Emulator does
  --cgroup-parent PATH     cgroup under which instances get theirs (default thaw)
  --config FILE            a JSON object of flags, e.g. {"listen": "0.0.0.0:8080",
                           "keep-alive": 60, "no-snapshots": true}; flags given on
                           the command line win
  --version                print thaw's version, the CRIU found and whether
                           `criu check` passes, the cgroup layout and the kernel
  --help                   print this help
)";
}

}  // namespace thaw::invoker
