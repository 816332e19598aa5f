#include "client.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cctype>
#include <csignal>

#include "errors.hpp"
#include "thaw/build_info.hpp"

namespace thaw::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

constexpr std::chrono::seconds kConnectTimeout{10};
// Large enough for any answer thawd gives: an invocation's payload is at most 6 MB.
constexpr uint64_t kMaxResponseBytes = 64u * 1024 * 1024;
// X-Amz-Log-Result carries 4 KB of log, base64-encoded.
constexpr uint32_t kMaxHeaderBytes = 64u * 1024;

// Errors that mean a kept-alive connection was closed by thawd while idle.
bool closed_while_idle(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

}  // namespace

Endpoint parse_endpoint(const std::string& text, const std::string& source) {
  std::string rest = text;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const auto colon = rest.rfind(':');
  const auto bad = [&] {
    return UsageError(source + ": expected HOST:PORT, got \"" + text + "\"");
  };
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) throw bad();
  std::string host = rest.substr(0, colon);
  const std::string port = rest.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) == 0 || std::stoul(port) > 65535)
    throw bad();
  // [::1]:8080
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return {host, port, text};
}

std::string url_encode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Client::Client(Endpoint endpoint, std::string token)
    : endpoint_(std::move(endpoint)), token_(std::move(token)) {}

void Client::stop_on_signals() {
  signals_.emplace(io_, SIGINT, SIGTERM);
  signals_->async_wait([this](const beast::error_code& ec, int) {
    if (ec) return;
    interrupted_ = true;
    if (stream_) stream_->cancel();
  });
}

void Client::run_until(const bool& done) {
  io_.restart();
  while (!done)
    if (io_.run_one() == 0) throw std::logic_error("thaw: an operation was lost");
}

void Client::connect() {
  tcp::resolver resolver(io_);
  beast::error_code ec;
  const auto addresses = resolver.resolve(endpoint_.host, endpoint_.port, ec);
  if (ec) throw Unreachable("cannot resolve " + endpoint_.host + ": " + ec.message());
  stream_.emplace(io_);
  stream_->expires_after(kConnectTimeout);
  bool done = false;
  stream_->async_connect(addresses, [&](const beast::error_code& e, const tcp::endpoint&) {
    ec = e;
    done = true;
  });
  run_until(done);
  if (interrupted_) throw Interrupted();
  if (ec) {
    stream_.reset();
    throw Unreachable("cannot reach thawd at " + endpoint_.text + ": " +
                      (ec == beast::error::timeout
                           ? "no answer in " + std::to_string(kConnectTimeout.count()) + " s"
                           : ec.message()));
  }
}

beast::error_code Client::exchange(const http::request<http::string_body>& req, Response& res,
                                   std::chrono::seconds timeout) {
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBytes);
  parser.header_limit(kMaxHeaderBytes);
  beast::error_code result;
  bool done = false;
  // One deadline for writing the request and reading the whole answer.
  stream_->expires_after(timeout);
  http::async_write(*stream_, req, [&](const beast::error_code& ec, size_t) {
    if (ec) {
      result = ec;
      done = true;
      return;
    }
    http::async_read(*stream_, buffer_, parser, [&](const beast::error_code& e, size_t) {
      result = e;
      done = true;
    });
  });
  run_until(done);
  if (!result) res = parser.release();
  return result;
}

Response Client::request(http::verb method, const std::string& target, const std::string& body,
                         const Headers& headers, std::chrono::seconds timeout) {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, endpoint_.host);
  req.set(http::field::user_agent, std::string("thaw/") + kVersion);
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  for (const auto& [name, value] : headers) req.set(name, value);
  if (!body.empty() || method == http::verb::post || method == http::verb::put) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  for (int attempt = 0;; ++attempt) {
    if (interrupted_) throw Interrupted();
    const bool reused = stream_.has_value();
    if (!reused) connect();
    Response res;
    const auto ec = exchange(req, res, timeout);
    if (!ec) {
      if (!res.keep_alive()) stream_.reset();
      return res;
    }
    stream_.reset();
    buffer_.clear();
    if (interrupted_) throw Interrupted();
    // thawd closes connections that sat idle, so the first request on a
    // kept-alive one may find it gone: that request is sent once more, on a
    // new connection. Nothing else is sent twice: an invocation must not run twice.
    if (reused && attempt == 0 && closed_while_idle(ec)) continue;
    if (ec == beast::error::timeout)
      throw Unreachable("thawd at " + endpoint_.text + " did not answer within " +
                        std::to_string(timeout.count()) + " s");
    throw Unreachable("thawd at " + endpoint_.text + " did not answer: " + ec.message());
  }
}

}  // namespace thaw::cli
