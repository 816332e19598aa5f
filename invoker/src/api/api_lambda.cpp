// AWS Lambda's operations, in its paths and shapes.
#include <nlohmann/json.hpp>

#include "invoker/api/api.hpp"
#include "invoker/api/auth/admin_token.hpp"
#include "invoker/api/lambda/function_requests.hpp"
#include "invoker/api/lambda/lambda_configuration.hpp"
#include "invoker/api/lambda/lambda_limits.hpp"
#include "invoker/functions/failure.hpp"
#include "invoker/http/base64.hpp"
#include "invoker/invocation/async_invoker.hpp"
#include "invoker/invocation/function_service.hpp"
#include "invoker/protocol/json_text.hpp"

namespace thaw::invoker {

namespace {

nlohmann::json parse_body(const Request& req) {
  if (req.body().empty()) return nlohmann::json::object();
  auto body = nlohmann::json::parse(req.body(), nullptr, false);
  if (body.is_discarded())
    throw Failure(FailureKind::InvalidContent, "Could not parse request body into json");
  return body;
}

Response json_ok(const nlohmann::json& body, http::status status = http::status::ok) {
  return json_response(status, json_text(body));
}

size_t max_items(const RequestTarget& t) {
  const auto it = t.query.find("MaxItems");
  if (it == t.query.end()) return 50;
  const auto& v = it->second;
  if (v.empty() || v.size() > 5 || v.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(v) < 1 || std::stoul(v) > 10000)
    throw Failure(FailureKind::InvalidParameter,
                  "MaxItems: must be a number from 1 to 10000, got \"" + v + "\"");
  return std::stoul(v);
}

nlohmann::json event_invoke_config_json(const FunctionRecord& r) {
  return {{"FunctionArn", function_arn(r.config.name) + ":$LATEST"},
          {"MaximumRetryAttempts", r.max_retry_attempts},
          {"MaximumEventAgeInSeconds", r.max_event_age_s},
          {"LastModified", r.last_modified}};
}

}  // namespace

Response Api::invoke(const Request& req, const std::string& name) {
  const std::string type(req["X-Amz-Invocation-Type"]);
  if (type == "DryRun") {
    functions_->catalog().get(name);  // 404 when it does not exist
    Response r{http::status::no_content, 11};
    r.set("X-Amz-Executed-Version", "$LATEST");
    return r;
  }
  if (type == "Event") {
    if (!async_)
      throw Failure(FailureKind::InvalidParameter,
                    "X-Amz-Invocation-Type: Event is not available on this thawd");
    if (req.body().size() > kMaxEventPayloadBytes)
      throw Failure(FailureKind::TooLarge, "Request must be smaller than " +
                                               std::to_string(kMaxEventPayloadBytes) +
                                               " bytes for the InvokeAsync operation");
    const auto record = functions_->catalog().get(name);
    if (!req.body().empty() && nlohmann::json::parse(req.body(), nullptr, false).is_discarded())
      throw Failure(FailureKind::InvalidContent, "Could not parse request body into json");
    const auto id = async_->submit(record, req.body());
    Response r{http::status::accepted, 11};
    r.set("X-Amz-Request-Id", id);
    r.set("X-Amzn-RequestId", id);
    r.set("X-Amz-Executed-Version", "$LATEST");
    return r;
  }
  if (!type.empty() && type != "RequestResponse")
    throw Failure(
        FailureKind::InvalidParameter,
        "X-Amz-Invocation-Type: must be RequestResponse, Event or DryRun, got \"" + type + "\"");
  InvokeOptions options;
  // Forcing a start mode is for operators (benchmarks): the admin token only,
  // not an access key.
  if (const auto forced = std::string(req["X-Thaw-Start-Mode"]); !forced.empty()) {
    if (!admin_token_.empty() &&
        check_bearer(std::string(req[http::field::authorization]), admin_token_) != AuthResult::Ok)
      throw Failure(FailureKind::Forbidden, "X-Thaw-Start-Mode needs the admin token");
    options.force_mode = parse_start_mode(forced);
    if (!options.force_mode)
      throw Failure(FailureKind::InvalidParameter,
                    "X-Thaw-Start-Mode: must be cold, restore or warm, got \"" + forced + "\"");
  }
  const auto result = functions_->invoke(name, req.body(), options);
  auto r = json_response(http::status::ok, result.payload);
  r.set("X-Amz-Executed-Version", "$LATEST");
  r.set("X-Amz-Request-Id", result.request_id);
  r.set("X-Amzn-RequestId", result.request_id);
  r.set("X-Thaw-Start-Mode", to_string(result.start_mode));
  r.set("Server-Timing", result.server_timing());
  if (result.error) r.set("X-Amz-Function-Error", "Unhandled");
  if (std::string(req["X-Amz-Log-Type"]) == "Tail")
    r.set("X-Amz-Log-Result", to_base64(result.log_tail()));
  return r;
}

std::optional<Response> Api::lambda_api(const Request& req, const RequestTarget& t) {
  const auto& s = t.segments;
  const auto method = req.method();
  if (s.size() < 2 || s[1] != "functions") return std::nullopt;
  const auto& api_version = s[0];
  std::string name = s.size() > 2 ? function_name_from_path(s[2]) : "";
  if (emulator_request(req, t)) name = functions_->catalog().only_function("function");
  const std::string op = s.size() > 3 ? s[3] : "";
  if (s.size() > 4) return std::nullopt;
  auto& f = *functions_;
  auto& catalog = f.catalog();
  const auto configuration = [&f](const FunctionRecord& r) {
    return lambda_configuration(r, f.snapshotted(r.config));
  };

  if (api_version == "2015-03-31") {
    if (name.empty() && method == http::verb::post)
      return json_ok(configuration(catalog.create(parse_create_function(parse_body(req)))),
                     http::status::created);
    if (name.empty() && method == http::verb::get) {
      const auto marker = t.query.count("Marker") ? t.query.at("Marker") : "";
      const auto page = catalog.list(marker, max_items(t));
      nlohmann::json list = nlohmann::json::array();
      for (const auto& r : page.functions) list.push_back(configuration(r));
      nlohmann::json out = {{"Functions", list}};
      if (!page.next_marker.empty()) out["NextMarker"] = page.next_marker;
      return json_ok(out);
    }
    if (op.empty() && method == http::verb::get) {
      const auto r = catalog.get(name);
      nlohmann::json out = {{"Configuration", configuration(r)},
                            {"Code", {{"RepositoryType", "S3"}, {"Location", ""}}}};
      if (r.reserved_concurrency)
        out["Concurrency"] = {{"ReservedConcurrentExecutions", *r.reserved_concurrency}};
      return json_ok(out);
    }
    if (op.empty() && method == http::verb::delete_) {
      catalog.remove(name);
      if (async_) async_->forget(name);
      return Response{http::status::no_content, 11};
    }
    if (op == "invocations" && method == http::verb::post) return invoke(req, name);
    if (op == "code" && method == http::verb::put)
      return json_ok(configuration(catalog.update_code(name, parse_update_code(parse_body(req)))));
    if (op == "configuration" && method == http::verb::put)
      return json_ok(configuration(
          catalog.update_configuration(name, [body = parse_body(req)](FunctionRecord r) {
            return parse_update_configuration(body, std::move(r));
          })));
    if (op == "configuration" && method == http::verb::get)
      return json_ok(configuration(catalog.get(name)));
  }
  if (op == "concurrency" && !name.empty()) {
    if (api_version == "2017-10-31" && method == http::verb::put) {
      const auto n = parse_reserved_concurrency(parse_body(req));
      f.set_concurrency(name, n);
      return json_ok({{"ReservedConcurrentExecutions", n}});
    }
    if (api_version == "2017-10-31" && method == http::verb::delete_) {
      f.set_concurrency(name, std::nullopt);
      return Response{http::status::no_content, 11};
    }
    if (api_version == "2019-09-30" && method == http::verb::get) {
      const auto r = catalog.get(name);
      nlohmann::json out = nlohmann::json::object();
      if (r.reserved_concurrency) out["ReservedConcurrentExecutions"] = *r.reserved_concurrency;
      return json_ok(out);
    }
  }
  if (op == "event-invoke-config" && api_version == "2019-09-25" && !name.empty()) {
    if (method == http::verb::put || method == http::verb::post)
      return json_ok(event_invoke_config_json(
          catalog.update_settings(name, [body = parse_body(req)](FunctionRecord r) {
            return parse_event_invoke_config(body, std::move(r));
          })));
    if (method == http::verb::get) return json_ok(event_invoke_config_json(catalog.get(name)));
  }
  return std::nullopt;
}

}  // namespace thaw::invoker
