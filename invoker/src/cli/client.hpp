#pragma once
// thaw's HTTP client of thawd: one keep-alive connection, the admin token on
// every request, a timeout on each.

#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace thaw::cli {

namespace http = boost::beast::http;
using Response = http::response<http::string_body>;

// thawd could not be reached (exit code 3).
struct Unreachable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Client {
 public:
  Client(std::string endpoint, std::string token);
  Response request(http::verb method, const std::string& target, const std::string& body = "",
                   const std::vector<std::pair<std::string, std::string>>& headers = {},
                   std::chrono::seconds timeout = std::chrono::seconds(30));
  const std::string& endpoint() const { return endpoint_; }

 private:
  void connect(std::chrono::seconds timeout);
  std::string endpoint_, host_, port_, token_;
  boost::asio::io_context io_;
  std::optional<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace thaw::cli
