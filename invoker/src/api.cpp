#include "invoker/api.hpp"

#include <sstream>

#include "thaw/build_info.hpp"

namespace thaw::invoker {

Api::Api() : started_(std::chrono::steady_clock::now()) {}

Response Api::handle(const Request& req) {
  const std::string target(req.target());
  const std::string path = target.substr(0, target.find('?'));
  Response res;
  if (path == "/healthz") {
    res = json_response(http::status::ok, R"({"status":"ok"})");
  } else if (path == "/readyz") {
    res = ready() ? json_response(http::status::ok, R"({"status":"ready"})")
                  : json_response(http::status::service_unavailable, R"({"status":"starting"})");
  } else if (path == "/metrics") {
    res = metrics();
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
