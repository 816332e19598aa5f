// thawd over real HTTP: the endpoints that exist, limits, errors, shutdown.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "http_client.hpp"
#include "lambda_requests.hpp"
#include "thawd_process.hpp"

using namespace thaw::itest;
using http::status;
using http::verb;

TEST(Thawd, AnswersHealthAndReadiness) {
  ThawdProcess thawd;
  HttpClient c(thawd.port(), thawd.token());
  auto r = c.request(verb::get, "/healthz");
  EXPECT_EQ(r.result(), status::ok);
  EXPECT_EQ(nlohmann::json::parse(r.body())["status"], "ok");
  EXPECT_EQ(c.request(verb::get, "/readyz").result(), status::ok);
  // Probes need no credential; everything else does.
  HttpClient anonymous(thawd.port(), "");
  EXPECT_EQ(anonymous.request(verb::get, "/healthz").result(), status::ok);
  EXPECT_EQ(anonymous.request(verb::get, "/readyz").result(), status::ok);
  EXPECT_EQ(HttpClient(thawd.port(), "").request(verb::get, "/metrics").result(),
            status::unauthorized);
}

TEST(Thawd, KeepsTheConnectionAlive) {
  ThawdProcess thawd;
  HttpClient c(thawd.port(), thawd.token());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(c.request(verb::get, "/healthz").result(), status::ok);
  EXPECT_TRUE(c.connected());
}

TEST(Thawd, MetricsInPrometheusTextFormat) {
  ThawdProcess thawd;
  HttpClient c(thawd.port(), thawd.token());
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
  HttpClient c(thawd.port(), thawd.token());
  auto r = c.request(verb::get, "/2015-03-31/nothing-here");
  EXPECT_EQ(r.result(), status::not_found);
  EXPECT_EQ(r["x-amzn-ErrorType"], "UnknownOperationException");
  auto body = nlohmann::json::parse(r.body());
  EXPECT_EQ(body["Type"], "User");
  EXPECT_FALSE(body["message"].get<std::string>().empty());
}

TEST(Thawd, BodyOverSixMegabytesIsRefusedWith413) {
  ThawdProcess thawd;
  HttpClient c(thawd.port(), thawd.token());
  const std::string big(6 * 1024 * 1024 + 1, 'x');
  auto r = c.request(verb::post, "/2015-03-31/functions/f/invocations", big);
  EXPECT_EQ(r.result(), status::payload_too_large);
  EXPECT_EQ(r["x-amzn-ErrorType"], "RequestTooLargeException");
  // thawd is still healthy afterwards.
  HttpClient again(thawd.port(), thawd.token());
  EXPECT_EQ(again.request(verb::get, "/healthz").result(), status::ok);
}

TEST(Thawd, OversizedHeadersAreRefused) {
  ThawdProcess thawd;
  HttpClient c(thawd.port(), thawd.token());
  auto r = c.request(verb::get, "/healthz", "", {{"X-Big", std::string(32 * 1024, 'a')}});
  EXPECT_EQ(r.result(), status::request_header_fields_too_large);
  HttpClient again(thawd.port(), thawd.token());
  EXPECT_EQ(again.request(verb::get, "/healthz").result(), status::ok);
}

TEST(Thawd, MalformedRequestClosesTheConnectionAndThawdStaysUp) {
  ThawdProcess thawd;
  {
    HttpClient c(thawd.port(), thawd.token());
    EXPECT_ANY_THROW(c.raw("THIS IS NOT HTTP\r\n\r\n"));
  }
  HttpClient c(thawd.port(), thawd.token());
  EXPECT_EQ(c.request(verb::get, "/healthz").result(), status::ok);
}

TEST(Thawd, StopsCleanlyOnSigterm) {
  ThawdProcess thawd;
  HttpClient idle(thawd.port(), thawd.token());
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

TEST(ThawdFunctions, CreateGetInvokeDeleteOverHttp) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  HttpClient c(thawd.port(), thawd.token());
  auto created = c.request(verb::post, "/2015-03-31/functions",
                           create_body("hello", "python3.11", "handler.handler", "python-hello"));
  ASSERT_EQ(created.result(), status::created) << created.body();
  auto cfg = nlohmann::json::parse(created.body());
  EXPECT_EQ(cfg["FunctionName"], "hello");
  EXPECT_EQ(cfg["FunctionArn"], "arn:aws:lambda:us-east-1:000000000000:function:hello");
  EXPECT_EQ(cfg["Runtime"], "python3.11");
  EXPECT_EQ(cfg["MemorySize"], 128);
  EXPECT_EQ(cfg["Timeout"], 3);
  EXPECT_EQ(cfg["State"], "Active");
  EXPECT_EQ(cfg["Version"], "$LATEST");
  EXPECT_EQ(cfg["CodeSha256"].get<std::string>().size(), 44u);  // base64 of 32 bytes

  auto again = c.request(verb::post, "/2015-03-31/functions",
                         create_body("hello", "python3.11", "handler.handler", "python-hello"));
  EXPECT_EQ(again.result(), status::conflict);
  EXPECT_EQ(again["x-amzn-ErrorType"], "ResourceConflictException");

  auto got = c.request(verb::get, "/2015-03-31/functions/hello");
  EXPECT_EQ(got.result(), status::ok);
  EXPECT_EQ(nlohmann::json::parse(got.body())["Configuration"]["Handler"], "handler.handler");
  auto list = nlohmann::json::parse(c.request(verb::get, "/2015-03-31/functions/").body());
  ASSERT_EQ(list["Functions"].size(), 1u);

  auto first = c.request(verb::post, "/2015-03-31/functions/hello/invocations",
                         R"({"name":"http"})", {{"X-Amz-Log-Type", "Tail"}});
  ASSERT_EQ(first.result(), status::ok) << first.body();
  EXPECT_EQ(nlohmann::json::parse(first.body())["message"], "hello http");
  EXPECT_EQ(first["X-Amz-Executed-Version"], "$LATEST");
  const std::string mode(first["X-Thaw-Start-Mode"]);
  EXPECT_TRUE(mode == "cold" || mode == "restore") << mode;
  EXPECT_FALSE(first["X-Amz-Log-Result"].empty());
  auto second = c.request(verb::post, "/2015-03-31/functions/hello/invocations", "{}");
  EXPECT_EQ(second["X-Thaw-Start-Mode"], "warm");

  auto dry = c.request(verb::post, "/2015-03-31/functions/hello/invocations", "{}",
                       {{"X-Amz-Invocation-Type", "DryRun"}});
  EXPECT_EQ(dry.result(), status::no_content);
  auto bad = c.request(verb::post, "/2015-03-31/functions/hello/invocations", "{not json");
  EXPECT_EQ(bad.result(), status::bad_request);
  EXPECT_EQ(bad["x-amzn-ErrorType"], "InvalidRequestContentException");

  EXPECT_EQ(c.request(verb::delete_, "/2015-03-31/functions/hello").result(), status::no_content);
  auto gone = c.request(verb::post, "/2015-03-31/functions/hello/invocations", "{}");
  EXPECT_EQ(gone.result(), status::not_found);
  EXPECT_EQ(gone["x-amzn-ErrorType"], "ResourceNotFoundException");
}

TEST(ThawdFunctions, FunctionErrorsCarryXAmzFunctionError) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  HttpClient c(thawd.port(), thawd.token());
  ASSERT_EQ(c.request(verb::post, "/2015-03-31/functions",
                      create_body("fails", "python3.11", "handler.raise_error", "python-errors"))
                .result(),
            status::created);
  auto r = c.request(verb::post, "/2015-03-31/functions/fails/invocations", "{}");
  EXPECT_EQ(r.result(), status::ok);
  EXPECT_EQ(r["X-Amz-Function-Error"], "Unhandled");
  EXPECT_EQ(nlohmann::json::parse(r.body())["errorType"], "ValueError");
}

TEST(ThawdFunctions, InvalidCreateRequestsNameTheField) {
  ThawdProcess thawd;
  HttpClient c(thawd.port(), thawd.token());
  auto r = c.request(
      verb::post, "/2015-03-31/functions",
      R"({"FunctionName":"x","Runtime":"python3.11","Handler":"a.b","MemorySize":64,"Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}})");
  EXPECT_EQ(r.result(), status::bad_request);
  EXPECT_EQ(r["x-amzn-ErrorType"], "InvalidParameterValueException");
  EXPECT_NE(r.body().find("MemorySize"), std::string::npos) << r.body();
  auto wrong_type = c.request(verb::post, "/2015-03-31/functions", R"({"FunctionName":5})");
  EXPECT_EQ(wrong_type.result(), status::bad_request);
  auto not_json = c.request(verb::post, "/2015-03-31/functions", "{");
  EXPECT_EQ(not_json["x-amzn-ErrorType"], "InvalidRequestContentException");
}

TEST(ThawdAuth, RequestsWithoutTheTokenGet401AndWithAWrongOne403AndDoNothing) {
  ThawdProcess thawd;
  const auto token_file = thawd.state_dir() + "/admin-token";
  struct stat st {};
  ASSERT_EQ(stat(token_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(thawd.log().find(token_file), std::string::npos);  // thawd says where it is

  HttpClient anonymous(thawd.port());
  EXPECT_EQ(anonymous.request(verb::get, "/healthz").result(),
            status::ok);  // an open endpoint, as /readyz is
  const std::string create =
      R"({"FunctionName":"x","Runtime":"python3.11","Handler":"a.b","Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}})";
  auto missing = anonymous.request(verb::post, "/2015-03-31/functions", create);
  EXPECT_EQ(missing.result(), status::unauthorized);
  EXPECT_EQ(missing["x-amzn-ErrorType"], "UnrecognizedClientException");
  // A refused request ends its connection (its body is never read).
  EXPECT_FALSE(missing.keep_alive());
  EXPECT_EQ(HttpClient(thawd.port()).request(verb::get, "/metrics").result(), status::unauthorized);
  const std::string wrong_token(64, 'a');
  EXPECT_EQ(HttpClient(thawd.port(), wrong_token)
                .request(verb::post, "/2015-03-31/functions", create)
                .result(),
            status::forbidden);
  EXPECT_EQ(
      HttpClient(thawd.port(), wrong_token).request(verb::get, "/2015-03-31/functions/").result(),
      status::forbidden);
  // Nothing was created.
  HttpClient admin(thawd.port(), thawd.token());
  auto list = nlohmann::json::parse(admin.request(verb::get, "/2015-03-31/functions/").body());
  EXPECT_TRUE(list["Functions"].empty());
}

TEST(Thawd, SlowClientsAreDisconnectedAndOthersAreServedMeanwhile) {
  ThawdProcess thawd({"--read-timeout", "1"});
  namespace asio = boost::asio;
  asio::io_context io;
  // Headers that never end, and a body that stops short of its Content-Length
  // (with the credential: without, it is refused before its body).
  std::vector<std::string> stalls = {
      "GET /healthz HTTP/1.1\r\nHost: x\r\n",
      "POST /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + thawd.token() +
          "\r\nContent-Length: 100\r\n\r\n{\"a\":"};
  for (const auto& stall : stalls) {
    asio::ip::tcp::socket slow(io);
    slow.connect({asio::ip::make_address("127.0.0.1"), thawd.port()});
    asio::write(slow, asio::buffer(stall));
    HttpClient other(thawd.port(), thawd.token());
    EXPECT_EQ(other.request(verb::get, "/healthz").result(), status::ok);
    // thawd closes the slow connection once its read timeout passes.
    char byte;
    boost::system::error_code ec;
    const auto started = std::chrono::steady_clock::now();
    slow.read_some(asio::buffer(&byte, 1), ec);
    EXPECT_EQ(ec, asio::error::eof) << ec.message();
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  }
  HttpClient after(thawd.port(), thawd.token());
  EXPECT_EQ(after.request(verb::get, "/healthz").result(), status::ok);
}

TEST(ThawdFunctions, UnknownFieldsWrongTypesAndMalformedBodiesGetTheirErrors) {
  ThawdProcess thawd;
  HttpClient c(thawd.port(), thawd.token());
  const std::string zip = R"("Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="})";
  auto unknown = c.request(
      verb::post, "/2015-03-31/functions",
      R"({"FunctionName":"x","Runtime":"python3.11","Handler":"a.b","Colour":"blue",)" + zip + "}");
  EXPECT_EQ(unknown.result(), status::bad_request);
  EXPECT_NE(unknown.body().find("Colour"), std::string::npos) << unknown.body();
  auto wrong_type = c.request(
      verb::post, "/2015-03-31/functions",
      R"({"FunctionName":"x","Runtime":"python3.11","Handler":"a.b","Timeout":"3",)" + zip + "}");
  EXPECT_EQ(wrong_type.result(), status::bad_request);
  EXPECT_NE(wrong_type.body().find("Timeout"), std::string::npos) << wrong_type.body();
  auto array = c.request(verb::post, "/2015-03-31/functions", "[1,2]");
  EXPECT_EQ(array.result(), status::bad_request);
  auto bad_config = c.request(verb::put, "/2015-03-31/functions/x/configuration", "{");
  EXPECT_EQ(bad_config["x-amzn-ErrorType"], "InvalidRequestContentException");
  auto bad_type = c.request(verb::post, "/2015-03-31/functions/x/invocations", "{}",
                            {{"X-Amz-Invocation-Type", "Sometimes"}});
  EXPECT_EQ(bad_type.result(), status::bad_request);
  EXPECT_EQ(c.request(verb::get, "/healthz").result(), status::ok);
}
