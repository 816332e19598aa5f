// /metrics, after real traffic, passes Prometheus's own checker.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "http_client.hpp"
#include "lambda_requests.hpp"
#include "thawd_process.hpp"

using namespace thaw::itest;
using http::status;
using http::verb;

TEST(Promtool, MetricsPassPromtoolCheckMetrics) {
  const std::string promtool = std::string(THAW_TOOLS_DIR) + "/usr/bin/promtool";
  if (!std::filesystem::exists(promtool))
    GTEST_SKIP() << promtool << " is missing (scripts/install-deps unpacks it)";
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  HttpClient c(thawd.port(), thawd.token());
  auto body =
      nlohmann::json::parse(create_body("hello", "python3.11", "handler.handler", "python-hello"));
  body["SnapStart"] = {{"ApplyOn", "None"}};
  ASSERT_EQ(c.request(verb::post, "/2015-03-31/functions", body.dump()).result(), status::created);
  for (int i = 0; i < 3; ++i)
    c.request(verb::post, "/2015-03-31/functions/hello/invocations", "{}");
  c.request(verb::put, "/2017-10-31/functions/hello/concurrency",
            R"({"ReservedConcurrentExecutions":0})");
  c.request(verb::post, "/2015-03-31/functions/hello/invocations", "{}");  // a throttle
  const auto metrics = c.request(verb::get, "/metrics").body();
  ASSERT_NE(metrics.find("thaw_invocations_total"), std::string::npos);

  const auto file = thawd.state_dir() + "/../metrics.txt";
  std::ofstream(file) << metrics;
  auto [st, out] = run_program({"/bin/sh", "-c", promtool + " check metrics < " + file});
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out << "\n" << metrics;
}
