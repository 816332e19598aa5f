#pragma once
// thaw's HTTP client of thawd: one keep-alive connection, the admin token on
// every request, and a deadline on each, covering the whole exchange.

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace thaw::cli {

namespace http = boost::beast::http;
using Response = http::response<http::string_body>;
using Headers = std::vector<std::pair<std::string, std::string>>;

// Where thawd listens. `text` is what the user gave, for messages.
struct Endpoint {
  std::string host;
  std::string port;
  std::string text;
};

// HOST:PORT, or http://HOST:PORT/ as people copy it from a browser.
// Throws UsageError naming `source` (the flag or variable it came from).
Endpoint parse_endpoint(const std::string& text, const std::string& source);

// Percent-encodes all but RFC 3986's unreserved characters, for one path
// segment or one query value.
std::string url_encode(const std::string& text);

constexpr std::chrono::seconds kRequestTimeout{30};

class Client {
 public:
  Client(Endpoint endpoint, std::string token);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Throws Unreachable when thawd cannot be reached or does not answer within
  // `timeout`; an HTTP error status is an answer, returned as any other.
  Response request(http::verb method, const std::string& target, const std::string& body = "",
                   const Headers& headers = {}, std::chrono::seconds timeout = kRequestTimeout);

  // From now on SIGINT and SIGTERM end the request in progress (or the next
  // one) with Interrupted, instead of killing the process.
  void stop_on_signals();

  const std::string& endpoint() const { return endpoint_.text; }

 private:
  void connect();
  boost::beast::error_code exchange(const http::request<http::string_body>& req, Response& res,
                                    std::chrono::seconds timeout);
  // Runs the io_context until `done`: signals are waited for on it too, so it
  // never runs out of work by itself.
  void run_until(const bool& done);

  Endpoint endpoint_;
  std::string token_;
  boost::asio::io_context io_;
  std::optional<boost::asio::signal_set> signals_;
  bool interrupted_ = false;
  std::optional<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace thaw::cli
