// thawd: the invoker daemon.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "invoker/api/api.hpp"
#include "invoker/api/auth/admin_token.hpp"
#include "invoker/daemon/daemon_config.hpp"
#include "invoker/http/http_server.hpp"
#include "invoker/invocation/async_invoker.hpp"
#include "invoker/invocation/event_queue.hpp"
#include "invoker/invocation/function_service.hpp"
#include "invoker/observability/function_logs.hpp"
#include "invoker/observability/log.hpp"
#include "invoker/observability/log_followers.hpp"
#include "invoker/observability/metrics.hpp"
#include "invoker/observability/system_facts.hpp"
#include "snapshots/criu.hpp"
#include "snapshots/criu_environment.hpp"
#include "thaw/error.hpp"
#include "thaw/unique_fd.hpp"

namespace asio = boost::asio;
using namespace thaw;
using namespace thaw::invoker;

namespace {

// The host's resolvers that instances can reach.
std::vector<uint32_t> host_nameservers() {
  std::ifstream in("/etc/resolv.conf");
  std::stringstream text;
  text << in.rdbuf();
  return sandbox::reachable_nameservers(text.str());
}

uint64_t host_memory_mb() {
  const auto pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / (1024 * 1024);
}

// Gauges read when /metrics is scraped.
void register_gauges(FunctionService& functions, EventQueue& queue) {
  auto& m = functions.metrics();
  m.gauge_callback("thaw_instances", "Live instances, by function and state.", [&functions] {
    std::map<std::pair<std::string, std::string>, double> counts;
    for (const auto& i : functions.instances()) ++counts[{i.function, i.state}];
    std::vector<std::pair<Labels, double>> out;
    for (const auto& [key, n] : counts)
      out.push_back({{{"function", key.first}, {"state", key.second}}, n});
    return out;
  });
  m.gauge_callback("thaw_async_queue_depth", "Event invocations queued or running.", [&queue] {
    return std::vector<std::pair<Labels, double>>{{{}, static_cast<double>(queue.depth())}};
  });
  m.gauge_callback("thaw_invocations_in_flight", "Invocations running now.", [&functions] {
    return std::vector<std::pair<Labels, double>>{
        {{}, static_cast<double>(functions.scheduler().in_flight())}};
  });
  m.gauge_callback(
      "thaw_instance_memory_bytes", "MemorySize of live instances, summed.", [&functions] {
        return std::vector<std::pair<Labels, double>>{
            {{}, static_cast<double>(functions.scheduler().memory_in_use_mb()) * 1048576.0}};
      });
  if (const auto* warm = functions.warm_memory()) {
    m.gauge_callback("thaw_warm_memory_bytes",
                     "Warm memory thawd can free for the next restores (--warm-memory-mb).",
                     [warm] {
                       return std::vector<std::pair<Labels, double>>{
                           {{}, static_cast<double>(warm->releasable())}};
                     });
    m.counter_callback("thaw_warm_memory_released_bytes_total",
                       "Warm memory freed right before restores.", [warm] {
                         return std::vector<std::pair<Labels, double>>{
                             {{}, static_cast<double>(warm->released_total())}};
                       });
  }
  m.counter_callback(
      "thaw_snapshot_events_total",
      "Snapshot outcomes: restores (hits, and of those the ones handed to a criu "
      "started ahead), cold starts (misses), fallbacks (restore failed, served cold), "
      "snapshots made and failed.",
      [&functions] {
        const auto& c = functions.factory().counters();
        return std::vector<std::pair<Labels, double>>{
            {{{"event", "hit"}}, static_cast<double>(c.restores.load())},
            {{{"event", "hit_criu_ahead"}}, static_cast<double>(c.restores_with_spare.load())},
            {{{"event", "miss"}}, static_cast<double>(c.cold_starts.load())},
            {{{"event", "fallback"}}, static_cast<double>(c.fallbacks.load())},
            {{{"event", "made"}}, static_cast<double>(c.snapshots_made.load())},
            {{{"event", "failed"}}, static_cast<double>(c.snapshot_failures.load())}};
      });
}

// One thawd per state directory: an flock on its pid file, which the kernel
// releases the moment the holder dies (a pid checked with kill(pid, 0) still
// answers while a killed thawd is torn down, and may be another process's
// later). The descriptor stays open, close-on-exec, for thawd's life.
UniqueFd lock_state_file(const std::filesystem::path& path) {
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) throw_errno("open " + path.string());
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::ifstream in(path);
    pid_t other = 0;
    in >> other;
    if (err == EWOULDBLOCK)
      throw Error("another thawd (pid " + std::to_string(other) +
                  ") holds this state directory's lock " + path.string());
    throw_errno("lock " + path.string(), err);
  }
  const auto pid = std::to_string(getpid()) + "\n";
  if (fchmod(fd.get(), 0600) != 0 || ftruncate(fd.get(), 0) != 0 ||
      pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    throw_errno("write " + path.string());
  return fd;
}

// A stopping thawd removes the file: a lock taken on the removed file holds
// nothing, so the file is opened again until the lock is on the one there.
UniqueFd claim_state_lock(const std::filesystem::path& path) {
  for (;;) {
    auto fd = lock_state_file(path);
    struct stat held {
    }, named{};
    if (fstat(fd.get(), &held) == 0 && stat(path.c_str(), &named) == 0 &&
        held.st_ino == named.st_ino && held.st_dev == named.st_dev)
      return fd;
  }
}

// Removes the pid file and says "stopped" when thawd's last part has shut
// down: declared right after the lock, it is destroyed after every later
// local (async workers finishing, instances ended, cgroups removed), so a
// second thawd cannot take the directory while this one still works in it.
struct StoppedLast {
  std::filesystem::path pid_file;
  explicit StoppedLast(std::filesystem::path path) : pid_file(std::move(path)) {}
  StoppedLast(const StoppedLast&) = delete;
  StoppedLast& operator=(const StoppedLast&) = delete;
  ~StoppedLast() {
    std::error_code ec;
    std::filesystem::remove(pid_file, ec);
    log_event("info", "stopped");
  }
};

// A private mount namespace with a tmpfs /run, made before any thread, so
// CRIU keeps its kernel-feature cache and instance mounts never leak to the
// host. Without one thawd still runs (no snapshot cache); `criu_env` says why.
struct MountSetup {
  bool private_mounts = false;
  std::string criu_env;
};

MountSetup prepare_mounts() {
  try {
    return {true, snapshots::prepare_criu_environment()};
  } catch (const Error& e) {
    return {false, std::string("not prepared: ") + e.what()};
  }
}

// Whether snapshots are on: asked for, and a CRIU new enough that passes its
// check. When asked for and not possible, the log says why, once.
bool snapshots_possible(const DaemonConfig& config, const SystemFacts& facts) {
  const bool ok = config.snapshots && !facts.criu_path.empty() && facts.criu_check_passed &&
                  snapshots::version_at_least(facts.criu_version, snapshots::kMinCriuVersion);
  if (ok && facts.huge_pages.rfind("never", 0) == 0)
    log_event("info", "restore_memory_hint",
              {{"transparent_huge_pages", facts.huge_pages},
               {"hint",
                "transparent huge pages are off, so restored heaps come back in 4 KiB pages "
                "instead of the 2 MiB pages runtimes advise before a snapshot (a 16 MiB heap: "
                "4096 pages instead of 8). /sys/kernel/mm/transparent_hugepage/enabled = "
                "madvise is enough. It is a host-wide setting: the operator's call."}});
  if (config.snapshots && !ok)
    log_event("warn", "criu_unavailable",
              {{"criu", facts.criu_path},
               {"version", facts.criu_version},
               {"problem", facts.criu_problem.substr(0, 500)},
               {"reason", "snapshots are off: CRIU 4.2+ with a passing criu check is needed"}});
  return ok;
}

// The snapshot cache, mounted when asked for and possible: its directory, or
// "" (and `status` says why it is off).
std::string snapshot_cache_dir(const DaemonConfig& config, const MountSetup& mounts, bool criu_ok,
                               std::string& status) {
  status = "off";
  if (!config.snapshot_cache_mb || !criu_ok) return "";
  try {
    if (!mounts.private_mounts)
      throw Error("thawd has no mount namespace of its own: " + mounts.criu_env);
    status = snapshots::mount_snapshot_cache(config.snapshot_cache_mb << 20);
    return status;
  } catch (const Error& e) {
    status = std::string("off: ") + e.what();
    log_event(
        "warn", "snapshot_cache_unavailable",
        {{"reason", e.what()}, {"effect", "restores read snapshots from the state directory"}});
    return "";
  }
}

// The service's options from thawd's flags.
ServiceOptions service_options(const DaemonConfig& config, const MountSetup& mounts,
                               const std::string& criu, std::string& snapshot_cache) {
  ServiceOptions options;
  options.state_dir = config.state_dir;
  options.runtimes_dir =
      config.runtimes_dir.empty() ? std::string(THAW_RUNTIMES_DIR) : config.runtimes_dir;
  if (mounts.private_mounts) {
    options.state_dir =
        snapshots::expose_directory(std::filesystem::absolute(config.state_dir).string(), "state");
    options.runtimes_dir = snapshots::expose_directory(
        std::filesystem::absolute(options.runtimes_dir).string(), "runtimes");
  }
  options.criu = criu;
  options.cgroup_parent = config.cgroup_parent;
  options.limits.max_concurrency = config.max_concurrency;
  // The snapshot cache's pages stay in memory (a tmpfs: only swap could take
  // them): a cache of more than half the host is refused, and the default
  // memory budget for instances leaves it out.
  if (config.snapshot_cache_mb > host_memory_mb() / 2)
    throw Error("--snapshot-cache-mb: " + std::to_string(config.snapshot_cache_mb) +
                " MiB is more than half of this host's " + std::to_string(host_memory_mb()) +
                " MiB of memory");
  options.limits.keep_alive = std::chrono::seconds(config.keep_alive_s);
  options.log_cap_bytes = config.log_cap_mb << 20;
  options.max_output_bytes = config.max_output_kb << 10;
  options.criu_spares = config.criu_spares;
  options.id_pool = {config.id_pool_first, config.id_pool_ranges};
  options.egress.subnet = config.egress_subnet;
  options.egress.default_policy = config.egress_default;
  options.egress.host_allow = config.egress_host_allow;
  options.egress.dns = config.egress_dns ? *config.egress_dns : host_nameservers();
  check_pool_is_unused(options.id_pool);
  options.warm_memory_bytes = config.warm_memory_mb << 20;
  options.snapshot_cache_dir = snapshot_cache_dir(config, mounts, !criu.empty(), snapshot_cache);
  options.limits.memory_budget_mb =
      config.memory_budget_mb
          ? config.memory_budget_mb
          : host_memory_mb() * 8 / 10 -
                (options.snapshot_cache_dir.empty() ? 0 : config.snapshot_cache_mb);
  return options;
}

HttpLimits http_limits(const DaemonConfig& config, const Api& api) {
  HttpLimits limits;
  limits.body_bytes = request_body_limit;
  limits.read_timeout = std::chrono::seconds(config.read_timeout_s);
  limits.check_header = [&api](const Request& header) { return api.refuse_headers(header); };
  limits.max_connections = config.max_connections;
  limits.max_connections_per_address = config.max_connections_per_client;
  limits.max_buffered_body_bytes = config.max_buffered_body_mb << 20;
  return limits;
}

void register_http_gauges(Metrics& metrics, const HttpServer& server,
                          const LogFollowers& followers) {
  metrics.gauge_callback("thaw_http_connections", "HTTP connections open now.", [&server] {
    return std::vector<std::pair<Labels, double>>{
        {{}, static_cast<double>(server.load().connections)}};
  });
  metrics.gauge_callback("thaw_http_buffered_body_bytes",
                         "Request body bytes reserved by connections now.", [&server] {
                           return std::vector<std::pair<Labels, double>>{
                               {{}, static_cast<double>(server.load().buffered_body_bytes)}};
                         });
  metrics.gauge_callback("thaw_log_followers", "Log long polls waiting now.", [&followers] {
    return std::vector<std::pair<Labels, double>>{{{}, static_cast<double>(followers.waiting())}};
  });
  metrics.counter_callback(
      "thaw_http_refused_total", "Connections and bodies refused with 503 over thawd's caps.",
      [&server] {
        const auto l = server.load();
        return std::vector<std::pair<Labels, double>>{
            {{{"reason", "connections"}}, static_cast<double>(l.refused_connections)},
            {{{"reason", "buffered_bodies"}}, static_cast<double>(l.refused_bodies)}};
      });
}

// A request is handled on the I/O thread that read it, and an invocation
// blocks that thread for as long as the function runs: so there are as many
// threads as invocations may run at once, plus some for everything else
// (requests over the limit are refused at once). Handling in place saves two
// thread hand-offs per request over a separate pool of workers.
void serve(asio::io_context& io, unsigned threads_wanted) {
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < threads_wanted; ++i) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
}

int run(const DaemonConfig& config) {
  const auto mounts = prepare_mounts();  // before any thread
  std::filesystem::create_directories(config.state_dir);
  const auto pid_file = std::filesystem::path(config.state_dir) / "thawd.pid";
  const auto state_lock = claim_state_lock(pid_file);
  const StoppedLast stopped_last{pid_file};

  const auto facts = gather_system_facts(config.criu);
  const bool criu_ok = snapshots_possible(config, facts);
  std::string snapshot_cache;
  const auto options =
      service_options(config, mounts, criu_ok ? facts.criu_path : "", snapshot_cache);
  FunctionService functions(options);
  EventQueue queue((std::filesystem::path(config.state_dir) / "thaw.db").string(),
                   std::chrono::milliseconds(config.retry_backoff_ms));
  AsyncInvoker async(
      queue,
      [&functions](const std::string& name, const std::string& payload, const std::string& id) {
        return functions.invoke(name, payload, {id, std::nullopt});
      },
      [&functions](const std::string& name) { return functions.catalog().get(name); },
      config.async_workers);
  register_gauges(functions, queue);

  const auto token_path = std::filesystem::absolute(config.state_dir) / "admin-token";
  const auto token = load_or_create_admin_token(config.state_dir);
  const auto access_key = load_or_create_access_key(config.state_dir);
  // Before the API and the log followers: they post answers to its sessions
  // until they are destroyed, so it must outlive them.
  asio::io_context io;
  Api api(&functions, token, &async);
  api.add_access_key(access_key.id, access_key.secret);
  if (config.emulator_path) api.enable_emulator_path();
  if (config.public_trigger) api.make_trigger_public();
  // Log long polls wait here, not on HTTP threads; bounded in number.
  LogFollowers followers(functions.logs(), 4096);
  api.set_log_followers(&followers);

  HttpServer server(
      io, {asio::ip::make_address(config.listen_host), config.listen_port},
      [&api](const Request& r, Reply reply) { api.handle(r, std::move(reply)); },
      http_limits(config, api));
  register_http_gauges(functions.metrics(), server, followers);
  api.set_ready(true);
  const auto ep = server.local_endpoint();
  log_event("info", "listening",
            {{"address", ep.address().to_string()},
             {"port", ep.port()},
             {"state_dir", std::filesystem::absolute(config.state_dir).string()},
             {"pid", getpid()},
             {"snapshots", criu_ok},
             {"max_concurrency", options.limits.max_concurrency},
             {"memory_budget_mb", options.limits.memory_budget_mb},
             {"keep_alive_s", config.keep_alive_s},
             {"warm_memory_mb", functions.warm_memory() ? config.warm_memory_mb : 0},
             {"snapshot_cache", snapshot_cache},
             {"admin_token", token_path.string()},
             {"aws_credentials",
              (std::filesystem::absolute(config.state_dir) / "aws-credentials").string()},
             {"criu_environment", mounts.criu_env}});

  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log_event("info", "stopping", {{"signal", sig}});
    api.set_ready(false);
    functions.logs().stop_waiting();  // log followers' long polls end now
    followers.stop();
    server.stop();
  });
  serve(io, config.max_concurrency + config.http_threads);
  // What is left of the stop (events finishing, instances ending) is not cut
  // short by a second signal: a supervisor that must end it sends SIGKILL.
  signals.clear();
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto config = parse_daemon_args(std::vector<std::string>(argv + 1, argv + argc));
    if (config.show_help) {
      std::cout << daemon_help();
      return 0;
    }
    if (config.show_version) {
      std::cout << format_version_report("thawd", gather_system_facts(config.criu));
      return 0;
    }
    return run(config);
  } catch (const std::exception& e) {
    std::cerr << "thawd: " << e.what() << "\n";
    return 2;
  }
}
