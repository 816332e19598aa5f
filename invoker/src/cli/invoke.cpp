// thaw invoke: one invocation, synchronous or queued.
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "answers.hpp"
#include "commands.hpp"
#include "errors.hpp"
#include "invoker/http/base64.hpp"
#include "output.hpp"

namespace thaw::cli {

namespace {

// A function may run for up to 900 s, and its instance may have to start first.
constexpr std::chrono::seconds kInvokeTimeout{900 + 60};

}  // namespace

int invoke(Client& thawd, const CommandLine& line) {
  const auto& name = line.args[0];
  std::string payload = line.args.size() > 1 ? line.args[1] : "{}";
  if (payload == "-") payload.assign(std::istreambuf_iterator<char>(std::cin), {});
  const bool async = line.has("--async");
  const bool log = line.has("--log");
  Headers headers;
  if (async) {
    if (log || line.has("--start-mode"))
      throw UsageError("--log and --start-mode need a synchronous invocation, not --async");
    headers.push_back({"X-Amz-Invocation-Type", "Event"});
  }
  if (log) headers.push_back({"X-Amz-Log-Type", "Tail"});
  if (line.has("--start-mode")) {
    const auto mode = line.value("--start-mode");
    if (mode != "cold" && mode != "restore" && mode != "warm")
      throw UsageError("--start-mode must be cold, restore or warm, got \"" + mode + "\"");
    headers.push_back({"X-Thaw-Start-Mode", mode});
  }

  const auto res = thawd.request(http::verb::post, function_path(name) + "/invocations", payload,
                                 headers, kInvokeTimeout);
  if (!succeeded(res)) throw error_of(res);
  if (async) {
    const std::string id(res["X-Amz-Request-Id"]);
    if (line.json)
      print_json({{"StatusCode", res.result_int()}, {"RequestId", id}});
    else
      std::cout << "accepted: " << name << " will run the event (request " << id << ")\n";
    return kOk;
  }
  if (log) std::cerr << invoker::from_base64(std::string(res["X-Amz-Log-Result"])) << std::flush;
  std::cout << res.body();
  if (res.body().empty() || res.body().back() != '\n') std::cout << "\n";
  const std::string function_error(res["X-Amz-Function-Error"]);
  if (function_error.empty()) return kOk;
  std::cerr << "thaw: " << name << " returned an error (" << function_error << ")\n";
  return kFunctionError;
}

}  // namespace thaw::cli
