#pragma once
// A test's client of one thawd, with the Lambda calls tests repeat, and a
// poll for effects that happen in the background.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "http_client.hpp"
#include "lambda_requests.hpp"
#include "thawd_process.hpp"

namespace thaw::itest {

constexpr const char* kFunctions = "/2015-03-31/functions";

// A client of one thawd with the calls these tests repeat.
struct Lambda {
  explicit Lambda(const ThawdProcess& t) : thawd(t), client(t.port(), t.token()) {}
  ~Lambda() {
    // thawd's own account of what happened, for whoever reads a failure.
    if (::testing::Test::HasFailure()) std::cerr << "thawd's log:\n" << thawd.log();
  }

  void create(const std::string& name, const std::string& handler, const std::string& example,
              const nlohmann::json& extra = nlohmann::json::object()) {
    auto body = nlohmann::json::parse(create_body(name, "python3.11", handler, example));
    body.update(extra);
    auto r = client.request(http::verb::post, kFunctions, body.dump());
    ASSERT_EQ(r.result(), http::status::created) << r.body();
  }
  http::response<http::string_body> invoke(
      const std::string& name, const std::string& payload = "{}",
      const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    // A client per call: invocations may run side by side.
    HttpClient c(thawd.port(), thawd.token());
    return c.request(http::verb::post, std::string(kFunctions) + "/" + name + "/invocations",
                     payload, headers);
  }
  nlohmann::json get_json(const std::string& target) {
    auto r = client.request(http::verb::get, target);
    EXPECT_EQ(r.result(), http::status::ok) << target << ": " << r.body();
    return nlohmann::json::parse(r.body(), nullptr, false);
  }
  nlohmann::json instances() { return get_json("/thaw/v1/instances")["Instances"]; }
  nlohmann::json usage_of(const std::string& name) {
    const auto usage = get_json("/thaw/v1/usage");
    for (const auto& f : usage["Functions"])
      if (f["FunctionName"] == name) return f;
    return nlohmann::json::object();
  }

  const ThawdProcess& thawd;
  HttpClient client;
};

// Polls `done` until it holds or `limit` passes; for effects that happen in
// the background (reaping, queued events), which the API shows but does not
// announce.
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

}  // namespace thaw::itest
