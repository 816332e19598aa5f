#pragma once
// A small synchronous HTTP/1.1 client over a real TCP connection, for tests.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <string>

namespace thaw::itest {

namespace beast = boost::beast;
namespace http = beast::http;

class HttpClient {
 public:
  // `token` non-empty: every request carries "Authorization: Bearer <token>".
  explicit HttpClient(uint16_t port, std::string token = "");
  http::response<http::string_body> request(
      http::verb method, const std::string& target, const std::string& body = "",
      const std::vector<std::pair<std::string, std::string>>& headers = {});
  // Writes raw bytes and reads one response (for malformed requests).
  http::response<http::string_body> raw(const std::string& bytes);
  // Writes bytes without waiting for anything (a request still being sent).
  void send(const std::string& bytes);
  // Reads one response, waiting at most `limit` (throws past it).
  http::response<http::string_body> read_response(
      std::chrono::seconds limit = std::chrono::seconds(30));
  bool connected();

 private:
  boost::asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::string token_;
};

}  // namespace thaw::itest
