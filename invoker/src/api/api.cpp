#include "invoker/api/api.hpp"

#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>

#include "invoker/api/auth/admin_token.hpp"
#include "invoker/api/auth/sigv4.hpp"
#include "invoker/api/lambda/lambda_errors.hpp"
#include "invoker/api/lambda/lambda_limits.hpp"
#include "invoker/api/trigger/http_trigger.hpp"
#include "invoker/invocation/function_service.hpp"
#include "invoker/observability/log_followers.hpp"
#include "invoker/observability/metrics.hpp"
#include "invoker/protocol/json_text.hpp"
#include "thaw/build_info.hpp"

namespace thaw::invoker {

uint64_t request_body_limit(const std::string& target, http::verb method) {
  const bool code_upload =
      (method == http::verb::post && target.rfind("/2015-03-31/functions", 0) == 0 &&
       target.find("/invocations") == std::string::npos) ||
      (method == http::verb::put && target.find("/code") != std::string::npos);
  return code_upload ? kMaxCodeUploadRequestBytes : kMaxSyncPayloadBytes;
}

Api::Api(FunctionService* functions, std::string admin_token, AsyncInvoker* async)
    : functions_(functions),
      admin_token_(std::move(admin_token)),
      async_(async),
      own_metrics_(functions ? nullptr : std::make_unique<Metrics>()),
      metrics_(functions ? &functions->metrics() : own_metrics_.get()) {
  const auto answers = [this](const char* status_class) {
    return &metrics_->counter("thaw_http_requests_total",
                              "HTTP requests answered, by status class.",
                              {{"class", status_class}});
  };
  answered_ok_ = answers("2xx_3xx");
  answered_client_error_ = answers("4xx");
  answered_server_error_ = answers("5xx");
  metrics_->gauge_callback("thaw_build_info", "thaw's version.", [] {
    return std::vector<std::pair<Labels, double>>{{{{"version", kVersion}}, 1.0}};
  });
  metrics_->gauge_callback("thaw_uptime_seconds", "Seconds since thawd started.",
                           [started = std::chrono::steady_clock::now()] {
                             const std::chrono::duration<double> up =
                                 std::chrono::steady_clock::now() - started;
                             return std::vector<std::pair<Labels, double>>{{{}, up.count()}};
                           });
}

Api::~Api() = default;

void Api::count(http::status status) {
  const auto code = static_cast<unsigned>(status);
  if (code >= 500)
    answered_server_error_->inc();
  else if (code >= 400)
    answered_client_error_->inc();
  else
    answered_ok_->inc();
}

std::optional<Response> Api::refuse_headers(const Request& header) const {
  return credential_refusal(header, parse_target(std::string(header.target())), true);
}

std::optional<Response> Api::credential_refusal(const Request& req, const RequestTarget& target,
                                                bool headers_only) const {
  // Everything but /healthz and /readyz needs a credential, the admin token
  // or a SigV4 signature; a refused request does nothing. The two probes tell
  // only whether thawd runs and takes work, which a load balancer or an
  // orchestrator must learn without holding thawd's token.
  const std::string authorization(req[http::field::authorization]);
  const bool open = admin_token_.empty() || target.path == "/healthz" || target.path == "/readyz" ||
                    emulator_request(req, target) ||
                    (public_trigger_ && target.path.rfind("/function/", 0) == 0);
  std::optional<Response> refused;
  if (!open && authorization.rfind("AWS4-HMAC-SHA256 ", 0) == 0) {
    // Signed by an AWS SDK or the AWS CLI with thawd's access key.
    const std::string raw(req.target());
    const auto q = raw.find('?');
    SignedRequest signed_request{std::string(req.method_string()),
                                 target.path,
                                 q == std::string::npos ? "" : raw.substr(q + 1),
                                 {},
                                 req.body()};
    for (const auto& field : req)
      signed_request.headers.push_back(
          {std::string(field.name_string()), std::string(field.value())});
    const auto verdict =
        headers_only ? verify_sigv4_headers(signed_request, access_keys_, std::time(nullptr))
                     : verify_sigv4(signed_request, access_keys_, std::time(nullptr));
    if (!verdict.ok)
      refused = lambda_error(static_cast<http::status>(verdict.status), verdict.error_type,
                             verdict.message);
  } else if (!open) {
    const auto auth = check_bearer(authorization, admin_token_);
    if (auth == AuthResult::Missing)
      refused = lambda_error(http::status::unauthorized, "UnrecognizedClientException",
                             "Missing credentials: send Authorization: Bearer <token from the "
                             "state directory's admin-token>, or sign the request with AWS "
                             "Signature Version 4 and the key in its aws-credentials");
    else if (auth == AuthResult::Wrong)
      refused = lambda_error(http::status::forbidden, "UnrecognizedClientException",
                             "The security token included in the request is invalid");
  }
  return refused;
}

void Api::handle(const Request& req, Reply reply) {
  const auto target = parse_target(std::string(req.target()));
  const auto poll = credential_refusal(req, target, false) ? std::nullopt : long_poll(req, target);
  if (!poll) return reply(handle(req));
  count(http::status::ok);
  followers_->follow(poll->function, poll->offset,
                     std::chrono::steady_clock::now() + std::chrono::seconds(poll->wait_s),
                     [this, poll = *poll, reply = std::move(reply)] {
                       try {
                         reply(log_page(poll.function, poll.offset));
                       } catch (const std::exception& e) {
                         reply(lambda_error(http::status::internal_server_error, "ServiceException",
                                            e.what(), "Service"));
                       }
                     });
}

Response Api::handle(const Request& req) {
  const auto target = parse_target(std::string(req.target()));
  Response res;
  if (auto refused = credential_refusal(req, target, false)) {
    res = std::move(*refused);
  } else {
    try {
      res = route(req, target);
    } catch (const Failure& e) {
      res = lambda_error(e);
    }
  }
  count(res.result());
  return res;
}

Response Api::route(const Request& req, const RequestTarget& target) {
  const auto& path = target.path;
  if (path == "/healthz") return json_response(http::status::ok, R"({"status":"ok"})");
  if (path == "/readyz")
    return ready() ? json_response(http::status::ok, R"({"status":"ready"})")
                   : json_response(http::status::service_unavailable, R"({"status":"starting"})");
  if (path == "/metrics") return metrics();
  if (functions_) {
    if (target.segments.size() >= 2 && target.segments[0] == "function")
      return trigger(req, target);
    if (auto r = lambda_api(req, target)) return std::move(*r);
    if (auto r = thaw_api(req, target)) return std::move(*r);
  }
  return lambda_error(http::status::not_found, "UnknownOperationException",
                      "No operation at " + std::string(req.method_string()) + " " + path);
}

bool Api::emulator_request(const Request& req, const RequestTarget& target) const {
  return emulator_path_ && req.method() == http::verb::post &&
         target.path == "/2015-03-31/functions/function/invocations";
}

Response Api::trigger(const Request& req, const RequestTarget& target) {
  // The path after /function/NAME, as sent: the function's own URL space.
  const auto prefix_end = target.path.find('/', std::string("/function/").size());
  const std::string rest = prefix_end == std::string::npos ? "/" : target.path.substr(prefix_end);
  const auto& name = target.segments[1];
  const auto request_id = new_request_id();
  try {
    InvokeOptions options;
    options.request_id = request_id;
    const auto event = gateway_event(req, target, rest, request_id);
    auto res = gateway_response(functions_->invoke(name, json_text(event), options));
    res.set("X-Amz-Request-Id", request_id);
    return res;
  } catch (const Failure& e) {
    return gateway_error(e);
  }
}

Response Api::metrics() const {
  return text_response(http::status::ok, metrics_->render(), "text/plain; version=0.0.4");
}

}  // namespace thaw::invoker
