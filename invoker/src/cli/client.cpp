#include "client.hpp"

#include <boost/asio/ip/tcp.hpp>

#include "invoker/daemon_config.hpp"

namespace thaw::cli {

namespace beast = boost::beast;
using tcp = boost::asio::ip::tcp;

Client::Client(std::string endpoint, std::string token)
    : endpoint_(std::move(endpoint)), token_(std::move(token)) {
  const auto [host, port] = invoker::parse_host_port(endpoint_);
  host_ = host;
  port_ = std::to_string(port);
}

void Client::connect(std::chrono::seconds timeout) {
  try {
    tcp::resolver resolver(io_);
    stream_.emplace(io_);
    stream_->expires_after(timeout);
    stream_->connect(resolver.resolve(host_, port_));
  } catch (const std::exception& e) {
    stream_.reset();
    throw Unreachable("cannot reach thawd at " + endpoint_ + ": " + e.what());
  }
}

Response Client::request(http::verb method, const std::string& target, const std::string& body,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         std::chrono::seconds timeout) {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, host_);
  req.set(http::field::user_agent, "thaw");
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == http::verb::post || method == http::verb::put) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  // One retry on a fresh connection: thawd may have closed an idle one.
  for (int attempt = 0;; ++attempt) {
    if (!stream_) connect(timeout);
    try {
      stream_->expires_after(timeout);
      http::write(*stream_, req);
      Response res;
      http::read(*stream_, buffer_, res);
      if (!res.keep_alive()) stream_.reset();
      return res;
    } catch (const std::exception& e) {
      stream_.reset();
      buffer_.clear();
      if (attempt == 1) throw Unreachable("thawd at " + endpoint_ + " did not answer: " + e.what());
    }
  }
}

}  // namespace thaw::cli
