// thaw ls, get, rm and concurrency: the function catalogue.
#include <iostream>
#include <nlohmann/json.hpp>

#include "answers.hpp"
#include "commands.hpp"
#include "errors.hpp"
#include "output.hpp"

namespace thaw::cli {

namespace {

using json = nlohmann::json;

constexpr const char* kPageSize = "50";

std::string concurrency_path(const std::string& api_version, const std::string& name) {
  return "/" + api_version + "/functions/" + url_encode(name) + "/concurrency";
}

}  // namespace

int list(Client& thawd, const CommandLine& line) {
  json functions = json::array();
  std::string marker;
  for (;;) {
    const auto page =
        get_json(thawd, "/2015-03-31/functions/?" +
                            (marker.empty() ? "" : "Marker=" + url_encode(marker) + "&") +
                            "MaxItems=" + kPageSize);
    for (const auto& f : page.value("Functions", json::array())) functions.push_back(f);
    const auto next = page.value("NextMarker", "");
    if (next.empty() || next == marker) break;
    marker = next;
  }
  if (line.json) {
    print_json({{"Functions", functions}});
    return kOk;
  }
  Table table({"NAME", "RUNTIME", "MEMORY", "TIMEOUT", "LAST MODIFIED"});
  for (const auto& f : functions)
    table.add({cell(f.value("FunctionName", json())), cell(f.value("Runtime", json())),
               cell(f.value("MemorySize", json())) + " MB", cell(f.value("Timeout", json())) + " s",
               cell(f.value("LastModified", json()))});
  table.print(std::cout);
  return kOk;
}

int get(Client& thawd, const CommandLine& line) {
  const auto answer = get_json(thawd, function_path(line.args[0]));
  if (line.json) {
    print_json(answer);
    return kOk;
  }
  const auto f = answer.value("Configuration", json::object());
  const auto field = [&](const char* key) { return cell(f.value(key, json())); };
  std::vector<std::pair<std::string, std::string>> rows = {
      {"Name", field("FunctionName")},
      {"ARN", field("FunctionArn")},
      {"Runtime", field("Runtime")},
      {"Handler", field("Handler")},
      {"Memory", field("MemorySize") + " MB"},
      {"Timeout", field("Timeout") + " s"},
      {"Code", field("CodeSize") + " bytes, sha256 " + field("CodeSha256")},
      {"Snapshots",
       f.contains("SnapStart") ? cell(f["SnapStart"].value("OptimizationStatus", json())) : "-"},
      {"Concurrency",
       answer.contains("Concurrency")
           ? cell(answer["Concurrency"].value("ReservedConcurrentExecutions", json())) + " reserved"
           : "unreserved"},
      {"Last modified", field("LastModified")},
  };
  const auto variables = f.value("Environment", json::object()).value("Variables", json::object());
  if (variables.empty()) rows.push_back({"Environment", "-"});
  bool first = true;
  for (const auto& [k, v] : variables.items()) {
    rows.push_back({first ? "Environment" : "", k + "=" + cell(v)});
    first = false;
  }
  for (const auto& [label, value] : rows)
    std::cout << label << (label.empty() ? " " : ":") << std::string(15 - label.size(), ' ')
              << value << "\n";
  return kOk;
}

int remove(Client& thawd, const CommandLine& line) {
  const auto& name = line.args[0];
  json_of(thawd.request(http::verb::delete_, function_path(name)));
  if (!line.json) std::cout << name << " deleted\n";
  return kOk;
}

int concurrency(Client& thawd, const CommandLine& line) {
  const auto& name = line.args[0];
  json answer;
  if (line.has("--delete")) {
    if (line.args.size() > 1) throw UsageError("give N or --delete, not both");
    answer = json_of(thawd.request(http::verb::delete_, concurrency_path("2017-10-31", name)));
  } else if (line.args.size() > 1) {
    const auto n = whole_number("N", line.args[1], 0, 1000000);
    answer = json_of(thawd.request(http::verb::put, concurrency_path("2017-10-31", name),
                                   json{{"ReservedConcurrentExecutions", n}}.dump()));
  } else {
    answer = get_json(thawd, concurrency_path("2019-09-30", name));
  }
  if (line.json) {
    print_json(answer);
  } else if (line.has("--delete")) {
    std::cout << name << ": reserved concurrency removed\n";
  } else if (answer.contains("ReservedConcurrentExecutions")) {
    std::cout << name << ": reserved concurrency " << cell(answer["ReservedConcurrentExecutions"])
              << "\n";
  } else {
    std::cout << name << ": no reserved concurrency (shares the unreserved pool)\n";
  }
  return kOk;
}

}  // namespace thaw::cli
