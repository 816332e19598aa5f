#pragma once
// The HTTP/1.1 server: keep-alive, a timeout on every read and write, limits on
// headers and bodies, graceful stop. Request handling is a plain function from
// request to response; sessions only move bytes.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>

#include "invoker/http.hpp"

namespace thaw::invoker {

struct HttpLimits {
  uint32_t header_bytes = 16 * 1024;
  // The body limit for a request line; Lambda takes 6 MB synchronous payloads
  // and larger bodies only for code uploads.
  std::function<uint64_t(const std::string& target, http::verb)> body_bytes;
  std::chrono::seconds read_timeout{30};
  std::chrono::seconds write_timeout{30};
  std::chrono::seconds idle_timeout{75};
};

using Handler = std::function<Response(const Request&)>;

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint,
             Handler handler, HttpLimits limits);
  ~HttpServer();
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // Stops accepting; connections finish the request in hand, then close.
  void stop();

  class Session;

 private:
  void accept();

  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace thaw::invoker
