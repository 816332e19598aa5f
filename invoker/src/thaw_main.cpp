// thaw: the command-line client of thawd.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <iostream>

#include "invoker/daemon_config.hpp"
#include "invoker/system_facts.hpp"
#include "sandbox/error.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace thaw;

namespace {

constexpr const char* kUsage = R"(Usage: thaw [--endpoint HOST:PORT] COMMAND

Commands:
  health      ask thawd whether it is up (GET /healthz)
  --version   print thaw's version and what this host offers (CRIU, cgroups, kernel)
  --help      print this help

The endpoint comes from --endpoint, then $THAW_ENDPOINT, then 127.0.0.1:8080.
Exit codes: 0 success, 1 thawd answered with an error, 2 bad usage, 3 thawd unreachable.
)";

int health(const std::string& endpoint) {
  const auto [host, port] = invoker::parse_host_port(endpoint);
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(5));
    stream.connect(resolver.resolve(host, std::to_string(port)));
    http::request<http::empty_body> req{http::verb::get, "/healthz", 11};
    req.set(http::field::host, host);
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    std::cout << res.body() << "\n";
    return res.result() == http::status::ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "thaw: cannot reach thawd at " << endpoint << ": " << e.what() << "\n";
    return 3;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string endpoint =
      std::getenv("THAW_ENDPOINT") ? std::getenv("THAW_ENDPOINT") : "127.0.0.1:8080";
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--version") {
        std::cout << invoker::format_version_report("thaw", invoker::gather_system_facts());
        return 0;
      }
      if (a == "--help" || a == "-h") {
        std::cout << kUsage;
        return 0;
      }
      if (a == "--endpoint" && i + 1 < argc) {
        endpoint = argv[++i];
        continue;
      }
      if (a == "health") return health(endpoint);
      std::cerr << "thaw: unknown command or flag \"" << a << "\"\n" << kUsage;
      return 2;
    }
    std::cerr << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "thaw: " << e.what() << "\n";
    return 2;
  }
}
