// The HTTP trigger (API Gateway payload 2.0) and the Runtime Interface
// Emulator's path, over real HTTP against a real thawd.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "http_client.hpp"
#include "lambda_requests.hpp"
#include "thawd_process.hpp"

using namespace thaw::itest;
using http::status;
using http::verb;
using json = nlohmann::json;

namespace {

void deploy(HttpClient& c, const std::string& name, const std::string& handler,
            const std::string& example) {
  auto body = json::parse(create_body(name, "python3.11", handler, example));
  body["SnapStart"] = {{"ApplyOn", "None"}};
  auto r = c.request(verb::post, "/2015-03-31/functions", body.dump());
  ASSERT_EQ(r.result(), status::created) << r.body();
}

}  // namespace

TEST(Gateway, ARequestBecomesAPayload2EventAndTheAnswerAnHttpResponse) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  HttpClient c(thawd.port(), thawd.token());
  deploy(c, "gw", "handler.handler", "python-gateway");
  auto r =
      c.request(verb::put, "/function/gw/items/7?x=1&y=two", R"({"a":1})",
                {{"Cookie", "a=1; b=2"}, {"X-Custom", "v"}, {"Content-Type", "application/json"}});
  ASSERT_EQ(r.result(), status::created) << r.body();
  EXPECT_EQ(r["X-From"], "function");
  std::vector<std::string> set_cookies;
  for (const auto& f : r)
    if (f.name() == http::field::set_cookie) set_cookies.push_back(std::string(f.value()));
  EXPECT_EQ(set_cookies, (std::vector<std::string>{"session=abc; Path=/", "theme=dark"}));
  const auto seen = json::parse(r.body());
  EXPECT_EQ(seen["version"], "2.0");
  EXPECT_EQ(seen["method"], "PUT");
  EXPECT_EQ(seen["rawPath"], "/items/7");
  EXPECT_EQ(seen["rawQueryString"], "x=1&y=two");
  EXPECT_EQ(seen["query"]["y"], "two");
  EXPECT_EQ(seen["cookies"], (json{"a=1", "b=2"}));
  EXPECT_EQ(seen["custom"], "v");
  EXPECT_EQ(seen["hasAuthorization"], false);  // thawd's credential stays with thawd
  EXPECT_EQ(seen["isBase64Encoded"], false);
  EXPECT_EQ(seen["bodyLength"], 7);

  // Binary bodies travel base64-encoded both ways.
  const std::string bytes("\x00\x01\xfe\xff", 4);
  auto bin = c.request(verb::post, "/function/gw/bytes", bytes,
                       {{"Content-Type", "application/octet-stream"}});
  ASSERT_EQ(bin.result(), status::ok) << bin.body();
  EXPECT_EQ(bin.body(), std::string("\xff\xfe\x01\x00", 4));
  EXPECT_EQ(bin[http::field::content_type], "application/octet-stream");

  auto plain = c.request(verb::get, "/function/gw/plain");
  EXPECT_EQ(plain.result(), status::ok);
  EXPECT_EQ(plain[http::field::content_type], "application/json");
  EXPECT_EQ(json::parse(plain.body())["plain"], true);
  auto root = c.request(verb::get, "/function/gw");
  EXPECT_EQ(json::parse(root.body())["rawPath"], "/");

  auto fails = c.request(verb::get, "/function/gw/fail");
  EXPECT_EQ(fails.result(), status::bad_gateway);
  EXPECT_EQ(json::parse(fails.body())["message"], "Internal Server Error");
  auto missing = c.request(verb::get, "/function/nope/x");
  EXPECT_EQ(missing.result(), status::not_found);
  EXPECT_EQ(json::parse(missing.body())["message"], "Not Found");
  HttpClient anonymous(thawd.port());
  EXPECT_EQ(anonymous.request(verb::get, "/function/gw/plain").result(), status::unauthorized);
}

TEST(Gateway, TheEmulatorPathInvokesTheOnlyFunctionWithoutCredentials) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  const std::string path = "/2015-03-31/functions/function/invocations";
  {
    ThawdProcess plain_thawd;  // without --emulator-path the path needs the token
    HttpClient anonymous(plain_thawd.port());
    EXPECT_EQ(anonymous.request(verb::post, path, "{}").result(), status::unauthorized);
  }
  ThawdProcess thawd({"--emulator-path"});
  HttpClient admin(thawd.port(), thawd.token());
  deploy(admin, "hello", "handler.handler", "python-hello");
  HttpClient anonymous(thawd.port());
  auto r = anonymous.request(verb::post, path, R"({"name":"emulator"})");
  ASSERT_EQ(r.result(), status::ok) << r.body();
  EXPECT_EQ(json::parse(r.body())["message"], "hello emulator");
  // Only that path is open.
  EXPECT_EQ(anonymous.request(verb::get, "/2015-03-31/functions/").result(), status::unauthorized);
  deploy(admin, "other", "handler.handler", "python-hello");
  // A refused request ends its connection: the next one comes on a new one.
  HttpClient anonymous_again(thawd.port());
  EXPECT_EQ(anonymous_again.request(verb::post, path, "{}").result(), status::not_found);
}
