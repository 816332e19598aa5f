// thaw deploy: create or update a function, then wait for its snapshot.
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "answers.hpp"
#include "commands.hpp"
#include "errors.hpp"
#include "invoker/http/base64.hpp"
#include "output.hpp"
#include "zip_directory.hpp"

namespace thaw::cli {

namespace {

using json = nlohmann::json;

constexpr unsigned kMaxNumber = 1000000;
constexpr std::chrono::seconds kSnapshotWait{30};
constexpr std::chrono::milliseconds kSnapshotPoll{500};

// The configuration fields CreateFunction and UpdateFunctionConfiguration share.
json configuration_of(const CommandLine& line, bool update) {
  const auto runtime = line.value("--runtime");
  if (runtime.empty())
    throw UsageError("deploy needs --runtime (python3.11, nodejs20.x, provided)");
  // A custom runtime runs its bootstrap, whatever the handler says.
  const bool custom = runtime.rfind("provided", 0) == 0;
  if (!line.has("--handler") && !custom) throw UsageError("deploy needs --handler (file.function)");
  json config = {{"Runtime", runtime}, {"Handler", line.value("--handler", "bootstrap")}};
  // Only the form is checked here; thawd judges the range (and says it).
  if (line.has("--memory"))
    config["MemorySize"] = whole_number("--memory", line.value("--memory"), 0, kMaxNumber);
  if (line.has("--timeout"))
    config["Timeout"] = whole_number("--timeout", line.value("--timeout"), 0, kMaxNumber);
  json variables = json::object();
  for (const auto& kv : line.values("--env")) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError("--env wants KEY=VALUE, got \"" + kv + "\"");
    variables[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  config["Environment"] = {{"Variables", variables}};
  // On an update the policy is said either way, so that deploying without
  // --no-snapshot turns snapshots back on.
  if (line.has("--no-snapshot"))
    config["SnapStart"] = {{"ApplyOn", "None"}};
  else if (update)
    config["SnapStart"] = {{"ApplyOn", "PublishedVersions"}};
  return config;
}

// "hello created (python3.11, 256 MB, timeout 3 s, 1.2 KB of code)"
std::string summary(const json& f, const std::string& verb) {
  return f.value("FunctionName", "?") + " " + verb + " (" + f.value("Runtime", "?") + ", " +
         cell(f.value("MemorySize", json())) + " MB, timeout " + cell(f.value("Timeout", json())) +
         " s, " + std::to_string(f.value("CodeSize", 0)) + " bytes of code)";
}

// thawd makes the snapshot in the background after a deploy; it is listed
// once made. There is no event to wait on, so the listing is polled.
void wait_for_snapshot(Client& thawd, const std::string& name, std::ostream& report) {
  const auto deadline = std::chrono::steady_clock::now() + kSnapshotWait;
  std::cerr << "building snapshot" << std::flush;
  for (;;) {
    const auto res = thawd.request(http::verb::get, "/thaw/v1/snapshots");
    if (res.result() == http::status::not_found) {  // a thawd older than the endpoint
      std::cerr << "\n";
      return;
    }
    const auto listing = json_of(res);
    for (const auto& s : listing.value("Snapshots", json::array()))
      if (s.value("FunctionName", "") == name) {
        std::cerr << "\n";
        report << "snapshot ready (" << megabytes(s.value("SizeBytes", 0.0)) << ")\n";
        return;
      }
    if (std::chrono::steady_clock::now() + kSnapshotPoll > deadline) break;
    std::cerr << "." << std::flush;
    std::this_thread::sleep_for(kSnapshotPoll);
  }
  std::cerr << "\n";
  report << "snapshot not ready yet; the first cold start will build it\n";
}

}  // namespace

int deploy(Client& thawd, const CommandLine& line) {
  const auto& name = line.args[0];
  auto config = configuration_of(line, false);
  const auto code = invoker::to_base64(read_package(line.args[1]));

  auto create = config;
  create["FunctionName"] = name;
  create["Code"] = {{"ZipFile", code}};
  auto res = thawd.request(http::verb::post, "/2015-03-31/functions", create.dump());
  std::string verb = "created";
  if (res.result() == http::status::conflict) {
    // It exists: the new code first, then the configuration given now.
    json_of(thawd.request(http::verb::put, function_path(name) + "/code",
                          json{{"ZipFile", code}}.dump()));
    config = configuration_of(line, true);
    res = thawd.request(http::verb::put, function_path(name) + "/configuration", config.dump());
    verb = "updated";
  }
  const auto function = json_of(res);
  // With --json the answer alone goes to stdout; the story goes to stderr.
  std::ostream& report = line.json ? std::cerr : std::cout;
  if (line.json)
    print_json(function);
  else
    report << summary(function, verb) << "\n";
  // thawd says whether it snapshots this function (its runtime, its policy,
  // whether snapshots are on there).
  const auto snap_start = function.value("SnapStart", json::object());
  if (snap_start.is_object() && snap_start.value("OptimizationStatus", "") == "On")
    wait_for_snapshot(thawd, name, report);
  return kOk;
}

}  // namespace thaw::cli
