#include "invoker/api.hpp"

#include <boost/beast/core/detail/base64.hpp>
#include <nlohmann/json.hpp>
#include <sstream>

#include "invoker/admin_token.hpp"
#include "invoker/function_service.hpp"

#include "thaw/build_info.hpp"

namespace thaw::invoker {

namespace {

namespace base64 = boost::beast::detail::base64;

std::string to_base64(const std::string& raw) {
  std::string out(base64::encoded_size(raw.size()), '\0');
  out.resize(base64::encode(out.data(), raw.data(), raw.size()));
  return out;
}

constexpr const char* kFunctions = "/2015-03-31/functions";

}  // namespace

Api::Api(FunctionService* functions, std::string admin_token)
    : functions_(functions),
      admin_token_(std::move(admin_token)),
      started_(std::chrono::steady_clock::now()) {}

Response Api::invoke(const Request& req, const std::string& name) {
  const std::string type(req["X-Amz-Invocation-Type"]);
  if (type == "DryRun") {
    functions_->get(name);  // 404 when it does not exist
    Response r{http::status::no_content, 11};
    r.set("X-Amz-Executed-Version", "$LATEST");
    return r;
  }
  if (!type.empty() && type != "RequestResponse")
    throw ApiError(
        400, "InvalidParameterValueException",
        "X-Amz-Invocation-Type: " + type + " is not supported yet (RequestResponse, DryRun)");
  const auto result = functions_->invoke(name, req.body());
  auto r = json_response(http::status::ok, result.payload);
  r.set("X-Amz-Executed-Version", "$LATEST");
  r.set("X-Amz-Request-Id", result.request_id);
  r.set("X-Thaw-Start-Mode", result.start_mode);
  if (result.error) r.set("X-Amz-Function-Error", "Unhandled");
  if (std::string(req["X-Amz-Log-Type"]) == "Tail")
    r.set("X-Amz-Log-Result", to_base64(result.log_tail()));
  return r;
}

Response Api::functions_api(const Request& req, const std::string& path) {
  const std::string base = kFunctions;
  std::string rest = path.size() > base.size() ? path.substr(base.size() + 1) : "";
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  const auto slash = rest.find('/');
  const std::string name = rest.substr(0, slash),
                    tail = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (name.empty()) {
    if (req.method() == http::verb::post) {
      const auto body = nlohmann::json::parse(req.body(), nullptr, false);
      if (body.is_discarded())
        throw ApiError(400, "InvalidRequestContentException",
                       "Could not parse request body into json");
      return json_response(http::status::created,
                           FunctionService::configuration_json(functions_->create(body)).dump());
    }
    if (req.method() == http::verb::get) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& f : functions_->list())
        list.push_back(FunctionService::configuration_json(f));
      return json_response(http::status::ok, nlohmann::json{{"Functions", list}}.dump());
    }
  } else if (tail.empty()) {
    if (req.method() == http::verb::get) {
      const auto f = functions_->get(name);
      nlohmann::json out = {{"Configuration", FunctionService::configuration_json(f)},
                            {"Code", {{"RepositoryType", "S3"}, {"Location", ""}}}};
      return json_response(http::status::ok, out.dump());
    }
    if (req.method() == http::verb::delete_) {
      functions_->remove(name);
      return Response{http::status::no_content, 11};
    }
  } else if (tail == "invocations" && req.method() == http::verb::post) {
    return invoke(req, name);
  }
  return lambda_error(http::status::not_found, "UnknownOperationException",
                      "No operation at " + std::string(req.method_string()) + " " + path);
}

Response Api::handle(const Request& req) {
  const std::string target(req.target());
  const std::string path = target.substr(0, target.find('?'));
  Response res;
  // Everything but /healthz needs the admin credential; a refused request does nothing.
  const auto auth = admin_token_.empty() || path == "/healthz"
                        ? AuthResult::Ok
                        : check_bearer(std::string(req[http::field::authorization]), admin_token_);
  if (auth == AuthResult::Missing) {
    res = lambda_error(http::status::unauthorized, "UnrecognizedClientException",
                       "Missing credentials: send Authorization: Bearer <token from the state "
                       "directory's admin-token>");
  } else if (auth == AuthResult::Wrong) {
    res = lambda_error(http::status::forbidden, "UnrecognizedClientException",
                       "The security token included in the request is invalid");
  } else if (path == "/healthz") {
    res = json_response(http::status::ok, R"({"status":"ok"})");
  } else if (path == "/readyz") {
    res = ready() ? json_response(http::status::ok, R"({"status":"ready"})")
                  : json_response(http::status::service_unavailable, R"({"status":"starting"})");
  } else if (path == "/metrics") {
    res = metrics();
  } else if (functions_ && path.rfind(kFunctions, 0) == 0) {
    try {
      res = functions_api(req, path);
    } catch (const ApiError& e) {
      res = lambda_error(static_cast<http::status>(e.status), e.type, e.what());
    }
  } else {
    res = lambda_error(http::status::not_found, "UnknownOperationException",
                       "No operation at " + std::string(req.method_string()) + " " + path);
  }
  ++counters_.requests;
  const auto code = static_cast<unsigned>(res.result());
  if (code >= 500)
    ++counters_.server_errors;
  else if (code >= 400)
    ++counters_.client_errors;
  return res;
}

Response Api::metrics() const {
  const double uptime =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  std::ostringstream out;
  out << "# HELP thaw_build_info thaw's version.\n# TYPE thaw_build_info gauge\n"
      << "thaw_build_info{version=\"" << kVersion << "\"} 1\n"
      << "# HELP thaw_uptime_seconds Seconds since thawd started.\n# TYPE thaw_uptime_seconds "
         "gauge\n"
      << "thaw_uptime_seconds " << uptime << "\n"
      << "# HELP thaw_http_requests_total HTTP requests answered, by status class.\n"
      << "# TYPE thaw_http_requests_total counter\n"
      << "thaw_http_requests_total{class=\"2xx_3xx\"} "
      << counters_.requests - counters_.client_errors - counters_.server_errors << "\n"
      << "thaw_http_requests_total{class=\"4xx\"} " << counters_.client_errors << "\n"
      << "thaw_http_requests_total{class=\"5xx\"} " << counters_.server_errors << "\n";
  return text_response(http::status::ok, out.str(), "text/plain; version=0.0.4");
}

}  // namespace thaw::invoker
