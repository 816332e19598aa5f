#include "invoker/api/lambda/function_requests.hpp"

#include <limits>
#include <type_traits>
#include <utility>

#include "invoker/functions/failure.hpp"
#include "invoker/http/base64.hpp"
#include "thaw/error.hpp"

namespace thaw::invoker {

namespace {

[[noreturn]] void invalid(const std::string& message) {
  throw Failure(FailureKind::InvalidParameter, message);
}

std::string decode_base64(const std::string& text, const char* field_name) {
  // The decoder stops at the first character outside the alphabet: only
  // trailing '=' padding may be left over.
  size_t read = 0;
  auto out = from_base64(text, &read);
  if (text.find_first_not_of('=', read) != std::string::npos || text.size() - read > 2)
    invalid(std::string(field_name) + ": not valid base64");
  return out;
}

// A number field must be a whole number within T: nlohmann converts 1e30 or
// -1 to an unsigned int without a word (1e30 is undefined behaviour).
template <class T>
T whole_number(const nlohmann::json& v, const char* name) {
  const bool fits = v.is_number_unsigned()  ? std::in_range<T>(v.get<uint64_t>())
                    : v.is_number_integer() ? std::in_range<T>(v.get<int64_t>())
                                            : false;
  if (!fits)
    invalid(std::string(name) + ": must be a whole number from " +
            std::to_string(std::numeric_limits<T>::min()) + " to " +
            std::to_string(std::numeric_limits<T>::max()));
  return v.is_number_unsigned() ? static_cast<T>(v.get<uint64_t>())
                                : static_cast<T>(v.get<int64_t>());
}

template <class T>
T field(const nlohmann::json& j, const char* name, T fallback) {
  if (!j.contains(name) || j[name].is_null()) return fallback;
  if constexpr (std::is_integral_v<T>) return whole_number<T>(j[name], name);
  try {
    return j[name].get<T>();
  } catch (const nlohmann::json::exception&) {
    invalid(std::string(name) + ": wrong type");
  }
}

void require_object(const nlohmann::json& body) {
  if (!body.is_object()) invalid("The request body must be a JSON object");
}

// Lambda's fields for an operation. Those thaw has no use for (VPC, layers,
// tracing, tags...) are accepted and ignored, as a request written for Lambda
// should deploy here; a field Lambda does not know is refused.
void only_known_fields(const nlohmann::json& body, std::initializer_list<const char*> known) {
  for (const auto& [key, value] : body.items()) {
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    if (!ok) invalid("Unknown field \"" + key + "\" in the request body");
  }
}

void check_package_fields(const nlohmann::json& req) {
  if (req.contains("PackageType") && req["PackageType"] != "Zip")
    invalid("PackageType: thaw runs Zip packages only");
  if (req.contains("Architectures") && req["Architectures"] != nlohmann::json{"x86_64"})
    invalid("Architectures: this host runs [\"x86_64\"]");
}

void checked(const FunctionConfig& c) {
  try {
    validate(c);
  } catch (const Failure&) {
    throw;
  } catch (const Error& e) {
    invalid(e.what());
  }
}

// thaw's own field: {"Allow": ["CIDR[:PORT[-PORT]]", ...], "ConnectionsPerSecond": N,
// "BandwidthMbps": N};
// {"Allow": []} is no egress, null the host's default.
std::optional<sandbox::EgressPolicy> parse_egress(const nlohmann::json& e) {
  if (e.is_null()) return std::nullopt;
  if (!e.is_object()) invalid("Egress: must be an object ({\"Allow\": [...]}) or null");
  for (const auto& [key, value] : e.items())
    if (key != "Allow" && key != "ConnectionsPerSecond" && key != "BandwidthMbps")
      invalid("Egress: unknown field \"" + key + "\" (Allow, ConnectionsPerSecond, BandwidthMbps)");
  if (!e.contains("Allow") || !e["Allow"].is_array())
    invalid("Egress.Allow: required, a list of \"CIDR[:PORT[-PORT]]\" ([] for no egress)");
  sandbox::EgressPolicy p;
  if (e["Allow"].size() > sandbox::kMaxEgressRules)
    invalid("Egress.Allow: at most " + std::to_string(sandbox::kMaxEgressRules) + " rules");
  for (const auto& rule : e["Allow"]) {
    if (!rule.is_string()) invalid("Egress.Allow: each rule is a string, \"CIDR[:PORT[-PORT]]\"");
    try {
      p.allow.push_back(sandbox::parse_egress_rule(rule.get<std::string>()));
    } catch (const Error& err) {
      invalid(std::string("Egress.Allow: ") + err.what());
    }
  }
  p.connections_per_second = field<uint32_t>(e, "ConnectionsPerSecond", 0);
  if (p.connections_per_second > sandbox::kMaxConnectionsPerSecond)
    invalid("Egress.ConnectionsPerSecond: at most " +
            std::to_string(sandbox::kMaxConnectionsPerSecond) + " (0: no limit)");
  p.bandwidth_mbps = field<uint32_t>(e, "BandwidthMbps", 0);
  if (p.bandwidth_mbps > sandbox::kMaxBandwidthMbps)
    invalid("Egress.BandwidthMbps: at most " + std::to_string(sandbox::kMaxBandwidthMbps) +
            " (0: no limit)");
  return p;
}

// The configuration fields CreateFunction and UpdateFunctionConfiguration share.
void apply_configuration(const nlohmann::json& req, FunctionRecord& r) {
  auto& c = r.config;
  c.runtime = field<std::string>(req, "Runtime", c.runtime);
  c.handler = field<std::string>(req, "Handler", c.handler);
  c.memory_mb = field<uint32_t>(req, "MemorySize", c.memory_mb);
  c.timeout_s = field<uint32_t>(req, "Timeout", c.timeout_s);
  r.role = field<std::string>(req, "Role", r.role);
  if (req.contains("Environment")) {
    const auto& env = req["Environment"];
    if (!env.is_object()) invalid("Environment: must be an object");
    c.environment = field<std::map<std::string, std::string>>(env, "Variables", {});
  }
  if (req.contains("EphemeralStorage")) {
    if (!req["EphemeralStorage"].is_object()) invalid("EphemeralStorage: must be an object");
    c.ephemeral_storage_mb =
        field<uint32_t>(req["EphemeralStorage"], "Size", c.ephemeral_storage_mb);
  }
  if (req.contains("SnapStart")) {
    if (!req["SnapStart"].is_object()) invalid("SnapStart: must be an object");
    const auto apply = field<std::string>(req["SnapStart"], "ApplyOn", "PublishedVersions");
    if (apply != "None" && apply != "PublishedVersions")
      invalid("SnapStart.ApplyOn: must be PublishedVersions or None, got \"" + apply + "\"");
    c.snapshot = apply == "None" ? SnapshotPolicy::Off : SnapshotPolicy::Auto;
  }
  if (req.contains("Egress")) c.egress = parse_egress(req["Egress"]);
  checked(c);
}

std::string zip_file(const nlohmann::json& code, const char* name) {
  if (!code.is_object() || !code.contains("ZipFile"))
    invalid(std::string(name) + ": required (a base64 zip)");
  return decode_base64(field<std::string>(code, "ZipFile", ""), name);
}

}  // namespace

CreateRequest parse_create_function(const nlohmann::json& req) {
  require_object(req);
  only_known_fields(req,
                    {"FunctionName",  "Runtime",           "Role",          "Handler",
                     "Code",          "Description",       "Timeout",       "MemorySize",
                     "Publish",       "VpcConfig",         "PackageType",   "DeadLetterConfig",
                     "Environment",   "KMSKeyArn",         "TracingConfig", "Tags",
                     "Layers",        "FileSystemConfigs", "ImageConfig",   "CodeSigningConfigArn",
                     "Architectures", "EphemeralStorage",  "SnapStart",     "LoggingConfig",
                     "Egress"});
  check_package_fields(req);
  CreateRequest out;
  auto& c = out.record.config;
  c.name = field<std::string>(req, "FunctionName", "");
  apply_configuration(req, out.record);
  out.zip = zip_file(req.value("Code", nlohmann::json()), "Code.ZipFile");
  return out;
}

FunctionRecord parse_update_configuration(const nlohmann::json& req, FunctionRecord current) {
  require_object(req);
  only_known_fields(req, {"FunctionName",      "Role",
                          "Handler",           "Description",
                          "Timeout",           "MemorySize",
                          "VpcConfig",         "Environment",
                          "Runtime",           "DeadLetterConfig",
                          "KMSKeyArn",         "TracingConfig",
                          "RevisionId",        "Layers",
                          "FileSystemConfigs", "ImageConfig",
                          "EphemeralStorage",  "SnapStart",
                          "LoggingConfig",     "Egress"});
  if (req.contains("FunctionName") && req["FunctionName"] != current.config.name)
    invalid("FunctionName: cannot be changed");
  apply_configuration(req, current);
  return current;
}

std::string parse_update_code(const nlohmann::json& req) {
  require_object(req);
  only_known_fields(req,
                    {"FunctionName", "ZipFile", "S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri",
                     "Publish", "DryRun", "RevisionId", "Architectures", "SourceKMSKeyArn"});
  check_package_fields(req);
  for (const char* source : {"S3Bucket", "S3Key", "ImageUri"})
    if (req.contains(source))
      invalid(std::string(source) + ": thaw takes code only as ZipFile (a base64 zip)");
  return zip_file(req, "ZipFile");
}

unsigned parse_reserved_concurrency(const nlohmann::json& req) {
  require_object(req);
  const auto& v = req.value("ReservedConcurrentExecutions", nlohmann::json());
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 100000)
    invalid("ReservedConcurrentExecutions: required, a whole number of 0 or more");
  return v.get<unsigned>();
}

FunctionRecord parse_event_invoke_config(const nlohmann::json& req, FunctionRecord current) {
  require_object(req);
  only_known_fields(req, {"FunctionName", "Qualifier", "MaximumRetryAttempts",
                          "MaximumEventAgeInSeconds", "DestinationConfig"});
  current.max_retry_attempts = field<int>(req, "MaximumRetryAttempts", current.max_retry_attempts);
  current.max_event_age_s = field<int>(req, "MaximumEventAgeInSeconds", current.max_event_age_s);
  if (current.max_retry_attempts < 0 || current.max_retry_attempts > 2)
    invalid("MaximumRetryAttempts: must be between 0 and 2, got " +
            std::to_string(current.max_retry_attempts));
  if (current.max_event_age_s < 60 || current.max_event_age_s > 21600)
    invalid("MaximumEventAgeInSeconds: must be between 60 and 21600, got " +
            std::to_string(current.max_event_age_s));
  return current;
}

}  // namespace thaw::invoker
