// nginx (Debian's) in front of two thawds, with the configuration the
// repository ships (scripts/gateway-config): functions are called through it.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "http_client.hpp"
#include "lambda_requests.hpp"
#include "thawd_process.hpp"

using namespace thaw::itest;
using http::status;
using http::verb;
using json = nlohmann::json;

namespace {

uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error(std::string("free_port: ") + strerror(errno));
  close(fd);
  return ntohs(a.sin_port);
}

// nginx with the rendered configuration, stopped (and its files removed) at the end.
class Nginx {
 public:
  Nginx(const std::string& binary, const std::vector<uint16_t>& thawds) : port_(free_port()) {
    char tmpl[] = "/tmp/thaw-nginx-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    std::vector<std::string> argv = {std::string(THAW_SOURCE_DIR) + "/scripts/gateway-config",
                                     "--listen", "127.0.0.1:" + std::to_string(port_), "--prefix",
                                     dir_};
    for (auto p : thawds) argv.insert(argv.end(), {"--thawd", "127.0.0.1:" + std::to_string(p)});
    auto [st, conf] = run_program(argv);
    if (WEXITSTATUS(st) != 0) {
      clean_up();
      throw std::runtime_error("gateway-config: " + conf);
    }
    std::ofstream(dir_ + "/nginx.conf") << conf;
    pid_ = fork();
    if (pid_ == 0) {
      const std::string log = dir_ + "/stderr.log";
      freopen(log.c_str(), "w", stderr);
      execl(binary.c_str(), binary.c_str(), "-e", "stderr", "-p", dir_.c_str(), "-c",
            (dir_ + "/nginx.conf").c_str(), "-g", "daemon off;", nullptr);
      _exit(127);
    }
    // Wait until it answers.
    for (int i = 0; i < 200; ++i) {
      try {
        HttpClient probe(port_);
        if (probe.request(verb::get, "/healthz").result() == status::ok) return;
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const auto why = log();
    clean_up();  // no destructor runs for a constructor that throws
    throw std::runtime_error("nginx did not come up: " + why);
  }
  ~Nginx() { clean_up(); }
  uint16_t port() const { return port_; }
  std::string log() const {
    std::ifstream in(dir_ + "/stderr.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  void clean_up() {
    if (pid_ > 0) {
      kill(pid_, SIGQUIT);  // graceful: workers finish, master exits
      int st;
      waitpid(pid_, &st, 0);
      pid_ = -1;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  uint16_t port_;
  std::string dir_;
  pid_t pid_ = -1;
};

uint64_t invocations_of(const ThawdProcess& thawd, const std::string& function) {
  HttpClient c(thawd.port(), thawd.token());
  const auto usage = json::parse(c.request(verb::get, "/thaw/v1/usage").body());
  for (const auto& f : usage["Functions"])
    if (f["FunctionName"] == function) return f["Invocations"];
  return 0;
}

}  // namespace

TEST(GatewayNginx, FunctionsAreCalledThroughNginxInFrontOfTwoThawds) {
  const std::string nginx = std::string(THAW_TOOLS_DIR) + "/usr/sbin/nginx";
  if (!std::filesystem::exists(nginx))
    GTEST_SKIP() << nginx << " is missing (scripts/install-deps unpacks it)";
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess a({"--public-trigger"}), b({"--public-trigger"});
  for (const auto* t : {&a, &b}) {
    HttpClient c(t->port(), t->token());
    auto body = json::parse(create_body("gw", "python3.11", "handler.handler", "python-gateway"));
    body["SnapStart"] = {{"ApplyOn", "None"}};
    ASSERT_EQ(c.request(verb::post, "/2015-03-31/functions", body.dump()).result(),
              status::created);
  }
  Nginx gateway(nginx, {a.port(), b.port()});
  HttpClient client(gateway.port());  // no credential: the gateway is the front door
  for (int i = 0; i < 12; ++i) {
    auto r = client.request(verb::post, "/function/gw/orders/" + std::to_string(i) + "?q=1",
                            R"({"n":1})", {{"Content-Type", "application/json"}});
    ASSERT_EQ(r.result(), status::created) << r.body() << gateway.log();
    const auto seen = json::parse(r.body());
    EXPECT_EQ(seen["rawPath"], "/orders/" + std::to_string(i));
    EXPECT_EQ(seen["rawQueryString"], "q=1");
    EXPECT_EQ(r["X-From"], "function");
  }
  // nginx balanced the calls over both thawds.
  EXPECT_GT(invocations_of(a, "gw"), 0u);
  EXPECT_GT(invocations_of(b, "gw"), 0u);
  EXPECT_EQ(invocations_of(a, "gw") + invocations_of(b, "gw"), 12u);
  // Only the trigger and the health check pass through the gateway.
  EXPECT_EQ(client.request(verb::get, "/2015-03-31/functions/").result(), status::not_found);
  EXPECT_EQ(client.request(verb::get, "/function/missing/x").result(), status::not_found);
  // Without the gateway, the management API still wants the token.
  HttpClient direct(a.port());
  EXPECT_EQ(direct.request(verb::get, "/2015-03-31/functions/").result(), status::unauthorized);
}
