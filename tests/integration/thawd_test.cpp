// thawd over real HTTP: the endpoints that exist, limits, errors, shutdown.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "http_client.hpp"
#include "thawd_process.hpp"

using namespace thaw::itest;
using http::status;
using http::verb;

TEST(Thawd, AnswersHealthAndReadiness) {
  ThawdProcess thawd;
  HttpClient c(thawd.port());
  auto r = c.request(verb::get, "/healthz");
  EXPECT_EQ(r.result(), status::ok);
  EXPECT_EQ(nlohmann::json::parse(r.body())["status"], "ok");
  EXPECT_EQ(c.request(verb::get, "/readyz").result(), status::ok);
}

TEST(Thawd, KeepsTheConnectionAlive) {
  ThawdProcess thawd;
  HttpClient c(thawd.port());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(c.request(verb::get, "/healthz").result(), status::ok);
  EXPECT_TRUE(c.connected());
}

TEST(Thawd, MetricsInPrometheusTextFormat) {
  ThawdProcess thawd;
  HttpClient c(thawd.port());
  c.request(verb::get, "/nope");
  auto r = c.request(verb::get, "/metrics");
  EXPECT_EQ(r.result(), status::ok);
  EXPECT_NE(r[http::field::content_type].find("text/plain"), std::string::npos);
  EXPECT_NE(r.body().find("# TYPE thaw_http_requests_total counter"), std::string::npos);
  EXPECT_NE(r.body().find("thaw_http_requests_total{class=\"4xx\"} 1"), std::string::npos)
      << r.body();
}

TEST(Thawd, UnknownOperationInLambdasErrorShape) {
  ThawdProcess thawd;
  HttpClient c(thawd.port());
  auto r = c.request(verb::get, "/2015-03-31/nothing-here");
  EXPECT_EQ(r.result(), status::not_found);
  EXPECT_EQ(r["x-amzn-ErrorType"], "UnknownOperationException");
  auto body = nlohmann::json::parse(r.body());
  EXPECT_EQ(body["Type"], "User");
  EXPECT_FALSE(body["message"].get<std::string>().empty());
}

TEST(Thawd, BodyOverSixMegabytesIsRefusedWith413) {
  ThawdProcess thawd;
  HttpClient c(thawd.port());
  const std::string big(6 * 1024 * 1024 + 1, 'x');
  auto r = c.request(verb::post, "/2015-03-31/functions/f/invocations", big);
  EXPECT_EQ(r.result(), status::payload_too_large);
  EXPECT_EQ(r["x-amzn-ErrorType"], "RequestTooLargeException");
  // thawd is still healthy afterwards.
  HttpClient again(thawd.port());
  EXPECT_EQ(again.request(verb::get, "/healthz").result(), status::ok);
}

TEST(Thawd, OversizedHeadersAreRefused) {
  ThawdProcess thawd;
  HttpClient c(thawd.port());
  auto r = c.request(verb::get, "/healthz", "", {{"X-Big", std::string(32 * 1024, 'a')}});
  EXPECT_EQ(r.result(), status::request_header_fields_too_large);
  HttpClient again(thawd.port());
  EXPECT_EQ(again.request(verb::get, "/healthz").result(), status::ok);
}

TEST(Thawd, MalformedRequestClosesTheConnectionAndThawdStaysUp) {
  ThawdProcess thawd;
  {
    HttpClient c(thawd.port());
    EXPECT_ANY_THROW(c.raw("THIS IS NOT HTTP\r\n\r\n"));
  }
  HttpClient c(thawd.port());
  EXPECT_EQ(c.request(verb::get, "/healthz").result(), status::ok);
}

TEST(Thawd, StopsCleanlyOnSigterm) {
  ThawdProcess thawd;
  HttpClient idle(thawd.port());
  EXPECT_EQ(idle.request(verb::get, "/healthz").result(), status::ok);
  const auto pid_file = thawd.state_dir() + "/thawd.pid";
  EXPECT_TRUE(std::filesystem::exists(pid_file));
  const int st = thawd.stop();  // an idle keep-alive connection must not hold it up
  EXPECT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_FALSE(std::filesystem::exists(pid_file));
  EXPECT_NE(thawd.log().find("\"event\":\"stopped\""), std::string::npos);
}

TEST(Thawd, RefusesASecondDaemonOnTheSameStateDirectory) {
  ThawdProcess thawd;
  auto [st, out] =
      run_program({THAWD_PATH, "--listen", "127.0.0.1:0", "--state-dir", thawd.state_dir()});
  EXPECT_EQ(WEXITSTATUS(st), 2);
  EXPECT_NE(out.find("another thawd"), std::string::npos) << out;
}

TEST(Thawd, VersionReportsCriuCgroupsAndKernel) {
  for (const char* program : {THAWD_PATH, THAW_PATH}) {
    auto [st, out] = run_program({program, "--version"});
    EXPECT_EQ(WEXITSTATUS(st), 0);
    EXPECT_NE(out.find("0.1.0"), std::string::npos) << out;
    EXPECT_NE(out.find("criu: "), std::string::npos) << out;
    EXPECT_NE(out.find("cgroups: "), std::string::npos) << out;
    EXPECT_NE(out.find("kernel: "), std::string::npos) << out;
  }
}

TEST(Thawd, BadFlagIsAClearError) {
  auto [st, out] = run_program({THAWD_PATH, "--listen", "nowhere"});
  EXPECT_EQ(WEXITSTATUS(st), 2);
  EXPECT_NE(out.find("--listen: expected HOST:PORT"), std::string::npos) << out;
}

TEST(ThawCli, HealthTalksToThawd) {
  ThawdProcess thawd;
  auto [st, out] =
      run_program({THAW_PATH, "--endpoint", "127.0.0.1:" + std::to_string(thawd.port()), "health"});
  EXPECT_EQ(WEXITSTATUS(st), 0) << out;
  EXPECT_NE(out.find("ok"), std::string::npos);
}

TEST(ThawCli, UnreachableThawdExitsWith3) {
  // Port 1 on loopback: nothing listens there.
  auto [st, out] = run_program({THAW_PATH, "--endpoint", "127.0.0.1:1", "health"});
  EXPECT_EQ(WEXITSTATUS(st), 3) << out;
}
