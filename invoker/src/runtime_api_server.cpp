#include "invoker/runtime_api_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "sandbox/error.hpp"

namespace thaw::invoker {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;

namespace {

constexpr uint16_t kPort = 9001;  // where Lambda's own runtimes find it
constexpr const char* kPrefix = "/2018-06-01/runtime/";

// A socket bound inside another network namespace: setns applies to the
// calling thread only, so a short-lived thread does it.
int listen_in_namespace(int net_ns_fd) {
  int fd = -1, err = 0;
  std::thread([&] {
    if (setns(net_ns_fd, CLONE_NEWNET) != 0) {
      err = errno;
      return;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(kPort);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(fd, 16) != 0) {
      err = errno;
      if (fd >= 0) close(fd);
      fd = -1;
    }
  }).join();
  if (fd < 0)
    throw_errno("runtime API: listen on 127.0.0.1:9001 in the instance's network namespace", err);
  return fd;
}

void write_frame(int fd, const nlohmann::json& header, std::string_view body) {
  const auto h = header.dump();
  std::string out(8, '\0');
  auto put = [&](size_t at, uint32_t v) {
    out[at] = static_cast<char>(v >> 24);
    out[at + 1] = static_cast<char>(v >> 16);
    out[at + 2] = static_cast<char>(v >> 8);
    out[at + 3] = static_cast<char>(v);
  };
  put(0, static_cast<uint32_t>(h.size()));
  put(4, static_cast<uint32_t>(body.size()));
  out += h;
  out += body;
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t w = send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return;
    }
    done += static_cast<size_t>(w);
  }
}

bool read_exact(int fd, char* out, size_t n) {
  while (n > 0) {
    const ssize_t r = recv(fd, out, n, 0);
    if (r == 0) return false;
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    out += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool read_frame(int fd, nlohmann::json& header, std::string& body) {
  unsigned char prefix[8];
  if (!read_exact(fd, reinterpret_cast<char*>(prefix), 8)) return false;
  const uint32_t hl = (uint32_t{prefix[0]} << 24) | (uint32_t{prefix[1]} << 16) |
                      (uint32_t{prefix[2]} << 8) | prefix[3];
  const uint32_t bl = (uint32_t{prefix[4]} << 24) | (uint32_t{prefix[5]} << 16) |
                      (uint32_t{prefix[6]} << 8) | prefix[7];
  std::string h(hl, '\0');
  body.assign(bl, '\0');
  if (!read_exact(fd, h.data(), hl) || !read_exact(fd, body.data(), bl)) return false;
  header = nlohmann::json::parse(h, nullptr, false);
  return header.is_object();
}

http::response<http::string_body> reply(http::status status, const std::string& body) {
  http::response<http::string_body> r{status, 11};
  r.set(http::field::content_type, "application/json");
  r.body() = body;
  r.prepare_payload();
  return r;
}

}  // namespace

RuntimeApiServer::RuntimeApiServer(int net_ns_fd, UniqueFd channel, std::string function_arn)
    : listener_(listen_in_namespace(net_ns_fd)),
      channel_(std::move(channel)),
      function_arn_(std::move(function_arn)) {
  acceptor_ = std::thread([this] { accept_loop(); });
}

RuntimeApiServer::~RuntimeApiServer() {
  stopping_ = true;
  shutdown(listener_.get(), SHUT_RDWR);  // wakes accept()
  shutdown(channel_.get(), SHUT_RDWR);   // wakes a reader waiting for the next invocation
  {
    std::lock_guard lock(threads_mutex_);
    for (int fd : connections_) shutdown(fd, SHUT_RDWR);
  }
  acceptor_.join();
  // Join without holding the lock: a finishing connection takes it to remove itself.
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(threads_mutex_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

void RuntimeApiServer::accept_loop() {
  while (!stopping_) {
    const int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      return;
    }
    std::lock_guard lock(threads_mutex_);
    if (stopping_) {
      close(fd);
      return;
    }
    connections_.push_back(fd);
    threads_.emplace_back([this, fd] { serve(fd); });
  }
}

void RuntimeApiServer::serve(int fd) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io, asio::ip::tcp::v4(), fd);
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(16u * 1024 * 1024);  // let the size check below give Lambda's error
    beast::error_code ec;
    http::read(socket, buffer, parser, ec);
    if (ec) break;
    auto req = parser.release();
    const std::string target(req.target());
    http::response<http::string_body> res;
    if (req.method() == http::verb::get && target == std::string(kPrefix) + "invocation/next") {
      if (!ready_sent_.exchange(true)) {
        std::lock_guard lock(write_mutex_);
        write_frame(channel_.get(), {{"type", "ready"}}, {});
      }
      nlohmann::json header;
      std::string body;
      bool got;
      {
        std::lock_guard lock(read_mutex_);
        got = read_frame(channel_.get(), header, body);
      }
      if (!got) break;  // thawd is tearing the instance down
      const std::string id = header.value("request_id", "");
      {
        std::lock_guard lock(write_mutex_);
        current_request_id_ = id;
      }
      res = reply(http::status::ok, body);
      res.set("Lambda-Runtime-Aws-Request-Id", id);
      res.set("Lambda-Runtime-Deadline-Ms",
              std::to_string(header.value("deadline_ms", uint64_t{0})));
      res.set("Lambda-Runtime-Invoked-Function-Arn", header.value("function_arn", function_arn_));
      res.set("Lambda-Runtime-Trace-Id", "Root=1-" + id.substr(0, 8) + "-" + id + ";Sampled=0");
    } else if (req.method() == http::verb::post && target == std::string(kPrefix) + "init/error") {
      std::lock_guard lock(write_mutex_);
      write_frame(channel_.get(), {{"type", "init_error"}}, req.body());
      res = reply(http::status::accepted, R"({"status":"OK"})");
    } else if (req.method() == http::verb::post &&
               target.rfind(std::string(kPrefix) + "invocation/", 0) == 0) {
      const auto rest = target.substr(std::string(kPrefix).size() + 11);  // "{id}/response"
      const auto slash = rest.find('/');
      const auto id = rest.substr(0, slash),
                 what = slash == std::string::npos ? "" : rest.substr(slash + 1);
      bool known;
      {
        std::lock_guard lock(write_mutex_);
        known = id == current_request_id_ && (what == "response" || what == "error");
      }
      if (!known) {
        res = reply(
            http::status::bad_request,
            R"({"errorMessage":"unknown request id or operation","errorType":"InvalidRequestID"})");
      } else {
        std::string body = req.body();
        if (what == "error" && nlohmann::json::parse(body, nullptr, false).is_discarded()) {
          // The Runtime API takes any body; thawd's callers expect Lambda's JSON.
          const std::string type(req["Lambda-Runtime-Function-Error-Type"]);
          body = nlohmann::json{
              {"errorType", type.empty() ? "Unhandled" : type},
              {"errorMessage",
               body}}.dump();
        }
        std::lock_guard lock(write_mutex_);
        write_frame(channel_.get(), {{"type", what}}, body);
        current_request_id_.clear();
        res = reply(http::status::accepted, R"({"status":"OK"})");
      }
    } else {
      res = reply(http::status::not_found,
                  R"({"errorMessage":"unknown Runtime API path","errorType":"NotFound"})");
    }
    res.keep_alive(req.keep_alive());
    http::write(socket, res, ec);
    if (ec || !req.keep_alive()) break;
  }
  beast::error_code ignored;
  socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  std::lock_guard lock(threads_mutex_);
  std::erase(connections_, fd);
  // `socket` closes the descriptor as it goes out of scope.
}

}  // namespace thaw::invoker
