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
#include <optional>
#include <set>

#include "invoker/http/http.hpp"

namespace thaw::invoker {

struct HttpLimits {
  uint32_t header_bytes = 16 * 1024;
  // The body limit for a request line; Lambda takes 6 MB synchronous payloads
  // and larger bodies only for code uploads.
  std::function<uint64_t(const std::string& target, http::verb)> body_bytes;
  std::chrono::seconds read_timeout{30};
  std::chrono::seconds write_timeout{30};
  std::chrono::seconds idle_timeout{75};
  // Looks at a request's header before any body byte is read; a response
  // (401, 403) is sent at once and the connection closed.
  std::function<std::optional<Response>(const Request& header)> check_header;
  // Connections at once, in all and from one client address; past either,
  // a new connection is answered 503 and closed.
  size_t max_connections = 1024;
  size_t max_connections_per_address = 128;
  // Body bytes buffered across all connections (a request reserves its
  // Content-Length, or its route's limit when it has none); past it, 503.
  uint64_t max_buffered_body_bytes = 512ull << 20;
};

using Handler = std::function<void(const Request&, Reply)>;

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint,
             Handler handler, HttpLimits limits);
  ~HttpServer();
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // Stops accepting; connections finish the request in hand, then close.
  void stop();

  // What the server holds now, and what it refused over its caps (metrics).
  struct Load {
    uint64_t connections = 0;
    uint64_t buffered_body_bytes = 0;
    uint64_t refused_connections = 0;  // over max_connections(_per_address)
    uint64_t refused_bodies = 0;       // over max_buffered_body_bytes
  };
  Load load() const;

  class Session;

 private:
  void accept();

  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace thaw::invoker
