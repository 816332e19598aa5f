#pragma once
// The API: a plain function from request to response. Routes live in
// api_lambda.cpp (AWS Lambda's operations) and api_thaw.cpp (/thaw/v1/).

#include <atomic>
#include <chrono>
#include <optional>

#include "invoker/http.hpp"
#include "invoker/request_target.hpp"

namespace thaw::invoker {

struct ApiCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> client_errors{0};
  std::atomic<uint64_t> server_errors{0};
};

class FunctionService;
class AsyncInvoker;

class Api {
 public:
  // `functions` may be null (health and metrics only); `async` null: Event
  // invocations are refused. `admin_token` empty: no authentication (unit
  // use only; thawd always sets one).
  explicit Api(FunctionService* functions = nullptr, std::string admin_token = "",
               AsyncInvoker* async = nullptr);
  Response handle(const Request& request);
  bool ready() const { return ready_.load(); }
  void set_ready(bool ready) { ready_.store(ready); }

 private:
  Response route(const Request& request, const RequestTarget& target);
  Response metrics() const;
  // AWS Lambda's operations; null when the path is not one of theirs.
  std::optional<Response> lambda_api(const Request& request, const RequestTarget& target);
  Response invoke(const Request& request, const std::string& name);
  // thaw's own: /thaw/v1/...
  std::optional<Response> thaw_api(const Request& request, const RequestTarget& target);
  Response logs(const RequestTarget& target, const std::string& name);

  FunctionService* functions_;
  std::string admin_token_;
  AsyncInvoker* async_;
  ApiCounters counters_;
  std::atomic<bool> ready_{false};
  std::chrono::steady_clock::time_point started_;
};

}  // namespace thaw::invoker
