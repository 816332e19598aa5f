#pragma once
// The API: a plain function from request to response.

#include <atomic>
#include <chrono>

#include "invoker/http.hpp"

namespace thaw::invoker {

struct ApiCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> client_errors{0};
  std::atomic<uint64_t> server_errors{0};
};

class FunctionService;

class Api {
 public:
  // `functions` may be null (health and metrics only).
  // `admin_token` empty: no authentication (unit use only; thawd always sets one).
  explicit Api(FunctionService* functions = nullptr, std::string admin_token = "");
  Response handle(const Request& request);
  bool ready() const { return ready_.load(); }
  void set_ready(bool ready) { ready_.store(ready); }

 private:
  Response metrics() const;
  Response functions_api(const Request& request, const std::string& path);
  Response invoke(const Request& request, const std::string& name);
  FunctionService* functions_;
  std::string admin_token_;
  ApiCounters counters_;
  std::atomic<bool> ready_{false};
  std::chrono::steady_clock::time_point started_;
};

}  // namespace thaw::invoker
