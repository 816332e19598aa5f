#pragma once
// The API: a plain function from request to response. Routes live in
// api_lambda.cpp (AWS Lambda's operations) and api_thaw.cpp (/thaw/v1/).

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "invoker/http/http.hpp"
#include "invoker/http/request_target.hpp"

namespace thaw::invoker {

// The most body bytes a request to `target` may carry: a code upload's, or a
// synchronous invocation's (Lambda's limits, lambda_limits.hpp).
uint64_t request_body_limit(const std::string& target, http::verb method);

class FunctionService;
class AsyncInvoker;
class LogFollowers;
class Metrics;
class Counter;

class Api {
 public:
  // `functions` may be null (health and metrics only); `async` null: Event
  // invocations are refused. `admin_token` empty: no authentication (unit
  // use only; thawd always sets one).
  explicit Api(FunctionService* functions = nullptr, std::string admin_token = "",
               AsyncInvoker* async = nullptr);
  ~Api();
  // The Runtime Interface Emulator's path, POST /2015-03-31/functions/function/invocations,
  // invokes the only deployed function without a credential (local testing).
  void enable_emulator_path() { emulator_path_ = true; }
  // /function/... without a credential: a gateway in front authenticates callers.
  void make_trigger_public() { public_trigger_ = true; }
  // Requests signed with AWS Signature Version 4 by this key are accepted too.
  void add_access_key(const std::string& id, const std::string& secret) {
    access_keys_[id] = secret;
  }
  Response handle(const Request& request);
  // handle(), but a log long poll waits with `followers` (set_log_followers)
  // instead of on the calling thread, and answers through `reply` later.
  void handle(const Request& request, Reply reply);
  void set_log_followers(LogFollowers* followers) { followers_ = followers; }
  // Run when a request's header is in and its body is not: a refusal is
  // answered at once and the body never buffered (HttpLimits::check_header).
  std::optional<Response> refuse_headers(const Request& header) const;
  bool ready() const { return ready_.load(); }
  void set_ready(bool ready) { ready_.store(ready); }

 private:
  Response route(const Request& request, const RequestTarget& target);
  std::optional<Response> credential_refusal(const Request& request, const RequestTarget& target,
                                             bool headers_only) const;
  Response metrics() const;
  // Counts an answer in thaw_http_requests_total by its status class.
  void count(http::status status);
  // AWS Lambda's operations; null when the path is not one of theirs.
  std::optional<Response> lambda_api(const Request& request, const RequestTarget& target);
  Response invoke(const Request& request, const std::string& name);
  // thaw's own: /thaw/v1/...
  std::optional<Response> thaw_api(const Request& request, const RequestTarget& target);
  Response logs(const RequestTarget& target, const std::string& name);
  // The page of `name`'s log from `offset` (no waiting).
  Response log_page(const std::string& name, uint64_t offset);
  // A long poll to hand to the followers: its function and offset, and how long.
  struct LongPoll {
    std::string function;
    uint64_t offset = 0;
    uint64_t wait_s = 0;
  };
  std::optional<LongPoll> long_poll(const Request& request, const RequestTarget& target);
  // /function/NAME[/...]: the HTTP trigger (API Gateway payload 2.0).
  Response trigger(const Request& request, const RequestTarget& target);
  bool emulator_request(const Request& request, const RequestTarget& target) const;

  FunctionService* functions_;
  std::string admin_token_;
  AsyncInvoker* async_;
  LogFollowers* followers_ = nullptr;
  bool emulator_path_ = false;
  bool public_trigger_ = false;
  std::map<std::string, std::string> access_keys_;  // id -> secret
  // The service's registry; one of its own when there is no service.
  std::unique_ptr<Metrics> own_metrics_;
  Metrics* metrics_;
  Counter* answered_ok_;  // 2xx and 3xx
  Counter* answered_client_error_;
  Counter* answered_server_error_;
  std::atomic<bool> ready_{false};
};

}  // namespace thaw::invoker
