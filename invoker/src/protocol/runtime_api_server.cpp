#include "invoker/protocol/runtime_api_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "invoker/protocol/frame_messages.hpp"
#include "invoker/protocol/json_text.hpp"
#include "thaw/error.hpp"

namespace thaw::invoker {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;

namespace {

constexpr const char* kPrefix = "/2018-06-01/runtime/";
constexpr uint64_t kMaxEventBytes = 16u << 20;

http::response<http::string_body> reply(http::status status, const std::string& body) {
  http::response<http::string_body> r{status, 11};
  r.set(http::field::content_type, "application/json");
  r.body() = body;
  r.prepare_payload();
  return r;
}

}  // namespace

UniqueFd listen_for_runtime_api() {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw_errno("runtime API: socket");
  const int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(kRuntimeApiPort);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(fd.get(), 16) != 0)
    throw_errno("runtime API: listen on 127.0.0.1:" + std::to_string(kRuntimeApiPort));
  return fd;
}

RuntimeApiServer::RuntimeApiServer(UniqueFd listener, FrameChannel channel)
    : listener_(std::move(listener)), channel_(std::move(channel)) {}

void RuntimeApiServer::run() {
  for (;;) {
    const int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    std::thread([this, fd] { serve(fd); }).detach();
  }
}

bool RuntimeApiServer::next_invocation(Frame& invoke) {
  const auto forever = std::chrono::steady_clock::now() + std::chrono::hours(24 * 365);
  for (;;) {
    auto got = channel_.receive(forever, kMaxEventBytes, -1, {});
    if (got.status != ReceiveStatus::Frame) return false;
    const auto& type = got.frame.type;
    std::lock_guard lock(write_mutex_);
    if (type == frames::kPrepareSnapshot) {
      channel_.send({{"type", frames::kSnapshotReady}});
    } else if (type == frames::kRestored) {
      channel_.send({{"type", frames::kReady}});
    } else if (type == frames::kInvoke) {
      invoke = std::move(got.frame);
      return true;
    }
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
      {
        std::lock_guard lock(write_mutex_);
        if (!std::exchange(ready_sent_, true)) channel_.send({{"type", frames::kReady}});
      }
      Frame invoke;
      bool got;
      {
        std::lock_guard lock(read_mutex_);
        got = next_invocation(invoke);
      }
      if (!got) _exit(0);  // thawd closed the channel: the instance is going away
      const auto& header = invoke.header;
      const std::string id = header.value("request_id", "");
      {
        std::lock_guard lock(write_mutex_);
        current_request_id_ = id;
      }
      res = reply(http::status::ok, invoke.body);
      res.set("Lambda-Runtime-Aws-Request-Id", id);
      res.set("Lambda-Runtime-Deadline-Ms",
              std::to_string(header.value("deadline_ms", uint64_t{0})));
      res.set("Lambda-Runtime-Invoked-Function-Arn", header.value("function_arn", ""));
      res.set("Lambda-Runtime-Trace-Id", "Root=1-" + id.substr(0, 8) + "-" + id + ";Sampled=0");
    } else if (req.method() == http::verb::post && target == std::string(kPrefix) + "init/error") {
      std::lock_guard lock(write_mutex_);
      channel_.send({{"type", frames::kInitError}}, req.body());
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
        known = id == current_request_id_ && (what == frames::kResponse || what == frames::kError);
      }
      if (!known) {
        res = reply(
            http::status::bad_request,
            R"({"errorMessage":"unknown request id or operation","errorType":"InvalidRequestID"})");
      } else {
        std::string body = req.body();
        if (what == frames::kError && nlohmann::json::parse(body, nullptr, false).is_discarded()) {
          // The Runtime API takes any body; thawd's callers expect Lambda's JSON.
          const std::string type(req["Lambda-Runtime-Function-Error-Type"]);
          body = json_text(nlohmann::json{{"errorType", type.empty() ? "Unhandled" : type},
                                          {"errorMessage", body}});
        }
        std::lock_guard lock(write_mutex_);
        channel_.send({{"type", what}}, body);
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
  // `socket` closes the descriptor as it goes out of scope.
}

}  // namespace thaw::invoker
