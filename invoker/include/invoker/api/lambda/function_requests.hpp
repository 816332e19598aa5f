#pragma once
// Lambda's request bodies parsed once, at the edge, into typed values. Every
// refusal is an InvalidParameter Failure that names the field and the rule.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "invoker/functions/registry.hpp"

namespace thaw::invoker {

// CreateFunction: the record to store (without code fields) and the zip.
struct CreateRequest {
  FunctionRecord record;
  std::string zip;
};
CreateRequest parse_create_function(const nlohmann::json& body);

// UpdateFunctionConfiguration: the fields present replace those of `current`.
FunctionRecord parse_update_configuration(const nlohmann::json& body, FunctionRecord current);

// UpdateFunctionCode: the zip (ZipFile is the only source thaw takes).
std::string parse_update_code(const nlohmann::json& body);

// PutFunctionConcurrency: ReservedConcurrentExecutions, 0 or more.
unsigned parse_reserved_concurrency(const nlohmann::json& body);

// PutFunctionEventInvokeConfig: the fields present replace those of `current`.
FunctionRecord parse_event_invoke_config(const nlohmann::json& body, FunctionRecord current);

}  // namespace thaw::invoker
