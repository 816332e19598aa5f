#include "invoker/functions/function_config.hpp"

#include <algorithm>
#include <string_view>

#include "images/runtimes.hpp"
#include "thaw/error.hpp"

namespace thaw::invoker {

namespace {

constexpr size_t kEnvironmentLimitBytes = 4096;  // Lambda's limit for all variables together

// Variables Lambda sets itself; a function may not override them.
bool reserved(const std::string& key) {
  static const char* names[] = {"_HANDLER",
                                "_X_AMZN_TRACE_ID",
                                "AWS_EXECUTION_ENV",
                                "AWS_LAMBDA_FUNCTION_NAME",
                                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                                "AWS_LAMBDA_FUNCTION_VERSION",
                                "AWS_LAMBDA_LOG_GROUP_NAME",
                                "AWS_LAMBDA_LOG_STREAM_NAME",
                                "AWS_LAMBDA_RUNTIME_API",
                                "LAMBDA_TASK_ROOT",
                                "LAMBDA_RUNTIME_DIR",
                                "AWS_LAMBDA_INITIALIZATION_TYPE",
                                "THAW_CHANNEL_FD"};
  for (const char* n : names)
    if (key == n) return true;
  return false;
}

// These rules are spelled out rather than written as std::regex: libstdc++
// matches by recursion, a frame per character, and an Environment key of
// 50,000 characters overflowed thawd's stack.
bool is_letter(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// A variable name: a letter, then letters, digits and '_'.
bool is_variable_key(std::string_view key) {
  return !key.empty() && is_letter(key[0]) && std::all_of(key.begin(), key.end(), [](char c) {
    return is_letter(c) || is_digit(c) || c == '_';
  });
}

// file.function: a path without white space, a dot, then an identifier (in
// Python's and JavaScript's sense, with '$').
bool is_handler(std::string_view handler) {
  const auto dot = handler.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == handler.size()) return false;
  const auto file = handler.substr(0, dot), function = handler.substr(dot + 1);
  const auto word = [](char c) { return is_letter(c) || c == '_' || c == '$'; };
  return std::none_of(file.begin(), file.end(),
                      [](char c) {
                        return std::string_view(" \t\n\v\f\r").find(c) != std::string_view::npos;
                      }) &&
         word(function[0]) && std::all_of(function.begin(), function.end(), [&](char c) {
           return word(c) || is_digit(c);
         });
}

// What a refusal quotes of a value: enough to recognise it, never all of a
// megabyte.
std::string quoted(std::string_view value) {
  constexpr size_t kShown = 80;
  if (value.size() <= kShown) return "\"" + std::string(value) + "\"";
  return "\"" + std::string(value.substr(0, kShown)) + "...\" (" + std::to_string(value.size()) +
         " characters)";
}

[[noreturn]] void refuse(const std::string& field, const std::string& rule) {
  throw Error(field + ": " + rule);
}

}  // namespace

bool is_function_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return is_letter(c) || is_digit(c) || c == '-' || c == '_';
  });
}

void validate(const FunctionConfig& c) {
  if (!is_function_name(c.name))
    refuse("FunctionName", "must be 1 to 64 letters, digits, '-' or '_', got " + quoted(c.name));
  const auto runtime = images::find_runtime(c.runtime);
  if (!runtime)
    refuse("Runtime", "must be one of " + images::runtime_names() + ", got " + quoted(c.runtime));
  if (runtime->takes_handler) {
    if (c.handler.size() > 128 || !is_handler(c.handler))
      refuse("Handler",
             "must look like file.function (at most 128 characters), got " + quoted(c.handler));
  }
  if (c.memory_mb < 128 || c.memory_mb > 10240)
    refuse("MemorySize", "must be between 128 and 10240 MB, got " + std::to_string(c.memory_mb));
  if (c.timeout_s < 1 || c.timeout_s > 900)
    refuse("Timeout", "must be between 1 and 900 seconds, got " + std::to_string(c.timeout_s));
  if (c.ephemeral_storage_mb < 512 || c.ephemeral_storage_mb > 10240)
    refuse("EphemeralStorage.Size",
           "must be between 512 and 10240 MB, got " + std::to_string(c.ephemeral_storage_mb));
  size_t total = 0;
  for (const auto& [k, v] : c.environment) {
    if (!is_variable_key(k))
      refuse(
          "Environment.Variables",
          "key " + quoted(k) + " must start with a letter and hold only letters, digits and '_'");
    if (reserved(k))
      refuse("Environment.Variables", "key " + quoted(k) + " is reserved by the runtime");
    total += k.size() + v.size();
  }
  if (total > kEnvironmentLimitBytes)
    refuse("Environment.Variables",
           "must not exceed 4 KB in total, got " + std::to_string(total) + " bytes");
}

std::string function_arn(const std::string& name) {
  return "arn:aws:lambda:us-east-1:000000000000:function:" + name;
}

std::map<std::string, std::string> lambda_environment(const FunctionConfig& c) {
  std::map<std::string, std::string> env = c.environment;
  const std::string log_group = "/aws/lambda/" + c.name;
  env["AWS_LAMBDA_FUNCTION_NAME"] = c.name;
  env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = std::to_string(c.memory_mb);
  env["AWS_LAMBDA_FUNCTION_VERSION"] = "$LATEST";
  env["AWS_LAMBDA_LOG_GROUP_NAME"] = log_group;
  env["AWS_LAMBDA_LOG_STREAM_NAME"] = "thaw/[$LATEST]instance";
  env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "on-demand";
  env["AWS_EXECUTION_ENV"] = "AWS_Lambda_" + c.runtime;
  env["AWS_REGION"] = "us-east-1";
  env["AWS_DEFAULT_REGION"] = "us-east-1";
  env["LAMBDA_TASK_ROOT"] = "/var/task";
  env["LAMBDA_RUNTIME_DIR"] = "/opt/thaw/runtime";
  env["_HANDLER"] = c.handler;
  env["TZ"] = ":UTC";
  env["LANG"] = "en_US.UTF-8";
  if (!env.count("PATH")) env["PATH"] = "/usr/local/bin:/usr/bin:/bin:/opt/thaw/runtime";
  return env;
}

}  // namespace thaw::invoker
