#include "http_client.hpp"

#include <boost/asio/write.hpp>

namespace thaw::itest {

HttpClient::HttpClient(uint16_t port, std::string token) : stream_(io_), token_(std::move(token)) {
  stream_.expires_after(std::chrono::seconds(30));
  stream_.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
}

http::response<http::string_body> HttpClient::request(
    http::verb method, const std::string& target, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  stream_.expires_after(std::chrono::seconds(30));
  http::write(stream_, req);
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  http::read(stream_, buffer_, parser);
  return parser.release();
}

http::response<http::string_body> HttpClient::raw(const std::string& bytes) {
  send(bytes);
  return read_response();
}

void HttpClient::send(const std::string& bytes) {
  stream_.expires_after(std::chrono::seconds(30));
  boost::asio::write(stream_.socket(), boost::asio::buffer(bytes));
}

http::response<http::string_body> HttpClient::read_response(std::chrono::seconds limit) {
  // tcp_stream's timeout applies to asynchronous operations only.
  stream_.expires_after(limit);
  http::response<http::string_body> res;
  beast::error_code result;
  http::async_read(stream_, buffer_, res, [&result](beast::error_code ec, size_t) { result = ec; });
  io_.restart();
  io_.run();
  if (result) throw beast::system_error(result);
  return res;
}

bool HttpClient::connected() {
  // A closed connection reads as end of stream.
  beast::error_code ec;
  char byte;
  stream_.socket().non_blocking(true);
  stream_.socket().read_some(boost::asio::buffer(&byte, 1), ec);
  stream_.socket().non_blocking(false);
  return ec == boost::asio::error::would_block;
}

}  // namespace thaw::itest
