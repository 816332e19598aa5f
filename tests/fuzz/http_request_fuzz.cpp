// The HTTP request path up to routing: bytes from a client through Beast's
// parser under thawd's limits, the credential check on the header alone, and
// the API's handling (authentication, target parsing, routing) without a
// function service behind it.
#include <boost/beast/http.hpp>
#include <cstdint>

#include "invoker/api/api.hpp"

namespace http = boost::beast::http;
using namespace thaw::invoker;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Api& api = *[] {
    auto* a = new Api(nullptr, "fuzz-admin-token");  // lives for the process
    a->add_access_key("AKIAFUZZ", "fuzz-secret");
    return a;
  }();
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(6 * 1024 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec && ec != http::error::need_more) return 0;
  if (parser.is_header_done()) (void)api.refuse_headers(parser.get());
  if (parser.is_done()) (void)api.handle(parser.release());
  return 0;
}
