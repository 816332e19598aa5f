// Lambda's request bodies as thawd parses them: CreateFunction,
// UpdateFunctionConfiguration, UpdateFunctionCode, PutFunctionConcurrency and
// PutFunctionEventInvokeConfig. Every refusal must be a Failure.
#include <cstdint>
#include <nlohmann/json.hpp>

#include "invoker/api/lambda/function_requests.hpp"
#include "invoker/functions/failure.hpp"

using namespace thaw::invoker;

template <typename F>
void refused_cleanly(F&& parse) {
  try {
    parse();
  } catch (const Failure&) {
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto body = nlohmann::json::parse(data, data + size, nullptr, false);
  if (body.is_discarded()) return 0;
  refused_cleanly([&] { (void)parse_create_function(body); });
  refused_cleanly([&] { (void)parse_update_configuration(body, FunctionRecord{}); });
  refused_cleanly([&] { (void)parse_update_code(body); });
  refused_cleanly([&] { (void)parse_reserved_concurrency(body); });
  refused_cleanly([&] { (void)parse_event_invoke_config(body, FunctionRecord{}); });
  return 0;
}
