#include "invoker/http/http_server.hpp"

#include <fcntl.h>

#include <array>
#include <atomic>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include "invoker/api/lambda/lambda_limits.hpp"

namespace thaw::invoker {

namespace beast = boost::beast;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Asio opens its sockets without close-on-exec: thawd's children (criu)
// would inherit clients' connections and keep them open after thawd is gone,
// for as long as they run. (Set right after accept: a spawn in that window
// of microseconds is the one left.)
namespace {
void close_on_exec(int fd) {
  const int flags = fcntl(fd, F_GETFD);
  if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}
}  // namespace

struct HttpServer::Impl {
  asio::io_context& io;
  tcp::acceptor acceptor;
  Handler handler;
  HttpLimits limits;
  std::mutex mutex;
  std::set<std::weak_ptr<Session>, std::owner_less<std::weak_ptr<Session>>> sessions;
  std::atomic<bool> stopping{false};
  // Open connections, in all and per client address (count_mutex held). A
  // mutex of their own: a session's destructor counts, and stop() may drop
  // the last reference to one while it holds `mutex`.
  std::mutex count_mutex;
  size_t connections = 0;
  std::map<asio::ip::address, size_t> per_address;
  std::atomic<uint64_t> buffered_body_bytes{0};
  std::atomic<uint64_t> refused_connections{0};
  std::atomic<uint64_t> refused_bodies{0};

  // Counts a new connection; false when it is one too many.
  bool admit(const asio::ip::address& from) {
    std::lock_guard lock(count_mutex);
    if (connections >= limits.max_connections ||
        per_address[from] >= limits.max_connections_per_address) {
      if (per_address[from] == 0) per_address.erase(from);
      ++refused_connections;
      return false;
    }
    ++connections;
    ++per_address[from];
    return true;
  }
  void release(const asio::ip::address& from) {
    std::lock_guard lock(count_mutex);
    --connections;
    if (--per_address[from] == 0) per_address.erase(from);
  }
  // Reserves `bytes` of the body budget; false when they do not fit.
  bool reserve_body(uint64_t bytes) {
    uint64_t now = buffered_body_bytes.load();
    do {
      if (now + bytes > limits.max_buffered_body_bytes) {
        ++refused_bodies;
        return false;
      }
    } while (!buffered_body_bytes.compare_exchange_weak(now, now + bytes));
    return true;
  }

  Impl(asio::io_context& ctx, const tcp::endpoint& ep, Handler h, HttpLimits l)
      : io(ctx), acceptor(asio::make_strand(ctx)), handler(std::move(h)), limits(std::move(l)) {
    acceptor.open(ep.protocol());
    close_on_exec(acceptor.native_handle());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen(asio::socket_base::max_listen_connections);
  }
};

class HttpServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<Impl> server)
      : stream_(std::move(socket)), server_(std::move(server)) {
    beast::error_code ec;
    peer_ = stream_.socket().remote_endpoint(ec).address();
    admitted_ = !ec && server_->admit(peer_);
  }
  ~Session() {
    release_body();
    if (admitted_) server_->release(peer_);
  }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->admitted_)
        return self->send(unavailable("Too many connections to thawd; try again"), false);
      self->read_header(true);
    });
  }

  // Called from stop(): an idle connection closes now, a busy one after its answer.
  void close_if_idle() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->idle_) self->stream_.socket().close();
    });
  }

 private:
  void read_header(bool first) {
    // stop() may have looked at this session while it was busy: an answer
    // sent with keep-alive before the stop must not start a new wait.
    if (server_->stopping) return close();
    parser_.emplace();
    parser_->header_limit(server_->limits.header_bytes);
    // The body limit depends on the route: it is set once the header is in.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    idle_ = true;
    stream_.expires_after(first ? server_->limits.read_timeout : server_->limits.idle_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    idle_ = false;
    if (ec == http::error::header_limit) {
      return send(
          lambda_error(http::status::request_header_fields_too_large, "RequestTooLargeException",
                       "Request headers exceed the limit of " +
                           std::to_string(server_->limits.header_bytes) + " bytes"),
          false);
    }
    if (ec) return close();
    const auto& h = parser_->get();
    const uint64_t limit = server_->limits.body_bytes
                               ? server_->limits.body_bytes(std::string(h.target()), h.method())
                               : kMaxSyncPayloadBytes;
    parser_->body_limit(limit);
    // Credentials first: nothing of a refused request's body is buffered.
    if (server_->limits.check_header) {
      std::optional<Response> refused;
      try {
        refused = server_->limits.check_header(h);
      } catch (const std::exception& e) {
        refused = lambda_error(http::status::internal_server_error, "ServiceException", e.what(),
                               "Service");
      }
      if (refused) return send(std::move(*refused), false);
    }
    const bool sized = h.has_content_length() && parser_->content_length();
    if (sized && *parser_->content_length() > limit) return too_large(limit);
    const uint64_t body = sized ? *parser_->content_length() : (parser_->chunked() ? limit : 0);
    if (body && !server_->reserve_body(body))
      return send(unavailable("thawd is buffering as many request bodies as it may; try again"),
                  false);
    reserved_ = body;
    stream_.expires_after(server_->limits.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this(), limit](beast::error_code e, size_t) {
                       if (e == http::error::body_limit) return self->too_large(limit);
                       if (e) return self->close();
                       self->handle();
                     });
  }

  static Response unavailable(const std::string& message) {
    return lambda_error(http::status::service_unavailable, "ServiceUnavailableException", message,
                        "Service");
  }

  void release_body() { server_->buffered_body_bytes -= std::exchange(reserved_, 0); }

  void too_large(uint64_t limit) {
    send(lambda_error(http::status::payload_too_large, "RequestTooLargeException",
                      "Request must be smaller than " + std::to_string(limit) + " bytes for the " +
                          std::string(parser_->get().target()) + " operation"),
         false);
  }

  // An answer given while the handler still runs is sent when it returns,
  // on this strand; one given later is posted to it.
  struct PendingAnswer {
    std::mutex mutex;
    bool in_handler = true;
    bool answered = false;
    std::optional<Response> response;
  };

  void handle() {
    Request req = parser_->release();
    const bool keep = req.keep_alive();
    auto pending = std::make_shared<PendingAnswer>();
    Reply reply = [self = shared_from_this(), pending, keep](Response res) {
      std::unique_lock lock(pending->mutex);
      if (std::exchange(pending->answered, true)) return;
      if (pending->in_handler) {
        pending->response = std::move(res);
        return;
      }
      lock.unlock();
      asio::post(self->stream_.get_executor(), [self, keep, res = std::move(res)]() mutable {
        self->answer(std::move(res), keep);
      });
    };
    try {
      server_->handler(req, reply);
    } catch (const std::exception& e) {
      reply(lambda_error(http::status::internal_server_error, "ServiceException", e.what(),
                         "Service"));
    }
    req = {};  // its body no longer counts against the budget
    release_body();
    std::unique_lock lock(pending->mutex);
    pending->in_handler = false;
    if (pending->response) {
      auto res = std::move(*pending->response);
      lock.unlock();
      answer(std::move(res), keep);
    }
  }

  void answer(Response res, bool keep_alive) {
    release_body();
    const bool keep = keep_alive && !server_->stopping;
    send(std::move(res), keep);
  }

  void send(Response res, bool keep_alive) {
    res.keep_alive(keep_alive);
    res.prepare_payload();
    auto msg = std::make_shared<Response>(std::move(res));
    stream_.expires_after(server_->limits.write_timeout);
    http::async_write(stream_, *msg,
                      [self = shared_from_this(), msg, keep_alive](beast::error_code ec, size_t) {
                        if (ec) return self->close();
                        if (!keep_alive) return self->linger();
                        self->read_header(false);
                      });
  }

  // After an answer that ends the connection (413 while the client is still
  // sending, say), stop sending and drain what the client still writes, so
  // it reads our answer instead of a reset.
  void linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(5));
    drain_ = std::make_shared<std::array<char, 65536>>();
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(*drain_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kMaxDrainBytes) return self->close();
                              self->drain();
                            });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Impl> server_;
  bool idle_ = true;
  asio::ip::address peer_;
  bool admitted_ = false;
  uint64_t reserved_ = 0;  // of the body budget, until the request is handled
  static constexpr size_t kMaxDrainBytes = 128u * 1024 * 1024;
  std::shared_ptr<std::array<char, 65536>> drain_;
  size_t drained_ = 0;
};

HttpServer::HttpServer(asio::io_context& io, const tcp::endpoint& endpoint, Handler handler,
                       HttpLimits limits)
    : impl_(std::make_shared<Impl>(io, endpoint, std::move(handler), std::move(limits))) {
  accept();
}

HttpServer::~HttpServer() = default;

tcp::endpoint HttpServer::local_endpoint() const {
  return impl_->acceptor.local_endpoint();
}

void HttpServer::accept() {
  auto impl = impl_;
  impl->acceptor.async_accept(
      asio::make_strand(impl->io), [this, impl](beast::error_code ec, tcp::socket socket) {
        if (ec) return;  // the acceptor was closed by stop()
        close_on_exec(socket.native_handle());
        auto session = std::make_shared<Session>(std::move(socket), impl);
        {
          std::lock_guard lock(impl->mutex);
          for (auto it = impl->sessions.begin(); it != impl->sessions.end();)
            it = it->expired() ? impl->sessions.erase(it) : std::next(it);
          impl->sessions.insert(session);
        }
        session->start();
        accept();
      });
}

HttpServer::Load HttpServer::load() const {
  Load l;
  {
    std::lock_guard lock(impl_->count_mutex);
    l.connections = impl_->connections;
  }
  l.buffered_body_bytes = impl_->buffered_body_bytes.load();
  l.refused_connections = impl_->refused_connections.load();
  l.refused_bodies = impl_->refused_bodies.load();
  return l;
}

void HttpServer::stop() {
  auto impl = impl_;
  asio::post(impl->acceptor.get_executor(), [impl] {
    beast::error_code ec;
    impl->acceptor.close(ec);
  });
  std::lock_guard lock(impl->mutex);
  impl->stopping = true;
  for (auto& weak : impl->sessions)
    if (auto s = weak.lock()) s->close_if_idle();
}

}  // namespace thaw::invoker
