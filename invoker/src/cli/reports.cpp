// thaw snapshots, usage, instances and health: what thawd reports about itself.
#include <iostream>
#include <nlohmann/json.hpp>

#include "answers.hpp"
#include "commands.hpp"
#include "errors.hpp"
#include "output.hpp"

namespace thaw::cli {

namespace {

using json = nlohmann::json;

constexpr std::chrono::seconds kHealthTimeout{5};

std::string field(const json& object, const char* key) {
  return cell(object.value(key, json()));
}

}  // namespace

int snapshots(Client& thawd, const CommandLine& line) {
  const auto answer = get_json(thawd, "/thaw/v1/snapshots");
  if (line.json) {
    print_json(answer);
    return kOk;
  }
  Table table({"FUNCTION", "DIGEST", "SIZE", "AGE", "IN MEMORY", "RESTORES", "LAST RESTORE"});
  for (const auto& s : answer.value("Snapshots", json::array())) {
    const auto function = s.value("FunctionName", "");
    table.add({function.empty() ? "(replaced)" : function, s.value("Digest", "").substr(0, 12),
               megabytes(s.value("SizeBytes", 0.0)), age(s.value("AgeSeconds", int64_t{0})),
               s.value("InMemoryCache", false) ? "yes" : "no", field(s, "RestoresServed"),
               field(s, "LastRestore")});
  }
  table.print(std::cout);
  return kOk;
}

int usage(Client& thawd, const CommandLine& line) {
  const auto answer = get_json(thawd, "/thaw/v1/usage");
  if (line.json) {
    print_json(answer);
    return kOk;
  }
  Table table(
      {"FUNCTION", "INVOCATIONS", "ERRORS", "THROTTLES", "DURATION MS", "BILLED MS", "GB-SECONDS"});
  const auto row = [&](const std::string& name, const json& u) {
    table.add({name, field(u, "Invocations"), field(u, "Errors"), field(u, "Throttles"),
               field(u, "DurationMs"), field(u, "BilledDurationMs"), field(u, "GBSeconds")});
  };
  for (const auto& f : answer.value("Functions", json::array())) row(field(f, "FunctionName"), f);
  row("(total)", answer.value("Totals", json::object()));
  table.print(std::cout);
  return kOk;
}

int instances(Client& thawd, const CommandLine& line) {
  const auto answer = get_json(thawd, "/thaw/v1/instances");
  if (line.json) {
    print_json(answer);
    return kOk;
  }
  Table table({"ID", "FUNCTION", "STATE", "STARTED AS", "MEMORY", "STARTED", "LAST USED"});
  for (const auto& i : answer.value("Instances", json::array()))
    table.add({field(i, "Id"), field(i, "FunctionName"), field(i, "State"), field(i, "StartMode"),
               field(i, "MemorySize") + " MB", field(i, "StartedAt"), field(i, "LastUsed")});
  table.print(std::cout);
  // The host's limits, when this thawd reports them.
  if (answer.contains("InFlight"))
    std::cout << "\n"
              << field(answer, "InFlight") << " of " << field(answer, "MaxConcurrency")
              << " invocations running; " << field(answer, "MemoryInUseMB") << " of "
              << field(answer, "MemoryBudgetMB") << " MB of memory in use\n";
  return kOk;
}

int health(Client& thawd, const CommandLine& line) {
  const auto res = thawd.request(http::verb::get, "/healthz", "", {}, kHealthTimeout);
  const auto answer = json_of(res);
  if (line.json)
    print_json(answer);
  else
    std::cout << "thawd at " << thawd.endpoint() << ": " << field(answer, "status") << "\n";
  return kOk;
}

}  // namespace thaw::cli
