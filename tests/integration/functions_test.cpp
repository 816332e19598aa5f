// The cold path end to end: real sandboxes running the real runtimes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "examples.hpp"
#include "images/code_package.hpp"
#include "invoker/instances/function_instance.hpp"
#include "sandbox/cgroup.hpp"
#include "sandbox_harness.hpp"
#include "thaw/error.hpp"

using namespace thaw;
using namespace thaw::invoker;
using nlohmann::json;
namespace fs = std::filesystem;
using itest::example;

namespace {}  // namespace

class Functions : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = itest::sandbox_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    char tmpl[] = "/tmp/thaw-fn-XXXXXX";
    state_ = mkdtemp(tmpl);
    host_ =
        std::make_unique<HostEnvironment>(prepare_host_environment(state_, THAW_RUNTIMES_DIR, 2));
    host_->cgroup_parent = "thaw-test-fn-" + std::to_string(getpid());
  }
  void TearDown() override {
    if (!host_) return;
    const auto parent = host_->cgroup_parent;
    host_.reset();
    sandbox::remove_cgroup_parent(parent);
    fs::remove_all(state_);
  }

  FunctionConfig config(const std::string& runtime, const std::string& handler) {
    FunctionConfig c;
    c.name = "fn";
    c.runtime = runtime;
    c.handler = handler;
    c.memory_mb = 256;
    c.timeout_s = 5;
    return c;
  }

  InvokeResult cold(const FunctionConfig& c, const std::string& code,
                    const std::string& payload = "{}") {
    return invoke_cold(*host_, c, example(code), payload);
  }

  std::string state_;
  std::unique_ptr<HostEnvironment> host_;
};

TEST_F(Functions, PythonHello) {
  auto r = cold(config("python3.11", "handler.handler"), "python-hello", R"({"name":"thaw"})");
  ASSERT_FALSE(r.error) << r.payload << r.log;
  EXPECT_EQ(json::parse(r.payload), json({{"message", "hello thaw"}}));
  EXPECT_EQ(r.start_mode, StartMode::Cold);
  ASSERT_TRUE(r.init_ms.has_value());
  EXPECT_GT(*r.init_ms, 0);
  EXPECT_GT(r.duration_ms, 0);
}

TEST_F(Functions, NodeHello) {
  auto r = cold(config("nodejs20.x", "index.handler"), "node-hello", R"({"name":"thaw"})");
  ASSERT_FALSE(r.error) << r.payload << r.log;
  auto j = json::parse(r.payload);
  EXPECT_EQ(j["message"], "hello thaw");
  EXPECT_EQ(j["nodeHasHttp"], true);
}

TEST_F(Functions, ProvidedShellBootstrapSpeaksTheRuntimeApi) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl is not installed";
  auto c = config("provided", "");
  c.name = "shellfn";
  auto r = cold(c, "provided-shell", R"({"n":1})");
  ASSERT_FALSE(r.error) << r.payload << r.log;
  EXPECT_EQ(json::parse(r.payload), json({{"echo", {{"n", 1}}}, {"function", "shellfn"}}));
  EXPECT_NE(r.log.find("handling " + r.request_id), std::string::npos) << r.log;
}

TEST_F(Functions, ProvidedErrorCarriesItsType) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl is not installed";
  auto r = cold(config("provided", ""), "provided-shell", R"({"fail":true})");
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->type, "Custom.Failure");
  EXPECT_EQ(r.error->message, "asked to fail");
}

TEST_F(Functions, ProvidedWithoutBootstrapIsAnInvalidEntrypoint) {
  // Any package without a bootstrap: the Python example's code.
  auto r = cold(config("provided", ""), "python-hello");
  ASSERT_TRUE(r.error) << r.payload;
  EXPECT_EQ(r.error->type, "Runtime.InvalidEntrypoint") << r.payload;
  EXPECT_NE(r.error->message.find("/var/task/bootstrap"), std::string::npos) << r.payload;
}

TEST_F(Functions, PythonContextFields) {
  auto c = config("python3.11", "handler.context_fields");
  c.name = "ctx-fn";
  auto r = cold(c, "python-errors");
  ASSERT_FALSE(r.error) << r.payload;
  auto j = json::parse(r.payload);
  EXPECT_EQ(j["aws_request_id"], r.request_id);
  EXPECT_EQ(j["function_name"], "ctx-fn");
  EXPECT_EQ(j["function_version"], "$LATEST");
  EXPECT_EQ(j["memory_limit_in_mb"], "256");
  EXPECT_EQ(j["invoked_function_arn"], function_arn("ctx-fn"));
  EXPECT_EQ(j["log_group_name"], "/aws/lambda/ctx-fn");
  EXPECT_FALSE(j["log_stream_name"].get<std::string>().empty());
  EXPECT_GT(j["remaining_ms"].get<int>(), 3000);
  EXPECT_LE(j["remaining_ms"].get<int>(), 5000);
}

TEST_F(Functions, NodeContextFields) {
  auto r = cold(config("nodejs20.x", "index.context"), "node-errors");
  ASSERT_FALSE(r.error) << r.payload;
  auto j = json::parse(r.payload);
  EXPECT_EQ(j["awsRequestId"], r.request_id);
  EXPECT_EQ(j["functionName"], "fn");
  EXPECT_EQ(j["memoryLimitInMB"], "256");
  EXPECT_EQ(j["invokedFunctionArn"], function_arn("fn"));
  EXPECT_GT(j["remainingMs"].get<int>(), 3000);
}

TEST_F(Functions, EnvironmentVariablesArrive) {
  for (const auto& [runtime, handler, code] :
       {std::tuple{"python3.11", "handler.environment", "python-errors"},
        std::tuple{"nodejs20.x", "index.environment", "node-errors"}}) {
    auto c = config(runtime, handler);
    c.environment = {{"GREETING", "hej"}, {"EMPTY", ""}};
    auto r = cold(c, code);
    ASSERT_FALSE(r.error) << r.payload;
    auto env = json::parse(r.payload);
    EXPECT_EQ(env["GREETING"], "hej");
    EXPECT_EQ(env["EMPTY"], "");
    EXPECT_EQ(env["AWS_LAMBDA_FUNCTION_NAME"], "fn");
    EXPECT_EQ(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    EXPECT_EQ(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    EXPECT_EQ(env["LAMBDA_TASK_ROOT"], "/var/task");
    EXPECT_EQ(env["_HANDLER"], handler);
    EXPECT_EQ(env["TZ"], ":UTC");
    EXPECT_FALSE(env.contains("THAW_CHANNEL_FD"));
  }
}

TEST_F(Functions, HandlerExceptionGivesItsType) {
  auto r = cold(config("python3.11", "handler.raise_error"), "python-errors");
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->type, "ValueError");
  EXPECT_EQ(r.error->message, "something went wrong");
  auto body = json::parse(r.payload);
  EXPECT_TRUE(body["stackTrace"].is_array());
  EXPECT_NE(r.log.find("about to fail"), std::string::npos);

  auto n = cold(config("nodejs20.x", "index.throws"), "node-errors");
  ASSERT_TRUE(n.error);
  EXPECT_EQ(n.error->type, "RangeError");
  EXPECT_EQ(n.error->message, "out of range");
  auto cb = cold(config("nodejs20.x", "index.callbackError"), "node-errors");
  ASSERT_TRUE(cb.error);
  EXPECT_EQ(cb.error->type, "TypeError");
}

TEST_F(Functions, NodeCallbackStyleHandler) {
  auto r = cold(config("nodejs20.x", "index.callback"), "node-errors", R"({"a":1})");
  ASSERT_FALSE(r.error) << r.payload;
  EXPECT_EQ(json::parse(r.payload), json({{"via", "callback"}, {"got", {{"a", 1}}}}));
}

TEST_F(Functions, InitErrors) {
  auto init = cold(config("python3.11", "handler.handler"), "python-init-error");
  ASSERT_TRUE(init.error);
  EXPECT_EQ(init.error->type, "Runtime.InitError");
  EXPECT_NE(init.error->message.find("configuration missing"), std::string::npos);

  auto missing = cold(config("python3.11", "handler.nope"), "python-hello");
  ASSERT_TRUE(missing.error);
  EXPECT_EQ(missing.error->type, "Runtime.HandlerNotFound");

  auto import = cold(config("python3.11", "nomodule.handler"), "python-hello");
  ASSERT_TRUE(import.error);
  EXPECT_EQ(import.error->type, "Runtime.ImportModuleError");

  auto node_missing = cold(config("nodejs20.x", "index.nope"), "node-hello");
  ASSERT_TRUE(node_missing.error);
  EXPECT_EQ(node_missing.error->type, "Runtime.HandlerNotFound");
  auto node_import = cold(config("nodejs20.x", "nofile.handler"), "node-hello");
  ASSERT_TRUE(node_import.error);
  EXPECT_EQ(node_import.error->type, "Runtime.ImportModuleError");
}

TEST_F(Functions, TimeoutKillsAndReports) {
  for (const auto& [runtime, handler, code] :
       {std::tuple{"python3.11", "handler.sleep_forever", "python-errors"},
        std::tuple{"nodejs20.x", "index.sleepForever", "node-errors"}}) {
    auto c = config(runtime, handler);
    c.timeout_s = 1;
    InitOutcome init;
    auto inst = FunctionInstance::start(*host_, c, example(code), init);
    ASSERT_TRUE(init.ok);
    const auto started = std::chrono::steady_clock::now();
    auto r = inst->invoke({});
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(2500));
    ASSERT_TRUE(r.error);
    EXPECT_EQ(r.error->type, "Sandbox.Timedout");
    EXPECT_NE(r.error->message.find("Task timed out after 1.00 seconds"), std::string::npos)
        << r.error->message;
    EXPECT_FALSE(inst->reusable());
    // The process tree is gone.
    EXPECT_NE(kill(inst->sandbox_instance().pid(), 0), 0);
  }
}

TEST_F(Functions, CrashIsAnExitError) {
  auto r = cold(config("python3.11", "handler.exit_early"), "python-errors");
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->type, "Runtime.ExitError");
  EXPECT_NE(r.error->message.find("exit status 3"), std::string::npos) << r.error->message;
  auto s = cold(config("python3.11", "handler.segfault"), "python-errors");
  ASSERT_TRUE(s.error);
  EXPECT_EQ(s.error->type, "Runtime.ExitError");
  EXPECT_NE(s.error->message.find("signal"), std::string::npos) << s.error->message;
}

TEST_F(Functions, OutOfMemoryIsReportedAsSuch) {
  for (const auto& [runtime, handler, code] :
       {std::tuple{"python3.11", "handler.eat_memory", "python-errors"},
        std::tuple{"nodejs20.x", "index.eatMemory", "node-errors"}}) {
    auto c = config(runtime, handler);
    c.memory_mb = 128;
    c.timeout_s = 60;  // 128 MB buys 7% of a CPU: filling it takes seconds
    auto r = cold(c, code);
    ASSERT_TRUE(r.error) << runtime;
    EXPECT_EQ(r.error->type, "Runtime.OutOfMemory") << runtime << ": " << r.error->message;
    EXPECT_GE(r.max_memory_used_mb, 120u);
  }
}

TEST_F(Functions, SixMegabytePayloadsPassAndOneByteMoreIsRefused) {
  auto c = config("python3.11", "handler.big_response");
  InitOutcome init;
  auto inst = FunctionInstance::start(*host_, c, example("python-errors"), init);
  ASSERT_TRUE(init.ok);
  // A JSON string of n bytes serializes to n + 2 (the quotes).
  auto ok = inst->invoke({"", R"({"size": )" + std::to_string(kMaxResponseBytes - 2) + "}"});
  ASSERT_FALSE(ok.error) << ok.payload.substr(0, 200);
  EXPECT_EQ(ok.payload.size(), kMaxResponseBytes);
  auto big = inst->invoke({"", R"({"size": )" + std::to_string(kMaxResponseBytes - 1) + "}"});
  ASSERT_TRUE(big.error);
  EXPECT_EQ(big.error->type, "Function.ResponseSizeTooLarge");
  EXPECT_FALSE(inst->reusable());

  // A 6 MB event reaches the handler whole.
  auto echo = config("python3.11", "handler.echo");
  InitOutcome init2;
  auto inst2 = FunctionInstance::start(*host_, echo, example("python-errors"), init2);
  const std::string event = "\"" + std::string(kMaxResponseBytes - 2, 'e') + "\"";
  auto r = inst2->invoke({"", event});
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.payload, event);
}

TEST_F(Functions, UnicodeAndBinarySafePayloads) {
  for (const auto& [runtime, handler, code] :
       {std::tuple{"python3.11", "handler.echo", "python-errors"},
        std::tuple{"nodejs20.x", "index.echo", "node-errors"}}) {
    const json event = {{"text", "h\u00e9llo \u4e16\u754c \U0001F600"},
                        {"nul", std::string("a\0b", 3)},
                        {"bytes", "\u0001\u0002\u007f"}};
    auto r = cold(config(runtime, handler), code, event.dump());
    ASSERT_FALSE(r.error) << r.payload;
    EXPECT_EQ(json::parse(r.payload), event) << runtime;
  }
}

TEST_F(Functions, WarmInvocationsReuseTheInstance) {
  InitOutcome init;
  auto inst = FunctionInstance::start(*host_, config("python3.11", "handler.echo"),
                                      example("python-errors"), init);
  ASSERT_TRUE(init.ok);
  auto first = inst->invoke({"", "1"});
  auto second = inst->invoke({"", "2"});
  EXPECT_EQ(first.start_mode, StartMode::Cold);
  EXPECT_TRUE(first.init_ms.has_value());
  EXPECT_EQ(second.start_mode, StartMode::Warm);
  EXPECT_FALSE(second.init_ms.has_value());
  EXPECT_EQ(second.payload, "2");
  // A handled exception leaves the instance usable.
  EXPECT_TRUE(inst->reusable());
}

// Init runs without the function's CPU share (Lambda boosts init); it
// applies from the first invocation on.
TEST_F(Functions, TheCpuShareAppliesFromTheFirstInvocation) {
  if (sandbox::detect_cgroup_layout().version_of("cpu") == 0) GTEST_SKIP() << "no cpu controller";
  InitOutcome init;
  auto inst = FunctionInstance::start(*host_, config("python3.11", "handler.echo"),
                                      example("python-errors"), init);
  ASSERT_TRUE(init.ok);
  const auto& cgroup = inst->sandbox_instance().cgroup().path();
  EXPECT_EQ(itest::cpu_quota_of(cgroup), "max");
  ASSERT_FALSE(inst->invoke({"", "1"}).error);
  EXPECT_EQ(itest::cpu_quota_of(cgroup), "14471");  // 256/1769 of 100 ms
}

// A CPU share the cgroup refuses costs the instance, not the answer: it
// answers, and is not used again. (cgroup v1 refuses a group a quota over its
// parent's.)
TEST_F(Functions, ACpuShareTheCgroupRefusesCostsTheInstanceNotTheAnswer) {
  if (sandbox::detect_cgroup_layout().version_of("cpu") != 1)
    GTEST_SKIP() << "cgroup v1 refuses a quota over the parent's; v2 caps it instead";
  InitOutcome init;
  auto inst = FunctionInstance::start(*host_, config("python3.11", "handler.echo"),
                                      example("python-errors"), init);
  ASSERT_TRUE(init.ok);
  const auto parent = sandbox::controller_mount("cpu") + "/" + host_->cgroup_parent;
  std::ofstream(parent + "/cpu.cfs_quota_us") << "5000\n";  // under the instance's 14471
  ASSERT_EQ(itest::cpu_quota_of(host_->cgroup_parent), "5000");
  const auto r = inst->invoke({"", "1"});
  ASSERT_FALSE(r.error) << r.payload << r.log;
  EXPECT_EQ(r.payload, "1");
  EXPECT_FALSE(inst->reusable());
  EXPECT_EQ(itest::cpu_quota_of(inst->sandbox_instance().cgroup().path()), "max");
}

// Work set off for after the first answer runs once it is in; one job that
// fails costs neither the answer nor the jobs after it.
TEST_F(Functions, AJobForAfterTheFirstAnswerThatFailsLosesNothing) {
  InitOutcome init;
  auto inst = FunctionInstance::start(*host_, config("python3.11", "handler.echo"),
                                      example("python-errors"), init);
  ASSERT_TRUE(init.ok);
  int ran = 0;
  inst->after_first_answer([] { throw std::runtime_error("cannot"); });
  inst->after_first_answer([&] { ++ran; });
  EXPECT_EQ(ran, 0);
  const auto r = inst->invoke({"", "1"});
  ASSERT_FALSE(r.error) << r.payload;
  EXPECT_EQ(r.payload, "1");
  EXPECT_EQ(ran, 1);
  EXPECT_TRUE(inst->reusable());
  inst->after_first_answer([&] { ++ran; });  // answered: at once
  EXPECT_EQ(ran, 2);
}

TEST_F(Functions, LogsHaveStartEndAndReportLines) {
  auto r = cold(config("python3.11", "handler.log_lines"), "python-errors", R"({"lines": 2})");
  ASSERT_FALSE(r.error) << r.payload;
  EXPECT_EQ(r.log.rfind("START RequestId: " + r.request_id + " Version: $LATEST\n", 0), 0u)
      << r.log;
  EXPECT_NE(r.log.find("line 0\nline 1\n"), std::string::npos) << r.log;
  EXPECT_NE(r.log.find("to stderr\n"), std::string::npos) << r.log;
  EXPECT_NE(r.log.find("END RequestId: " + r.request_id + "\n"), std::string::npos);
  EXPECT_NE(r.report_line.find("REPORT RequestId: " + r.request_id + "\tDuration: "),
            std::string::npos);
  EXPECT_NE(r.report_line.find("\tMemory Size: 256 MB\tMax Memory Used: "), std::string::npos);
  EXPECT_NE(r.report_line.find("\tInit Duration: "), std::string::npos);
  EXPECT_EQ(r.log.substr(r.log.size() - r.report_line.size() - 1), r.report_line + "\n");
  EXPECT_GE(r.billed_ms, static_cast<uint64_t>(r.duration_ms));
  EXPECT_GT(r.max_memory_used_mb, 0u);
}

TEST_F(Functions, LogTailIsTheLastFourKilobytes) {
  auto r = cold(config("python3.11", "handler.log_lines"), "python-errors", R"({"lines": 2000})");
  ASSERT_FALSE(r.error);
  const auto tail = r.log_tail();
  EXPECT_EQ(tail.size(), kLogTailBytes);
  EXPECT_EQ(tail, r.log.substr(r.log.size() - kLogTailBytes));
  EXPECT_NE(tail.find("REPORT RequestId"), std::string::npos);
}

TEST_F(Functions, PandasHeavyInit) {
  if (access("/usr/lib/python3/dist-packages/pandas", F_OK) != 0)
    GTEST_SKIP() << "Debian's python3-pandas is not installed (scripts/install-deps installs it)";
  auto c = config("python3.11", "handler.handler");
  c.memory_mb = 512;
  c.timeout_s = 30;
  auto r = cold(c, "python-pandas", R"({"values":[1,2,3]})");
  ASSERT_FALSE(r.error) << r.payload << r.log;
  EXPECT_EQ(json::parse(r.payload), json({{"sum", 6}, {"mean", 2.0}}));
}

TEST_F(Functions, ProvidedWithTheNodeJsRuntimeInterfaceClientFromNpm) {
  const auto code = state_ + "/ric-code";
  if (auto why = itest::write_ric_package(code); !why.empty()) GTEST_SKIP() << why;
  fs::permissions(state_, fs::perms(0755));
  auto c = config("provided", "");
  c.timeout_s = 20;
  InitOutcome init;
  auto inst = FunctionInstance::start(*host_, c, code, init);
  ASSERT_TRUE(init.ok) << (init.error ? init.error->body : "") << init.log;
  for (const char* name : {"ric", "again"}) {
    auto r = inst->invoke({"", std::string(R"({"name":")") + name + "\"}"});
    ASSERT_FALSE(r.error) << r.payload << r.log;
    EXPECT_EQ(json::parse(r.payload)["message"], std::string("hello ") + name);
  }
}

TEST_F(Functions, DeployedFromTheCodeStoreAndMountedReadOnly) {
  // The path a deployment takes: the package goes into the content-addressed
  // store, and the instance mounts the stored tree at /var/task.
  images::CodeStore store(state_ + "/code");
  const auto stored = store.add_directory(example("python-errors"));
  EXPECT_EQ(stored.sha256.size(), 64u);
  auto c = config("python3.11", "handler.echo");
  auto r = invoke_cold(*host_, c, stored.dir, R"({"from":"store"})");
  ASSERT_FALSE(r.error) << r.payload << r.log;
  EXPECT_EQ(json::parse(r.payload), json({{"from", "store"}}));
}
