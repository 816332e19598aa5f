#include "commands.hpp"

#include <unistd.h>

#include <boost/beast/core/detail/base64.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "invoker/function_requests.hpp"
#include "zip_directory.hpp"

namespace thaw::cli {

namespace {

using json = nlohmann::json;
constexpr const char* kFunctions = "/2015-03-31/functions";
constexpr size_t kMaxZipBytes = 50u * 1024 * 1024;  // Lambda's limit for a direct upload

// Prints thawd's error (Lambda's shape) and returns exit code 1.
int api_error(const Response& res) {
  const auto body = json::parse(res.body(), nullptr, false);
  const std::string type(res["x-amzn-ErrorType"]);
  const std::string message =
      body.is_object() ? body.value("message", res.body()) : std::string(res.body());
  std::cerr << "thaw: " << (type.empty() ? std::to_string(res.result_int()) : type) << ": "
            << message << "\n";
  return kApiError;
}

bool ok(const Response& res) {
  return res.result_int() >= 200 && res.result_int() < 300;
}

// Splits flags from positional arguments; `with_value` flags take the next one.
struct Parsed {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> flags;
  bool has(const std::string& f) const { return flags.count(f) > 0; }
  std::string value(const std::string& f, const std::string& fallback = "") const {
    const auto it = flags.find(f);
    return it == flags.end() ? fallback : it->second.back();
  }
};

Parsed parse(const Args& args, const std::set<std::string>& with_value,
             const std::set<std::string>& switches) {
  Parsed p;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a.size() > 2 && a.rfind("--", 0) == 0) {
      if (with_value.count(a)) {
        if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
        p.flags[a].push_back(args[++i]);
      } else if (switches.count(a)) {
        p.flags[a].push_back("");
      } else {
        throw UsageError("unknown flag " + a);
      }
    } else {
      p.positional.push_back(a);
    }
  }
  return p;
}

void need(const Parsed& p, size_t min, size_t max, const char* usage_line) {
  if (p.positional.size() < min || p.positional.size() > max)
    throw UsageError(std::string("usage: thaw ") + usage_line);
}

unsigned number(const std::string& flag, const std::string& v) {
  if (v.empty() || v.size() > 6 || v.find_first_not_of("0123456789") != std::string::npos)
    throw UsageError(flag + " must be a whole number, got \"" + v + "\"");
  return static_cast<unsigned>(std::stoul(v));
}

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

std::string from_base64(const std::string& text) {
  namespace b64 = boost::beast::detail::base64;
  std::string out(b64::decoded_size(text.size()), '\0');
  out.resize(b64::decode(out.data(), text.data(), text.size()).first);
  return out;
}

json get_json(Client& c, const std::string& target) {
  const auto res = c.request(http::verb::get, target);
  if (!ok(res)) throw Reported{api_error(res)};
  return json::parse(res.body());
}

// Waits for the function's snapshot (made in the background after a deploy).
void await_snapshot(Client& c, const std::string& name) {
  std::cerr << "building snapshot";
  for (int i = 0; i < 120; ++i) {
    const auto res = c.request(http::verb::get, "/thaw/v1/snapshots");
    if (res.result() == http::status::not_found) break;  // an older thawd
    if (ok(res)) {
      const auto listing = json::parse(res.body());
      for (const auto& s : listing["Snapshots"])
        if (s["FunctionName"] == name) {
          std::fprintf(stderr, " ready (%.1f MB)\n", s["SizeBytes"].get<double>() / 1048576.0);
          return;
        }
    }
    std::cerr << "." << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  std::cerr << " not ready yet; the first cold start will build it\n";
}

}  // namespace

int deploy(Client& c, const Args& args) {
  const auto p =
      parse(args, {"--runtime", "--handler", "--memory", "--timeout", "--env"}, {"--no-snapshot"});
  need(p, 2, 2,
       "deploy NAME DIR|ZIP --runtime R --handler H [--memory MB] [--timeout S] "
       "[--env K=V ...] [--no-snapshot]");
  const auto& name = p.positional[0];
  if (!p.has("--runtime"))
    throw UsageError("deploy needs --runtime (python3.11, nodejs20.x, provided)");
  if (!p.has("--handler") && p.value("--runtime") != "provided")
    throw UsageError("deploy needs --handler (file.function)");
  std::string zip;
  try {
    zip = read_package(p.positional[1]);
  } catch (const std::exception& e) {
    throw UsageError(e.what());
  }
  if (zip.size() > kMaxZipBytes)
    throw UsageError(p.positional[1] + ": the zip is " + std::to_string(zip.size() >> 20) +
                     " MB; Lambda takes at most 50 MB");
  json config = {{"Runtime", p.value("--runtime")}, {"Handler", p.value("--handler", "bootstrap")}};
  if (p.has("--memory")) config["MemorySize"] = number("--memory", p.value("--memory"));
  if (p.has("--timeout")) config["Timeout"] = number("--timeout", p.value("--timeout"));
  json env = json::object();
  if (p.flags.count("--env"))
    for (const auto& kv : p.flags.at("--env")) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) throw UsageError("--env wants KEY=VALUE, got " + kv);
      env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  config["Environment"] = {{"Variables", env}};
  config["SnapStart"] = {{"ApplyOn", p.has("--no-snapshot") ? "None" : "PublishedVersions"}};
  const auto code = invoker::to_base64(zip);

  auto create = config;
  create["FunctionName"] = name;
  create["Code"] = {{"ZipFile", code}};
  auto res = c.request(http::verb::post, kFunctions, create.dump());
  std::string verb = "created";
  if (res.result() == http::status::conflict) {
    // Deployed already: new code, then the configuration given now.
    res = c.request(http::verb::put, std::string(kFunctions) + "/" + name + "/code",
                    json{{"ZipFile", code}}.dump());
    if (ok(res))
      res = c.request(http::verb::put, std::string(kFunctions) + "/" + name + "/configuration",
                      config.dump());
    verb = "updated";
  }
  if (!ok(res)) return api_error(res);
  const auto out = json::parse(res.body());
  std::cout << name << " " << verb << " (" << out["Runtime"].get<std::string>() << ", "
            << out["MemorySize"] << " MB, code " << out["CodeSha256"].get<std::string>() << ")\n";
  if (!p.has("--no-snapshot") && p.value("--runtime") == "python3.11") await_snapshot(c, name);
  return kOk;
}

int invoke(Client& c, const Args& args) {
  const auto p = parse(args, {"--start-mode"}, {"--async", "--log"});
  need(p, 1, 2, "invoke NAME [JSON|-] [--async] [--log] [--start-mode cold|restore|warm]");
  std::string payload = p.positional.size() > 1 ? p.positional[1] : "{}";
  if (payload == "-") payload.assign(std::istreambuf_iterator<char>(std::cin), {});
  std::vector<std::pair<std::string, std::string>> headers;
  if (p.has("--async")) headers.push_back({"X-Amz-Invocation-Type", "Event"});
  if (p.has("--log")) headers.push_back({"X-Amz-Log-Type", "Tail"});
  if (p.has("--start-mode")) headers.push_back({"X-Thaw-Start-Mode", p.value("--start-mode")});
  // The function's own timeout may be up to 15 minutes, plus its start.
  const auto res =
      c.request(http::verb::post, std::string(kFunctions) + "/" + p.positional[0] + "/invocations",
                payload, headers, std::chrono::seconds(960));
  if (!ok(res)) return api_error(res);
  if (p.has("--async")) {
    std::cout << "accepted " << res["X-Amz-Request-Id"] << "\n";
    return kOk;
  }
  if (p.has("--log") && !res["X-Amz-Log-Result"].empty())
    std::cerr << from_base64(std::string(res["X-Amz-Log-Result"]));
  std::cout << res.body() << "\n";
  return res["X-Amz-Function-Error"].empty() ? kOk : kFunctionError;
}

int list(Client& c, const Args& args) {
  const auto p = parse(args, {}, {"--json"});
  need(p, 0, 0, "ls [--json]");
  json all = json::array();
  std::string marker;
  do {
    const auto page = get_json(
        c, std::string(kFunctions) + "/?MaxItems=50" + (marker.empty() ? "" : "&Marker=" + marker));
    for (const auto& f : page["Functions"]) all.push_back(f);
    marker = page.value("NextMarker", "");
  } while (!marker.empty());
  if (p.has("--json")) {
    std::cout << json{{"Functions", all}}.dump(2) << "\n";
    return kOk;
  }
  std::cout << pad("NAME", 24) << pad("RUNTIME", 12) << pad("MEMORY", 8) << pad("TIMEOUT", 9)
            << "LAST MODIFIED\n";
  for (const auto& f : all)
    std::cout << pad(f["FunctionName"], 24) << pad(f["Runtime"], 12)
              << pad(std::to_string(f["MemorySize"].get<int>()), 8)
              << pad(std::to_string(f["Timeout"].get<int>()) + "s", 9)
              << f["LastModified"].get<std::string>() << "\n";
  return kOk;
}

int get(Client& c, const Args& args) {
  const auto p = parse(args, {}, {});
  need(p, 1, 1, "get NAME");
  std::cout << get_json(c, std::string(kFunctions) + "/" + p.positional[0]).dump(2) << "\n";
  return kOk;
}

int remove(Client& c, const Args& args) {
  const auto p = parse(args, {}, {});
  need(p, 1, 1, "rm NAME");
  const auto res = c.request(http::verb::delete_, std::string(kFunctions) + "/" + p.positional[0]);
  if (!ok(res)) return api_error(res);
  std::cout << p.positional[0] << " deleted\n";
  return kOk;
}

namespace {
volatile std::sig_atomic_t g_stop = 0;
}

int logs(Client& c, const Args& args) {
  const auto p = parse(args, {}, {"--follow", "-f"});
  need(p, 1, 1, "logs NAME [--follow]");
  const auto base = "/thaw/v1/functions/" + p.positional[0] + "/logs";
  auto chunk = get_json(c, base);
  std::cout << chunk["Text"].get<std::string>() << std::flush;
  if (!p.has("--follow")) return kOk;
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  while (!g_stop) {
    const auto target =
        base + "?offset=" + std::to_string(chunk["NextOffset"].get<uint64_t>()) + "&wait=20";
    const auto res = c.request(http::verb::get, target, "", {}, std::chrono::seconds(40));
    if (!ok(res)) return api_error(res);
    chunk = json::parse(res.body());
    std::cout << chunk["Text"].get<std::string>() << std::flush;
  }
  return kOk;
}

int snapshots(Client& c, const Args& args) {
  const auto p = parse(args, {}, {"--json"});
  need(p, 0, 0, "snapshots [--json]");
  const auto out = get_json(c, "/thaw/v1/snapshots");
  if (p.has("--json")) {
    std::cout << out.dump(2) << "\n";
    return kOk;
  }
  std::cout << pad("FUNCTION", 24) << pad("DIGEST", 14) << pad("SIZE", 10) << pad("AGE", 9)
            << pad("RESTORES", 10) << "LAST RESTORE\n";
  for (const auto& s : out["Snapshots"]) {
    char size[32];
    std::snprintf(size, sizeof size, "%.1f MB", s["SizeBytes"].get<double>() / 1048576.0);
    std::cout << pad(s["FunctionName"], 24) << pad(s["Digest"].get<std::string>().substr(0, 12), 14)
              << pad(size, 10) << pad(std::to_string(s["AgeSeconds"].get<int64_t>()) + "s", 9)
              << pad(std::to_string(s["RestoresServed"].get<uint64_t>()), 10)
              << (s["LastRestore"].is_null() ? "-" : s["LastRestore"].get<std::string>()) << "\n";
  }
  return kOk;
}

int usage(Client& c, const Args& args) {
  const auto p = parse(args, {}, {"--json"});
  need(p, 0, 0, "usage [--json]");
  const auto out = get_json(c, "/thaw/v1/usage");
  if (p.has("--json")) {
    std::cout << out.dump(2) << "\n";
    return kOk;
  }
  std::cout << pad("FUNCTION", 24) << pad("INVOCATIONS", 13) << pad("ERRORS", 8)
            << pad("THROTTLES", 11) << pad("BILLED MS", 12) << "GB-SECONDS\n";
  auto row = [](const std::string& name, const json& u) {
    char gbs[32];
    std::snprintf(gbs, sizeof gbs, "%.6f", u["GBSeconds"].get<double>());
    std::cout << pad(name, 24) << pad(std::to_string(u["Invocations"].get<uint64_t>()), 13)
              << pad(std::to_string(u["Errors"].get<uint64_t>()), 8)
              << pad(std::to_string(u["Throttles"].get<uint64_t>()), 11)
              << pad(std::to_string(u["BilledDurationMs"].get<uint64_t>()), 12) << gbs << "\n";
  };
  for (const auto& f : out["Functions"]) row(f["FunctionName"], f);
  row("(total)", out["Totals"]);
  return kOk;
}

int instances(Client& c, const Args& args) {
  const auto p = parse(args, {}, {"--json"});
  need(p, 0, 0, "instances [--json]");
  const auto out = get_json(c, "/thaw/v1/instances");
  if (p.has("--json")) {
    std::cout << out.dump(2) << "\n";
    return kOk;
  }
  std::cout << pad("INSTANCE", 28) << pad("FUNCTION", 20) << pad("STATE", 8) << pad("FROM", 9)
            << pad("MEMORY", 8) << "LAST USED\n";
  for (const auto& i : out["Instances"])
    std::cout << pad(i["Id"], 28) << pad(i["FunctionName"], 20) << pad(i["State"], 8)
              << pad(i["StartMode"], 9) << pad(std::to_string(i["MemorySize"].get<int>()), 8)
              << i["LastUsed"].get<std::string>() << "\n";
  std::cout << out["InFlight"] << " of " << out["MaxConcurrency"] << " invocations running, "
            << out["MemoryInUseMB"] << " of " << out["MemoryBudgetMB"] << " MB in use\n";
  return kOk;
}

int concurrency(Client& c, const Args& args) {
  const auto p = parse(args, {}, {"--delete"});
  need(p, 1, 2, "concurrency NAME [N | --delete]");
  const auto& name = p.positional[0];
  Response res;
  if (p.has("--delete")) {
    res = c.request(http::verb::delete_, "/2017-10-31/functions/" + name + "/concurrency");
  } else if (p.positional.size() == 2) {
    res = c.request(http::verb::put, "/2017-10-31/functions/" + name + "/concurrency",
                    json{{"ReservedConcurrentExecutions", number("N", p.positional[1])}}.dump());
  } else {
    res = c.request(http::verb::get, "/2019-09-30/functions/" + name + "/concurrency");
  }
  if (!ok(res)) return api_error(res);
  const auto body = json::parse(res.body(), nullptr, false);
  if (body.is_object() && body.contains("ReservedConcurrentExecutions"))
    std::cout << name << ": reserved concurrency " << body["ReservedConcurrentExecutions"] << "\n";
  else
    std::cout << name << ": no reserved concurrency (shares the host's pool)\n";
  return kOk;
}

int health(Client& c, const Args& args) {
  need(parse(args, {}, {}), 0, 0, "health");
  const auto res = c.request(http::verb::get, "/healthz", "", {}, std::chrono::seconds(5));
  std::cout << res.body() << "\n";
  return ok(res) ? kOk : kApiError;
}

}  // namespace thaw::cli
