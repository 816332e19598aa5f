#include "invoker/functions/function_config.hpp"

#include <regex>

#include "images/runtimes.hpp"
#include "sandbox/error.hpp"

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

[[noreturn]] void refuse(const std::string& field, const std::string& rule) {
  throw Error(field + ": " + rule);
}

}  // namespace

void validate(const FunctionConfig& c) {
  static const std::regex name_rule("^[A-Za-z0-9_-]{1,64}$");
  if (!std::regex_match(c.name, name_rule))
    refuse("FunctionName", "must be 1 to 64 letters, digits, '-' or '_', got \"" + c.name + "\"");
  const auto runtime = images::find_runtime(c.runtime);
  if (!runtime)
    refuse("Runtime", "must be one of " + images::runtime_names() + ", got \"" + c.runtime + "\"");
  if (runtime->takes_handler) {
    static const std::regex handler_rule("^[^\\s]+\\.[A-Za-z_$][A-Za-z0-9_$]*$");
    if (c.handler.size() > 128 || !std::regex_match(c.handler, handler_rule))
      refuse("Handler",
             "must look like file.function (at most 128 characters), got \"" + c.handler + "\"");
  }
  if (c.memory_mb < 128 || c.memory_mb > 10240)
    refuse("MemorySize", "must be between 128 and 10240 MB, got " + std::to_string(c.memory_mb));
  if (c.timeout_s < 1 || c.timeout_s > 900)
    refuse("Timeout", "must be between 1 and 900 seconds, got " + std::to_string(c.timeout_s));
  if (c.ephemeral_storage_mb < 512 || c.ephemeral_storage_mb > 10240)
    refuse("EphemeralStorage.Size",
           "must be between 512 and 10240 MB, got " + std::to_string(c.ephemeral_storage_mb));
  static const std::regex key_rule("^[A-Za-z][A-Za-z0-9_]*$");
  size_t total = 0;
  for (const auto& [k, v] : c.environment) {
    if (!std::regex_match(k, key_rule))
      refuse("Environment.Variables",
             "key \"" + k + "\" must start with a letter and hold only letters, digits and '_'");
    if (reserved(k))
      refuse("Environment.Variables", "key \"" + k + "\" is reserved by the runtime");
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
