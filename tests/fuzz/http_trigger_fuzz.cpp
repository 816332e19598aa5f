// The HTTP trigger both ways: a request of fuzz bytes mapped to an API
// Gateway 2.0 event, and a function's answer of fuzz bytes mapped to the
// HTTP response, which must never carry a header line of the function's own.
#include <boost/beast/http.hpp>
#include <cstdint>

#include "invoker/api/trigger/http_trigger.hpp"
#include "invoker/http/request_target.hpp"

namespace http = boost::beast::http;
using namespace thaw::invoker;

namespace {

bool header_safe(const Response& r) {
  for (const auto& field : r)
    for (const char c : field.value())
      if (c == '\r' || c == '\n' || c == '\0') return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  InvokeResult answer;
  answer.payload = input;
  const auto response = gateway_response(answer);
  if (!header_safe(response)) __builtin_trap();

  http::request_parser<http::string_body> parser;
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (!parser.is_done()) return 0;
  const auto request = parser.release();
  const auto target = parse_target(std::string(request.target()));
  if (target.segments.size() >= 2)
    (void)gateway_event(request, target, "/" + target.segments.back(), "fuzz-request-id");
  return 0;
}
