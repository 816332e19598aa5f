// thawd as a service, over real HTTP against the real binary: updates, paging,
// concurrency and throttles, pools and keep-alive, the memory budget,
// asynchronous invocations, durability across kill -9, metering, logs,
// metrics, forced start modes and graceful shutdown.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/beast/core/detail/base64.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "host_processes.hpp"
#include "http_client.hpp"
#include "lambda_client.hpp"
#include "lambda_requests.hpp"
#include "thawd_process.hpp"

using namespace thaw::itest;
using http::status;
using http::verb;
using json = nlohmann::json;

namespace {

const json kNoSnapshot = {{"SnapStart", {{"ApplyOn", "None"}}}};

// Server-Timing of an invocation's answer against a regular expression.
testing::AssertionResult server_timing_is(const http::response<http::string_body>& r,
                                          const std::string& pattern) {
  const std::string value(r["Server-Timing"]);
  if (std::regex_match(value, std::regex(pattern))) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "Server-Timing \"" << value << "\" is not " << pattern;
}

#define NEEDS_ROOT() \
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)"

}  // namespace

TEST(ThawdUpdates, NewConfigurationIsSeenByTheNextInvocation) {
  NEEDS_ROOT();
  ThawdProcess thawd;
  Lambda l(thawd);
  l.create("env", "handler.environment", "python-errors", kNoSnapshot);
  auto before = json::parse(l.invoke("env").body());
  EXPECT_FALSE(before.contains("GREETING"));
  auto r = l.client.request(
      verb::put, std::string(kFunctions) + "/env/configuration",
      json{{"Environment", {{"Variables", {{"GREETING", "hi"}}}}}, {"MemorySize", 256}}.dump());
  ASSERT_EQ(r.result(), status::ok) << r.body();
  EXPECT_EQ(json::parse(r.body())["MemorySize"], 256);
  auto after = l.invoke("env");
  EXPECT_EQ(json::parse(after.body())["GREETING"], "hi");
  EXPECT_EQ(json::parse(after.body())["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
  // The instance of the old configuration was not reused.
  EXPECT_NE(after["X-Thaw-Start-Mode"], "warm");
  auto bad = l.client.request(verb::put, std::string(kFunctions) + "/env/configuration",
                              R"({"Timeout": 0})");
  EXPECT_EQ(bad.result(), status::bad_request);
  EXPECT_NE(bad.body().find("Timeout"), std::string::npos);
}

TEST(ThawdUpdates, NewCodeServesTheNextInvocation) {
  NEEDS_ROOT();
  ThawdProcess thawd;
  Lambda l(thawd);
  l.create("f", "handler.handler", "python-hello", kNoSnapshot);
  const auto old_sha = l.get_json(std::string(kFunctions) + "/f")["Configuration"]["CodeSha256"];
  EXPECT_EQ(json::parse(l.invoke("f", R"({"name":"x"})").body())["message"], "hello x");
  auto code = l.client.request(
      verb::put, std::string(kFunctions) + "/f/code",
      json{{"ZipFile", zip_base64(std::string(THAW_SOURCE_DIR) + "/images/examples/python-errors")}}
          .dump());
  ASSERT_EQ(code.result(), status::ok) << code.body();
  EXPECT_NE(json::parse(code.body())["CodeSha256"], old_sha);
  auto cfg = l.client.request(verb::put, std::string(kFunctions) + "/f/configuration",
                              R"({"Handler": "handler.echo"})");
  ASSERT_EQ(cfg.result(), status::ok) << cfg.body();
  EXPECT_EQ(json::parse(l.invoke("f", R"({"echo":1})").body())["echo"], 1);
  auto missing = l.client.request(verb::put, std::string(kFunctions) + "/nope/code",
                                  R"({"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="})");
  EXPECT_EQ(missing.result(), status::not_found);
}

TEST(ThawdFunctions, ListFunctionsPagesWithMarkerAndMaxItems) {
  NEEDS_ROOT();
  ThawdProcess thawd;
  Lambda l(thawd);
  for (const char* name : {"a", "b", "c"})
    l.create(name, "handler.handler", "python-hello", kNoSnapshot);
  auto first = l.get_json(std::string(kFunctions) + "/?MaxItems=2");
  ASSERT_EQ(first["Functions"].size(), 2u);
  EXPECT_EQ(first["Functions"][0]["FunctionName"], "a");
  ASSERT_TRUE(first.contains("NextMarker"));
  auto second = l.get_json(std::string(kFunctions) +
                           "/?MaxItems=2&Marker=" + first["NextMarker"].get<std::string>());
  ASSERT_EQ(second["Functions"].size(), 1u);
  EXPECT_EQ(second["Functions"][0]["FunctionName"], "c");
  EXPECT_FALSE(second.contains("NextMarker"));
  auto bad = l.client.request(verb::get, std::string(kFunctions) + "/?MaxItems=0");
  EXPECT_EQ(bad.result(), status::bad_request);
  EXPECT_EQ(bad["x-amzn-ErrorType"], "InvalidParameterValueException");
}

TEST(ThawdConcurrency, ReservedConcurrencyOfZeroThrottlesEveryInvocation) {
  NEEDS_ROOT();
  ThawdProcess thawd;
  Lambda l(thawd);
  l.create("f", "handler.handler", "python-hello", kNoSnapshot);
  auto put = l.client.request(verb::put, "/2017-10-31/functions/f/concurrency",
                              R"({"ReservedConcurrentExecutions": 0})");
  ASSERT_EQ(put.result(), status::ok) << put.body();
  EXPECT_EQ(json::parse(put.body())["ReservedConcurrentExecutions"], 0);
  EXPECT_EQ(l.get_json("/2019-09-30/functions/f/concurrency")["ReservedConcurrentExecutions"], 0);
  EXPECT_EQ(
      l.get_json(std::string(kFunctions) + "/f")["Concurrency"]["ReservedConcurrentExecutions"], 0);
  auto throttled = l.invoke("f");
  EXPECT_EQ(throttled.result(), status::too_many_requests);
  EXPECT_EQ(throttled["x-amzn-ErrorType"], "TooManyRequestsException");
  EXPECT_EQ(json::parse(throttled.body())["Reason"],
            "ReservedFunctionConcurrentInvocationLimitExceeded");
  EXPECT_EQ(l.usage_of("f")["Throttles"], 1);
  auto metrics = l.client.request(verb::get, "/metrics").body();
  EXPECT_NE(metrics.find("thaw_throttles_total{function=\"f\""), std::string::npos) << metrics;

  EXPECT_EQ(l.client.request(verb::delete_, "/2017-10-31/functions/f/concurrency").result(),
            status::no_content);
  EXPECT_EQ(l.invoke("f").result(), status::ok);
  auto too_many = l.client.request(verb::put, "/2017-10-31/functions/f/concurrency",
                                   R"({"ReservedConcurrentExecutions": 100000})");
  EXPECT_EQ(too_many.result(), status::bad_request);
  auto negative = l.client.request(verb::put, "/2017-10-31/functions/f/concurrency",
                                   R"({"ReservedConcurrentExecutions": -1})");
  EXPECT_EQ(negative.result(), status::bad_request);
}

TEST(ThawdConcurrency, AnInvocationOverTheHostLimitGets429AtOnce) {
  NEEDS_ROOT();
  ThawdProcess thawd({"--max-concurrency", "1"});
  Lambda l(thawd);
  l.create("slow", "handler.sleep_ms", "python-errors",
           {{"SnapStart", {{"ApplyOn", "None"}}}, {"Timeout", 30}});
  l.create("hello", "handler.handler", "python-hello", kNoSnapshot);
  auto running =
      std::async(std::launch::async, [&] { return l.invoke("slow", R"({"ms": 4000})"); });
  ASSERT_TRUE(eventually([&] {
    for (const auto& i : l.instances())
      if (i["FunctionName"] == "slow" && i["State"] == "Busy") return true;
    return false;
  }));
  auto refused = l.invoke("hello");
  // Refused while the slow one still runs: no waiting for a slot.
  EXPECT_EQ(running.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  EXPECT_EQ(refused.result(), status::too_many_requests);
  EXPECT_EQ(json::parse(refused.body())["Reason"], "ConcurrentInvocationLimitExceeded");
  EXPECT_EQ(json::parse(running.get().body()), "slept");
  EXPECT_EQ(l.invoke("hello").result(), status::ok);
}

TEST(ThawdPools, IdleInstancesAreReapedAfterTheKeepAlive) {
  NEEDS_ROOT();
  ThawdProcess thawd({"--keep-alive", "1"});
  Lambda l(thawd);
  l.create("f", "handler.handler", "python-hello", kNoSnapshot);
  ASSERT_EQ(l.invoke("f").result(), status::ok);
  auto idle = l.instances();
  ASSERT_EQ(idle.size(), 1u);
  EXPECT_EQ(idle[0]["State"], "Idle");
  EXPECT_EQ(idle[0]["FunctionName"], "f");
  EXPECT_TRUE(eventually([&] { return l.instances().empty(); }));
  // Scaled to zero: the next invocation starts a new instance.
  EXPECT_EQ(l.invoke("f")["X-Thaw-Start-Mode"], "cold");
}

TEST(ThawdPools, TheMemoryBudgetEvictsTheLeastRecentlyUsedIdleInstance) {
  NEEDS_ROOT();
  ThawdProcess thawd({"--memory-budget-mb", "256"});
  Lambda l(thawd);
  for (const char* name : {"a", "b", "c"})
    l.create(name, "handler.handler", "python-hello", kNoSnapshot);
  l.create("big", "handler.handler", "python-hello",
           {{"SnapStart", {{"ApplyOn", "None"}}}, {"MemorySize", 512}});
  ASSERT_EQ(l.invoke("a").result(), status::ok);
  ASSERT_EQ(l.invoke("b").result(), status::ok);
  ASSERT_EQ(l.invoke("c").result(), status::ok);  // 384 MB would not fit: a goes
  std::set<std::string> live;
  for (const auto& i : l.instances()) live.insert(i["FunctionName"]);
  EXPECT_EQ(live, (std::set<std::string>{"b", "c"}));
  EXPECT_EQ(l.get_json("/thaw/v1/instances")["MemoryInUseMB"], 256);
  auto big = l.invoke("big");
  EXPECT_EQ(big.result(), status::too_many_requests);
  EXPECT_EQ(json::parse(big.body())["Reason"], "HostMemoryBudgetExceeded");
  // Evicting them would not have made room for it: they were left alone.
  live.clear();
  for (const auto& i : l.instances()) live.insert(i["FunctionName"]);
  EXPECT_EQ(live, (std::set<std::string>{"b", "c"}));
  EXPECT_EQ(l.get_json("/thaw/v1/instances")["MemoryInUseMB"], 256);
}

TEST(ThawdAsync, AnEventIsAcceptedWith202AndRuns) {
  NEEDS_ROOT();
  ThawdProcess thawd;
  Lambda l(thawd);
  l.create("logs", "handler.log_lines", "python-errors", kNoSnapshot);
  auto r = l.invoke("logs", R"({"lines": 2})", {{"X-Amz-Invocation-Type", "Event"}});
  ASSERT_EQ(r.result(), status::accepted) << r.body();
  const std::string id(r["X-Amz-Request-Id"]);
  ASSERT_EQ(id.size(), 36u);
  EXPECT_TRUE(eventually([&] {
    const auto text = l.get_json("/thaw/v1/functions/logs/logs")["Text"].get<std::string>();
    return text.find("REPORT RequestId: " + id) != std::string::npos;
  }));
  // The event leaves the queue once its invocation returned, a moment after
  // the invocation wrote its REPORT line.
  EXPECT_TRUE(eventually([&] { return l.get_json("/thaw/v1/queue")["Depth"] == 0; }));
  auto missing = l.invoke("nope", "{}", {{"X-Amz-Invocation-Type", "Event"}});
  EXPECT_EQ(missing.result(), status::not_found);
  auto too_big = l.invoke("logs", "\"" + std::string(1024 * 1024 + 1, 'x') + "\"",
                          {{"X-Amz-Invocation-Type", "Event"}});
  EXPECT_EQ(too_big.result(), status::payload_too_large);
}

TEST(ThawdAsync, FailedEventsAreRetriedTwiceThenDeadLetteredAndCanBeRedriven) {
  NEEDS_ROOT();
  ThawdProcess thawd({"--retry-backoff-ms", "50"});
  Lambda l(thawd);
  l.create("fails", "handler.raise_error", "python-errors", kNoSnapshot);
  ASSERT_EQ(l.invoke("fails", "{}", {{"X-Amz-Invocation-Type", "Event"}}).result(),
            status::accepted);
  json letters;
  ASSERT_TRUE(eventually([&] {
    letters = l.get_json("/thaw/v1/dead-letters?FunctionName=fails")["DeadLetters"];
    return letters.size() == 1;
  }));
  EXPECT_EQ(letters[0]["Attempts"], 3);  // the first run and Lambda's two retries
  EXPECT_EQ(letters[0]["ErrorType"], "ValueError");
  EXPECT_EQ(l.usage_of("fails")["Invocations"], 3);

  auto config = l.client.request(verb::put, "/2019-09-25/functions/fails/event-invoke-config",
                                 R"({"MaximumRetryAttempts": 0})");
  ASSERT_EQ(config.result(), status::ok) << config.body();
  EXPECT_EQ(json::parse(config.body())["MaximumRetryAttempts"], 0);
  // Redriven, the event runs again under the function's current settings: once.
  auto redriven = l.client.request(
      verb::post, "/thaw/v1/dead-letters/" + letters[0]["Id"].get<std::string>() + "/redrive");
  ASSERT_EQ(redriven.result(), status::accepted) << redriven.body();
  json again;
  ASSERT_TRUE(eventually([&] {
    again = l.get_json("/thaw/v1/dead-letters?FunctionName=fails")["DeadLetters"];
    return again.size() == 1 && again[0]["Id"] != letters[0]["Id"];
  }));
  EXPECT_EQ(again[0]["Attempts"], 1);
  EXPECT_EQ(l.usage_of("fails")["Invocations"], 4);
  EXPECT_EQ(l.client.request(verb::post, "/thaw/v1/dead-letters/nope/redrive").result(),
            status::not_found);
  auto bad = l.client.request(verb::put, "/2019-09-25/functions/fails/event-invoke-config",
                              R"({"MaximumRetryAttempts": 3})");
  EXPECT_EQ(bad.result(), status::bad_request);
}

TEST(ThawdDurability, KillNineLosesNoFunctionNorAcceptedEventAndOrphansAreReaped) {
  NEEDS_ROOT();
  ThawdProcess first;
  std::set<std::string> accepted, orphan_groups;
  {
    Lambda l(first);
    l.create("work", "handler.sleep_ms", "python-errors", kNoSnapshot);
    ASSERT_EQ(l.invoke("work", R"({"ms": 1})").result(), status::ok);  // leaves an idle instance
    // Ten events; the two workers are in the middle of them when thawd dies.
    for (int i = 0; i < 10; ++i) {
      auto r = l.invoke("work", R"({"ms": 300})", {{"X-Amz-Invocation-Type", "Event"}});
      ASSERT_EQ(r.result(), status::accepted);
      accepted.insert(std::string(r["X-Amz-Request-Id"]));
    }
    ASSERT_TRUE(eventually([&] {
      for (const auto& i : l.instances())
        if (i["State"] == "Busy") return true;
      return false;
    }));
  }
  const auto groups = "/sys/fs/cgroup/memory/" + first.cgroup_parent();
  for (const auto& e : std::filesystem::directory_iterator(groups))
    if (e.is_directory()) orphan_groups.insert(e.path().filename());
  ASSERT_FALSE(orphan_groups.empty());
  first.kill_hard();

  ThawdProcess second({}, first.state_dir());
  Lambda l(second);
  EXPECT_EQ(l.get_json(std::string(kFunctions) + "/work")["Configuration"]["FunctionName"], "work");
  for (const auto& g : orphan_groups)
    EXPECT_FALSE(std::filesystem::exists(groups + "/" + g)) << g << " was not reaped";
  // Every accepted event has run to its end (once or, if cut short by the kill, again).
  std::set<std::string> finished;
  EXPECT_TRUE(eventually([&] {
    const auto text = l.get_json("/thaw/v1/functions/work/logs")["Text"].get<std::string>();
    for (const auto& id : accepted)
      if (text.find("REPORT RequestId: " + id) != std::string::npos) finished.insert(id);
    return finished == accepted;
  })) << finished.size()
      << " of " << accepted.size() << " events finished";
  // Each event is settled a moment after its REPORT line.
  EXPECT_TRUE(eventually([&] { return l.get_json("/thaw/v1/queue")["Depth"] == 0; }));
}

TEST(ThawdObservability, UsageLogsAndMetricsAfterInvocations) {
  NEEDS_ROOT();
  ThawdProcess thawd;
  Lambda l(thawd);
  l.create("hello", "handler.handler", "python-hello", kNoSnapshot);
  ASSERT_EQ(l.invoke("hello").result(), status::ok);
  ASSERT_EQ(l.invoke("hello").result(), status::ok);
  auto usage = l.usage_of("hello");
  EXPECT_EQ(usage["Invocations"], 2);  // before the Tail invocation below
  EXPECT_EQ(usage["Errors"], 0);
  EXPECT_GE(usage["BilledDurationMs"].get<int>(), 2);
  EXPECT_GT(usage["GBSeconds"].get<double>(), 0.0);
  EXPECT_EQ(l.get_json("/thaw/v1/usage")["Totals"]["Invocations"], 2);

  // The REPORT line's figures agree with each other and with the cgroup's limit.
  auto tail = l.invoke("hello", "{}", {{"X-Amz-Log-Type", "Tail"}});
  const std::string encoded(tail["X-Amz-Log-Result"]);
  std::string decoded(encoded.size(), '\0');
  decoded.resize(
      boost::beast::detail::base64::decode(decoded.data(), encoded.data(), encoded.size()).first);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(decoded, m,
                                std::regex("Duration: ([0-9.]+) ms\tBilled Duration: ([0-9]+) "
                                           "ms\tMemory Size: ([0-9]+) MB\tMax Memory Used: "
                                           "([0-9]+) MB")))
      << decoded;
  EXPECT_EQ(std::stoul(m[2]), static_cast<unsigned long>(std::ceil(std::stod(m[1]))));
  EXPECT_EQ(std::stoul(m[3]), 128u);
  EXPECT_GT(std::stoul(m[4]), 0u);
  EXPECT_LE(std::stoul(m[4]), 128u);

  auto logs = l.get_json("/thaw/v1/functions/hello/logs");
  EXPECT_NE(logs["Text"].get<std::string>().find("REPORT RequestId"), std::string::npos);
  // A follower's long poll returns when the next invocation writes.
  const auto offset = logs["NextOffset"].get<uint64_t>();
  auto follow = std::async(std::launch::async, [&] {
    HttpClient c(thawd.port(), thawd.token());
    return c.request(verb::get,
                     "/thaw/v1/functions/hello/logs?offset=" + std::to_string(offset) + "&wait=20");
  });
  ASSERT_EQ(l.invoke("hello").result(), status::ok);
  auto more = json::parse(follow.get().body());
  EXPECT_NE(more["Text"].get<std::string>().find("REPORT RequestId"), std::string::npos);
  EXPECT_GT(more["NextOffset"].get<uint64_t>(), offset);

  const auto metrics = l.client.request(verb::get, "/metrics").body();
  for (const char* expected :
       {"thaw_invocations_total{function=\"hello\",outcome=\"success\",start_mode=\"warm\"} 3",
        "thaw_invocations_total{function=\"hello\",outcome=\"success\",start_mode=\"cold\"} 1",
        "# TYPE thaw_invocation_duration_seconds histogram",
        "thaw_instances{function=\"hello\",state=\"Idle\"} 1", "thaw_async_queue_depth 0",
        "thaw_snapshot_events_total{event=\"fallback\"} 0"})
    EXPECT_NE(metrics.find(expected), std::string::npos) << expected << "\n" << metrics;
}

// The snapshot's entry in GET /thaw/v1/snapshots once there is exactly one.
json only_snapshot(Lambda& l) {
  json snapshots;
  EXPECT_TRUE(eventually(
      [&] {
        snapshots = l.get_json("/thaw/v1/snapshots")["Snapshots"];
        return snapshots.size() == 1;
      },
      std::chrono::seconds(60)));
  return snapshots.empty() ? json::object() : snapshots[0];
}

// `name` (python-hello) deployed and started cold once, which has it snapshotted.
void start_cold(Lambda& l, const std::string& name) {
  l.create(name, "handler.handler", "python-hello");
  ASSERT_EQ(l.invoke(name, "{}", {{"X-Thaw-Start-Mode", "cold"}}).result(), status::ok);
}

TEST(ThawdStartModes, AnOperatorCanForceAStartModeAndSnapshotsAreListed) {
  NEEDS_ROOT();
  ThawdProcess thawd;
  Lambda l(thawd);
  l.create("hello", "handler.handler", "python-hello");
  auto warm = l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "warm"}});
  EXPECT_EQ(warm.result(), status::conflict);  // nothing idle yet
  auto cold = l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "cold"}});
  EXPECT_EQ(cold["X-Thaw-Start-Mode"], "cold");
  EXPECT_TRUE(server_timing_is(cold, "sandbox;dur=[0-9.]+, init;dur=[0-9.]+, handler;dur=[0-9.]+"));
  const auto snapshot = only_snapshot(l);
  ASSERT_FALSE(snapshot.empty());
  EXPECT_EQ(snapshot["FunctionName"], "hello");
  EXPECT_GT(snapshot["SizeBytes"].get<uint64_t>(), 0u);
  const auto& digest = snapshot["Digest"];
  auto restored =
      l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "restore"}, {"X-Amz-Log-Type", "Tail"}});
  ASSERT_EQ(restored.result(), status::ok) << restored.body();
  EXPECT_EQ(restored["X-Thaw-Start-Mode"], "restore");
  EXPECT_TRUE(
      server_timing_is(restored, "sandbox;dur=[0-9.]+, restore;dur=[0-9.]+, handler;dur=[0-9.]+"));
  auto warm_again = l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "warm"}});
  EXPECT_EQ(warm_again["X-Thaw-Start-Mode"], "warm");
  EXPECT_TRUE(server_timing_is(warm_again, "handler;dur=[0-9.]+"));
  EXPECT_EQ(l.get_json("/thaw/v1/snapshots")["Snapshots"][0]["RestoresServed"], 1);
  EXPECT_EQ(l.get_json("/thaw/v1/snapshots")["Snapshots"][0]["InMemoryCache"], false);
  // The restore freed warm memory first (snapshots/warm_memory.hpp): twice the
  // snapshot's pages and 16 MiB for CRIU.
  const auto metrics = l.client.request(verb::get, "/metrics").body();
  std::smatch freed;
  ASSERT_TRUE(std::regex_search(
      metrics, freed, std::regex("\nthaw_warm_memory_released_bytes_total ([0-9.e+]+)\n")))
      << metrics;
  EXPECT_GE(std::stod(freed[1]), 16.0 * 1048576);
  EXPECT_NE(metrics.find("# TYPE thaw_warm_memory_bytes gauge"), std::string::npos) << metrics;
  auto nonsense = l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "lukewarm"}});
  EXPECT_EQ(nonsense.result(), status::bad_request);

  // A new configuration makes a new digest: the old snapshot is collected.
  ASSERT_EQ(
      l.client
          .request(verb::put, std::string(kFunctions) + "/hello/configuration", R"({"Timeout": 5})")
          .result(),
      status::ok);
  const auto after_update = l.get_json("/thaw/v1/snapshots");
  for (const auto& s : after_update["Snapshots"]) EXPECT_NE(s["Digest"], digest);
  ASSERT_EQ(l.client.request(verb::delete_, std::string(kFunctions) + "/hello").result(),
            status::no_content);
  EXPECT_TRUE(eventually([&] { return l.get_json("/thaw/v1/snapshots")["Snapshots"].empty(); }));
}

// SnapStart's OptimizationStatus says whether this thawd checkpoints the
// function: every runtime thaw snapshots, unless its policy says None (the
// next test: or thawd has no usable CRIU). `thaw deploy` waits on it.
TEST(ThawdStartModes, OptimizationStatusSaysWhetherTheFunctionIsSnapshotted) {
  NEEDS_ROOT();
  ThawdProcess thawd;
  Lambda l(thawd);
  l.create("py", "handler.handler", "python-hello");
  l.create("node", "index.handler", "node-hello", {{"Runtime", "nodejs20.x"}});
  l.create("custom", "bootstrap", "provided-shell", {{"Runtime", "provided"}});
  l.create("off", "handler.handler", "python-hello", {{"SnapStart", {{"ApplyOn", "None"}}}});
  const auto status = [&l](const std::string& name) {
    return l.get_json(std::string(kFunctions) + "/" + name +
                      "/configuration")["SnapStart"]["OptimizationStatus"];
  };
  EXPECT_EQ(status("py"), "On");
  EXPECT_EQ(status("node"), "On");
  EXPECT_EQ(status("custom"), "On");
  EXPECT_EQ(status("off"), "Off");
  // On means a snapshot is made (at deploy time, in the background); Off, none.
  EXPECT_TRUE(eventually([&l] { return l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 3; },
                         std::chrono::seconds(90)))
      << l.get_json("/thaw/v1/snapshots").dump();
  const auto listing = l.get_json("/thaw/v1/snapshots");
  for (const auto& s : listing["Snapshots"]) EXPECT_NE(s["FunctionName"], "off");
}

// Without a usable CRIU (none at the path given, or one whose check fails),
// thawd says so once at start-up, with why, and every start is cold.
TEST(ThawdStartModes, WithoutAUsableCriuThawdSaysSoOnceAndStartsCold) {
  NEEDS_ROOT();
  for (const std::string criu : {"/nonexistent/criu", "/bin/false"}) {
    SCOPED_TRACE(criu);
    ThawdProcess thawd({"--criu", criu});
    Lambda l(thawd);
    l.create("hello", "handler.handler", "python-hello");
    EXPECT_EQ(l.get_json(std::string(kFunctions) +
                         "/hello")["Configuration"]["SnapStart"]["OptimizationStatus"],
              "Off");
    auto first = l.invoke("hello", R"({"name": "cold"})");
    ASSERT_EQ(first.result(), status::ok) << first.body();
    EXPECT_EQ(json::parse(first.body())["message"], "hello cold");
    EXPECT_EQ(first["X-Thaw-Start-Mode"], "cold");
    EXPECT_EQ(l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "cold"}})["X-Thaw-Start-Mode"],
              "cold");
    auto restore = l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "restore"}});
    EXPECT_EQ(restore.result(), status::conflict) << restore.body();
    EXPECT_TRUE(l.get_json("/thaw/v1/snapshots")["Snapshots"].empty());
    const auto log = thawd.log();
    EXPECT_TRUE(
        std::regex_search(log, std::regex(R"(\{[^\n]*"event":"listening"[^\n]*"snapshots":false)")))
        << log;
    size_t said = 0;
    for (auto at = log.find("\"criu_unavailable\""); at != std::string::npos;
         at = log.find("\"criu_unavailable\"", at + 1))
      ++said;
    EXPECT_EQ(said, 1u) << log;
    EXPECT_NE(log.find(criu), std::string::npos) << log;
  }
}

TEST(ThawdSnapshotCache, RestoresReadTheMemoryCopyWhichARestartRefills) {
  NEEDS_ROOT();
  const std::vector<std::string> with_cache = {"--snapshot-cache-mb", "256"};
  ThawdProcess first(with_cache);
  {
    Lambda l(first);
    ASSERT_NO_FATAL_FAILURE(start_cold(l, "hello"));
    EXPECT_EQ(only_snapshot(l)["InMemoryCache"], true);
    EXPECT_NE(first.log().find(R"("snapshot_cache":"/run/thaw/snapshot-cache")"), std::string::npos)
        << first.log();
  }
  ASSERT_EQ(first.stop(), 0);

  // The memory copy went with the first thawd; the durable one serves the
  // first restore and fills the cache again.
  ThawdProcess second(with_cache, first.state_dir());
  Lambda l(second);
  EXPECT_EQ(only_snapshot(l)["InMemoryCache"], false);
  auto restored = l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "restore"}});
  ASSERT_EQ(restored.result(), status::ok) << restored.body();
  EXPECT_EQ(restored["X-Thaw-Start-Mode"], "restore");
  // Copied beside that restore, not on its way.
  EXPECT_TRUE(eventually([&] { return only_snapshot(l)["InMemoryCache"] == true; }));

  // Restores now read the memory copy: a durable copy gone bad is not read
  // (without the cache this restore would fall back to a cold start).
  const auto images = second.state_dir() + "/snapshots/" +
                      only_snapshot(l)["Digest"].get<std::string>() + "/images";
  int spoiled = 0;
  for (const auto& e : std::filesystem::directory_iterator(images))
    if (e.path().filename().string().rfind("pages-", 0) == 0) {
      std::filesystem::resize_file(e.path(), 4096);
      ++spoiled;
    }
  ASSERT_GT(spoiled, 0);
  auto from_memory = l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "restore"}});
  ASSERT_EQ(from_memory.result(), status::ok) << from_memory.body();
  EXPECT_EQ(from_memory["X-Thaw-Start-Mode"], "restore");
  EXPECT_EQ(only_snapshot(l)["RestoresServed"], 2);
}

TEST(ThawdSnapshotCache, ASnapshotTooLargeForTheCacheIsRestoredFromDisk) {
  NEEDS_ROOT();
  ThawdProcess thawd({"--snapshot-cache-mb", "1"});
  Lambda l(thawd);
  ASSERT_NO_FATAL_FAILURE(start_cold(l, "hello"));
  const auto snapshot = only_snapshot(l);
  ASSERT_GT(snapshot["SizeBytes"].get<uint64_t>(), 1u << 20);
  EXPECT_EQ(snapshot["InMemoryCache"], false);
  // Nothing of the copy that did not fit is left in thawd's tmpfs.
  const auto cache = "/proc/" + std::to_string(thawd.pid()) + "/root/run/thaw/snapshot-cache";
  ASSERT_TRUE(std::filesystem::exists(cache));
  for (const auto& e : std::filesystem::directory_iterator(cache))
    ADD_FAILURE() << e.path() << " was left in the cache";
  auto restored = l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "restore"}});
  ASSERT_EQ(restored.result(), status::ok) << restored.body();
  EXPECT_EQ(restored["X-Thaw-Start-Mode"], "restore");
  EXPECT_EQ(only_snapshot(l)["InMemoryCache"], false);
}

TEST(ThawdSnapshotCache, ACacheOfMoreThanHalfTheHostsMemoryIsRefusedAtStart) {
  NEEDS_ROOT();
  char tmpl[] = "/tmp/thaw-cache-refused-XXXXXX";
  const std::string state = mkdtemp(tmpl);
  auto [status, out] = run_program({THAWD_PATH, "--listen", "127.0.0.1:0", "--state-dir", state,
                                    "--snapshot-cache-mb", "1048576"});
  std::filesystem::remove_all(state);
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find("--snapshot-cache-mb: 1048576 MiB is more than half of this host's"),
            std::string::npos)
      << out;
}

// Pids of thawd's children that are criu waiting for a restore's options: a
// spare's command line names no mounts (those come with the options), and it
// is blocked reading the socket they come through, descriptor 3 (a spare
// still starting, at its low priority, is not counted yet).
std::vector<pid_t> waiting_criu(const ThawdProcess& thawd) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(e.path() / "stat");
    std::string pid, comm, state;
    pid_t ppid = 0;
    if (!(stat >> pid >> comm >> state >> ppid) || ppid != thawd.pid() || comm != "(criu)" ||
        state == "Z")  // a restore's criu that thawd has yet to reap
      continue;
    const auto line = read_proc_file(e.path() / "cmdline");
    std::ifstream syscall(e.path() / "syscall");
    std::string number, first_arg;
    syscall >> number >> first_arg;
    if (line.find("--external") == std::string::npos && number == std::to_string(SYS_recvmsg) &&
        first_arg == "0x3")
      out.push_back(std::stoi(pid));
  }
  return out;
}

// TCP sockets (by inode, from /proc/net/tcp and tcp6) that process `pid` holds.
std::vector<std::string> tcp_sockets_of(pid_t pid) {
  std::set<std::string> tcp;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string f;
      for (int i = 0; i < 10 && fields >> f; ++i) {
      }
      tcp.insert(f);  // the tenth column: the inode
    }
  }
  std::vector<std::string> held;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    const auto target = std::filesystem::read_symlink(e.path(), ec).string();
    if (target.rfind("socket:[", 0) == 0 && tcp.count(target.substr(8, target.size() - 9)))
      held.push_back(target);
  }
  return held;
}

// A forced restore of `name`; once it is done, a criu waits for the next one.
void restore_until_a_spare_waits(Lambda& l, const ThawdProcess& thawd, const std::string& name) {
  auto r = l.invoke(name, "{}", {{"X-Thaw-Start-Mode", "restore"}});
  ASSERT_EQ(r.result(), status::ok) << r.body();
  ASSERT_TRUE(eventually([&] { return waiting_criu(thawd).size() == 1; }));
}

// thaw_snapshot_events_total{event="hit_criu_ahead"}, -1 when missing.
int restores_through_a_spare(Lambda& l) {
  const auto metrics = l.client.request(verb::get, "/metrics").body();
  std::smatch m;
  return std::regex_search(
             metrics, m,
             std::regex(R"(\nthaw_snapshot_events_total\{event="hit_criu_ahead"\} (\d+)\n)"))
             ? std::stoi(m[1])
             : -1;
}

TEST(ThawdCriuSpares, LaterRestoresTakeACriuStartedAheadWhichEndsWithItsSnapshot) {
  NEEDS_ROOT();
  ThawdProcess thawd;
  Lambda l(thawd);
  ASSERT_NO_FATAL_FAILURE(start_cold(l, "hello"));
  only_snapshot(l);
  const auto spare_hits = [&] { return restores_through_a_spare(l); };
  auto first = l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "restore"}});
  ASSERT_EQ(first.result(), status::ok) << first.body();
  EXPECT_EQ(spare_hits(), 0);
  // Once that restore is done, a criu waits for the next one, holding none of
  // thawd's TCP sockets (the listening one, clients'): those would stay open
  // for as long as it waits.
  ASSERT_TRUE(eventually([&] { return waiting_criu(thawd).size() == 1; }));
  EXPECT_EQ(tcp_sockets_of(waiting_criu(thawd)[0]), std::vector<std::string>{});
  for (int i = 1; i <= 2; ++i) {
    auto again = l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "restore"}});
    ASSERT_EQ(again.result(), status::ok) << again.body();
    EXPECT_EQ(again["X-Thaw-Start-Mode"], "restore");
    EXPECT_EQ(again.body(), first.body());
    EXPECT_EQ(spare_hits(), i);
    ASSERT_TRUE(eventually([&] { return waiting_criu(thawd).size() == 1; }));
  }

  // The snapshot goes with its function, and its criu with it.
  ASSERT_EQ(l.client.request(verb::delete_, std::string(kFunctions) + "/hello").result(),
            status::no_content);
  EXPECT_TRUE(eventually([&] { return waiting_criu(thawd).empty(); }));

  // And the ones waiting at shutdown end with thawd.
  ASSERT_NO_FATAL_FAILURE(start_cold(l, "again"));
  only_snapshot(l);
  ASSERT_NO_FATAL_FAILURE(restore_until_a_spare_waits(l, thawd, "again"));
  const pid_t spare = waiting_criu(thawd)[0];
  ASSERT_EQ(thawd.stop(), 0);
  EXPECT_NE(kill(spare, 0), 0) << "criu " << spare << " outlived thawd";
}

// The work directory (criu's -W) of criu process `pid`.
std::string criu_work_dir(pid_t pid) {
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
  std::string arg, previous;
  while (std::getline(cmd, arg, '\0')) {
    if (previous == "-W") return arg;
    previous = arg;
  }
  return "";
}

TEST(ThawdCriuSpares, ARestoreThatFailsThroughASpareKeepsItsSnapshot) {
  NEEDS_ROOT();
  ThawdProcess thawd;
  Lambda l(thawd);
  ASSERT_NO_FATAL_FAILURE(start_cold(l, "hello"));
  const auto digest = only_snapshot(l)["Digest"];
  ASSERT_NO_FATAL_FAILURE(restore_until_a_spare_waits(l, thawd, "hello"));

  // The spare loses its work directory: it cannot write the restored pid
  // there, so CRIU ends the restore; a criu started for the restore would
  // not have failed. The caller still gets its answer, from a cold start,
  // and the snapshot stays.
  const auto work = criu_work_dir(waiting_criu(thawd)[0]);
  ASSERT_FALSE(work.empty());
  std::filesystem::remove_all("/proc/" + std::to_string(thawd.pid()) + "/root" + work);
  auto failed = l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "restore"}});
  ASSERT_EQ(failed.result(), status::ok) << failed.body();
  EXPECT_EQ(failed["X-Thaw-Start-Mode"], "cold");
  const auto metrics = l.client.request(verb::get, "/metrics").body();
  EXPECT_NE(metrics.find("thaw_snapshot_events_total{event=\"fallback\"} 1"), std::string::npos)
      << metrics;
  // The same snapshot, not one made again: it counts the restore it served.
  EXPECT_EQ(only_snapshot(l)["Digest"], digest);
  EXPECT_EQ(only_snapshot(l)["RestoresServed"], 1);

  // The next restore starts criu itself, and succeeds.
  auto again = l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "restore"}});
  ASSERT_EQ(again.result(), status::ok) << again.body();
  EXPECT_EQ(again["X-Thaw-Start-Mode"], "restore");
}

TEST(ThawdProvided, ANativeExecutableServesInvocationsThroughTheRuntimeApi) {
  NEEDS_ROOT();
  ThawdProcess thawd;
  Lambda l(thawd);
  const json body = {{"FunctionName", "native"},
                     {"Runtime", "provided"},
                     {"Handler", "bootstrap"},
                     {"Code", {{"ZipFile", zip_base64(NATIVE_HELLO_DIR)}}}};
  auto created = l.client.request(verb::post, kFunctions, body.dump());
  ASSERT_EQ(created.result(), status::created) << created.body();
  for (const char* mode : {"cold", "warm", "warm"}) {
    auto r = l.invoke("native", R"({"name": "n"})");
    ASSERT_EQ(r.result(), status::ok) << r.body();
    EXPECT_EQ(r["X-Amz-Function-Error"], "");
    EXPECT_EQ(json::parse(r.body()), json({{"message", "hello native"}}));
    EXPECT_EQ(r["X-Thaw-Start-Mode"], mode);
  }
}

TEST(ThawdShutdown, SigtermLetsTheInvocationInFlightFinish) {
  NEEDS_ROOT();
  ThawdProcess thawd;
  Lambda l(thawd);
  l.create("slow", "handler.sleep_ms", "python-errors",
           {{"SnapStart", {{"ApplyOn", "None"}}}, {"Timeout", 30}});
  auto running =
      std::async(std::launch::async, [&] { return l.invoke("slow", R"({"ms": 1500})"); });
  ASSERT_TRUE(eventually([&] {
    for (const auto& i : l.instances())
      if (i["State"] == "Busy") return true;
    return false;
  }));
  const int st = thawd.stop();
  auto answer = running.get();
  EXPECT_EQ(answer.result(), status::ok);
  EXPECT_EQ(json::parse(answer.body()), "slept");
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

// --criu-spares 0: restores still work, each with a criu of its own, and no
// criu waits between them.
TEST(ThawdCriuSpares, WithNoSparesEveryRestoreStartsItsOwnCriu) {
  NEEDS_ROOT();
  ThawdProcess thawd({"--criu-spares", "0"});
  Lambda l(thawd);
  ASSERT_NO_FATAL_FAILURE(start_cold(l, "hello"));
  only_snapshot(l);
  for (int i = 0; i < 2; ++i) {
    auto r = l.invoke("hello", "{}", {{"X-Thaw-Start-Mode", "restore"}});
    ASSERT_EQ(r.result(), status::ok) << r.body();
    EXPECT_EQ(r["X-Thaw-Start-Mode"], "restore");
    // Long enough for a spare to have started, had there been one.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(waiting_criu(thawd), std::vector<pid_t>{});
  }
  EXPECT_EQ(restores_through_a_spare(l), 0);
}
