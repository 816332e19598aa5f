#include "invoker/daemon/daemon_config.hpp"

#include <arpa/inet.h>
#include <netdb.h>

#include <CLI/CLI.hpp>
#include <boost/asio/ip/address.hpp>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>
#include <tuple>

#include "thaw/error.hpp"

namespace thaw::invoker {

namespace {

constexpr const char* kAbout =
    "thawd runs functions in isolated instances and serves AWS Lambda's API over HTTP.";

// Whole numbers in [min, max], said as thawd has always said it (CLI11 puts
// the flag's name in front).
CLI::Validator whole_number(uint64_t min, uint64_t max) {
  return CLI::Validator(
      [min, max](std::string& v) -> std::string {
        if (v.empty() || v.size() > 12 || v.find_first_not_of("0123456789") != std::string::npos ||
            std::stoull(v) < min || std::stoull(v) > max)
          return "must be a number from " + std::to_string(min) + " to " + std::to_string(max) +
                 ", got \"" + v + "\"";
        return "";
      },
      "");
}

// A check that returns why `v` is refused, or "" when it is not.
CLI::Validator rule(std::function<std::string(const std::string&)> why) {
  return CLI::Validator([why = std::move(why)](std::string& v) { return why(v); }, "");
}

// `help` with "{default}" replaced by `value`: the defaults --help shows are
// DaemonConfig's own (daemon_help describes a fresh one), not a second copy.
template <typename T>
std::string filled(std::string help, const T& value) {
  const auto at = help.find("{default}");
  if (at == std::string::npos) return help;
  std::ostringstream text;
  text << value;
  return help.replace(at, std::string_view("{default}").size(), text.str());
}

template <typename T>
void number_flag(CLI::App& app, const std::string& flag, T& into, uint64_t min, uint64_t max,
                 const std::string& name, const std::string& help) {
  app.add_option(flag, into, filled(help, into))->type_name(name)->check(whole_number(min, max));
}

// Every flag, bound to `c`: parsing writes only the flags given, so a second
// parse (the command line after the config file) overrides the first.
void describe(CLI::App& app, DaemonConfig& c) {
  app.set_help_flag();  // --help is a flag like others; main prints the help
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.get_formatter()->column_width(25);
  app.add_option_function<std::string>(
         "--listen",
         [&c](const std::string& v) {
           std::tie(c.listen_host, c.listen_port) = parse_host_port(v);
         },
         filled("address of the HTTP API (default {default}); IPv6\n"
                "in brackets ([::1]:8080), a name binds its first address",
                c.listen_host + ":" + std::to_string(c.listen_port)))
      ->type_name("HOST:PORT");
  app.add_option("--state-dir", c.state_dir,
                 filled("where thawd keeps its state: pid file, database,\n"
                        "code store, snapshots, logs (default {default})",
                        c.state_dir))
      ->type_name("DIR")
      ->check(rule([](const std::string& v) { return v.empty() ? "must not be empty" : ""; }));
  number_flag(app, "--http-threads", c.http_threads, 1, 64, "N",
              "threads for requests other than invocations, on top of\n"
              "one per invocation that may run (default {default})");
  number_flag(app, "--max-concurrency", c.max_concurrency, 1, 10000, "N",
              "invocations running at once on this host; more get\n"
              "429 TooManyRequestsException (default {default})");
  number_flag(app, "--memory-budget-mb", c.memory_budget_mb, 128, 1ull << 30, "MB",
              "the sum of live instances' MemorySize stays under this;\n"
              "idle instances are evicted least recently used first\n"
              "(default 80% of the host's memory)");
  number_flag(app, "--keep-alive", c.keep_alive_s, 1, 86400, "SECONDS",
              "idle instances are reaped after this (default {default})");
  number_flag(app, "--async-workers", c.async_workers, 1, 64, "N",
              "threads running Event invocations (default {default})");
  number_flag(app, "--retry-backoff-ms", c.retry_backoff_ms, 1, 3600000, "MS",
              "wait before retrying a failed Event invocation; doubles\n"
              "with each retry (default {default}, as Lambda's first retry)");
  number_flag(app, "--log-cap-mb", c.log_cap_mb, 1, 1024, "MB",
              "function logs kept per function (default {default})");
  number_flag(app, "--max-connections", c.max_connections, 1, 1 << 20, "N",
              "HTTP connections at once (default {default}); past it 503");
  number_flag(app, "--max-connections-per-client", c.max_connections_per_client, 1, 1 << 20, "N",
              "from one client address (default {default})");
  number_flag(app, "--max-buffered-body-mb", c.max_buffered_body_mb, 8, 1 << 20, "MB",
              "request bodies buffered at once, all connections\n"
              "(default {default}); past it 503");
  number_flag(app, "--max-output-kb", c.max_output_kb, 4, 1024 * 1024, "KB",
              "output kept per invocation, the rest dropped and counted\n"
              "(default {default})");
  number_flag(app, "--id-pool-first", c.id_pool_first, 0, 0xfffffffe, "UID",
              "first host uid and gid of the ranges functions get, one\n"
              "of 65536 ids per function; no host user, group or\n"
              "/etc/subuid range may use them (default {default})");
  number_flag(app, "--id-pool-ranges", c.id_pool_ranges, 1, 65535, "N",
              "how many ranges, so how many functions (default {default})");
  number_flag(app, "--read-timeout", c.read_timeout_s, 1, 300, "SECONDS",
              "a request's headers and body must arrive within this;\n"
              "slower clients are disconnected (default {default})");
  app.add_option("--runtimes-dir", c.runtimes_dir,
                 "where the runtimes are (default: images/runtimes of the\n"
                 "build tree thawd was built in, assembled by the build)")
      ->type_name("DIR");
  number_flag(app, "--criu-spares", c.criu_spares, 0, 64, "N",
              "criu processes started ahead of restores, each for the\n"
              "snapshot restored last, holding its process tree read\n"
              "(default {default}; 0: every restore starts criu)");
  app.add_option_function<std::string>(
         "--egress-subnet",
         [&c](const std::string& v) {
           if (v == "none") {
             c.egress_subnet.reset();
             return;
           }
           const auto n =
               with_context("--egress-subnet", [&] { return sandbox::parse_ipv4_network(v); });
           if (n.prefix > 30 || n.prefix < 8) throw Error("--egress-subnet: a /8 to /30, got " + v);
           c.egress_subnet = n;
         },
         filled("addresses for instances' links to the host, two per\n"
                "instance; \"none\" turns egress off (default {default})",
                c.egress_subnet ? c.egress_subnet->text() : "none"))
      ->type_name("CIDR");
  app.add_option_function<std::string>(
         "--egress-default",
         [&c](const std::string& v) {
           c.egress_default =
               with_context("--egress-default", [&] { return sandbox::parse_egress_policy(v); });
         },
         filled("egress of functions that state no policy: \"none\" or\n"
                "CIDR[:PORT[-PORT]],... (default {default})",
                c.egress_default.text()))
      ->type_name("POLICY");
  app.add_option_function<std::string>(
         "--egress-dns",
         [&c](const std::string& v) {
           std::vector<uint32_t> servers;
           size_t at = 0;
           while (at <= v.size() && !v.empty()) {
             const auto comma = v.find(',', at);
             servers.push_back(with_context("--egress-dns", [&] {
               return sandbox::parse_ipv4_address(
                   v.substr(at, comma == std::string::npos ? v.npos : comma - at));
             }));
             if (comma == std::string::npos) break;
             at = comma + 1;
           }
           c.egress_dns = servers;
         },
         "resolvers instances with egress ask, comma-separated\n"
         "IPv4 addresses (default: the host's, from /etc/resolv.conf,\n"
         "but loopback ones)")
      ->type_name("ADDRESSES");
  app.add_option_function<std::string>(
         "--egress-allow-host",
         [&c](const std::string& v) {
           c.egress_host_allow = with_context("--egress-allow-host", [&] {
                                   return sandbox::parse_egress_policy(v);
                                 }).allow;
         },
         "host-local destinations instances may reach, as\n"
         "CIDR[:PORT[-PORT]],... (default none: thawd's ports and\n"
         "the host's services are refused to every instance)")
      ->type_name("RULES");
  app.add_flag_callback(
      "--no-snapshots", [&c] { c.snapshots = false; },
      "never checkpoint or restore; every start is cold");
  app.add_option("--criu", c.criu,
                 "the criu binary for snapshots (default: the first of\n"
                 "/usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin,\n"
                 "/sbin); without a usable one (4.2 or newer, `criu\n"
                 "check` passing), thawd says so once and starts cold")
      ->type_name("PATH")
      ->check(rule([](const std::string& v) {
        return v.empty() || v[0] != '/' ? "must be an absolute path, got \"" + v + "\"" : "";
      }));
  number_flag(app, "--warm-memory-mb", c.warm_memory_mb, 0, 65536, "MB",
              "memory thawd keeps touched and frees right before each\n"
              "restore, so restores need not wait for the host of a VM\n"
              "to hand back memory it reclaimed (default {default}; 0: off)");
  number_flag(app, "--snapshot-cache-mb", c.snapshot_cache_mb, 0, 1 << 20, "MB",
              "keep a copy of each snapshot in a memory file system of\n"
              "this size, private to thawd, and restore from it; the\n"
              "copy under the state directory stays the durable one.\n"
              "Snapshots that do not fit are read from disk. At most\n"
              "half of the host's memory; the default memory budget\n"
              "leaves it out (default {default}: off; restores then read the\n"
              "disk copy through the page cache, which memory\n"
              "pressure can evict)");
  app.add_flag("--public-trigger", c.public_trigger,
               "the HTTP trigger (/function/NAME/...) needs no credential:\n"
               "for thawds behind a gateway that authenticates callers\n"
               "(scripts/gateway-config); everything else still does");
  app.add_flag("--emulator-path", c.emulator_path,
               "for local testing: POST /2015-03-31/functions/function/invocations\n"
               "invokes the only deployed function without a credential,\n"
               "as the Lambda Runtime Interface Emulator does");
  app.add_option(
         "--cgroup-parent", c.cgroup_parent,
         filled("cgroup under which instances get theirs (default {default})", c.cgroup_parent))
      ->type_name("PATH")
      ->check(rule([](const std::string& v) {
        return v.empty() || v.find("..") != std::string::npos || v[0] == '/'
                   ? "must be a relative cgroup path without '..', got \"" + v + "\""
                   : "";
      }));
  app.add_option("--config", c.config_file,
                 "a JSON object of flags, e.g. {\"listen\": \"0.0.0.0:8080\",\n"
                 "\"keep-alive\": 60, \"no-snapshots\": true}; flags given on\n"
                 "the command line win")
      ->type_name("FILE");
  app.add_flag("--version", c.show_version,
               "print thaw's version, the CRIU found and whether\n"
               "`criu check` passes, the cgroup layout and the kernel");
  app.add_flag("-h,--help", c.show_help, "print this help");
}

// CLI11 parses; its errors become thawd's, which name the flag.
void apply_flags(DaemonConfig& c, const std::vector<std::string>& args) {
  CLI::App app(kAbout, "thawd");
  describe(app, c);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them so
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    throw Error(std::string(e.what()) + " (see thawd --help)");
  }
}

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

}  // namespace

namespace {

// The IP address --listen names: one as it is, an IPv6 one in brackets (as
// URLs write it), or a name's first address; throws Error.
std::string listen_address(const std::string& host) {
  boost::system::error_code ec;
  // [::1], as in URLs: an IPv6 address and nothing else.
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    auto inner = host.substr(1, host.size() - 2);
    if (boost::asio::ip::make_address_v6(inner, ec); ec)
      throw Error("--listen: \"" + host + "\" holds no IPv6 address");
    return inner;
  }
  if (boost::asio::ip::make_address(host, ec); !ec) return host;
  // A name (localhost): its first address, as the resolver gives it.
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0)
    throw Error("--listen: \"" + host + "\" is neither an IP address nor a name this host " +
                "resolves (" + gai_strerror(rc) + ")");
  char text[INET6_ADDRSTRLEN] = {};
  const void* raw =
      found->ai_family == AF_INET6
          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(found->ai_addr)->sin6_addr)
          : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr);
  inet_ntop(found->ai_family, raw, text, sizeof text);
  freeaddrinfo(found);
  return text;
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
  return {listen_address(text.substr(0, colon)), static_cast<uint16_t>(port)};
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
  CLI::App app(kAbout, "thawd");
  DaemonConfig scratch;
  describe(app, scratch);
  return app.help();
}

}  // namespace thaw::invoker
