#include <gtest/gtest.h>

#include "invoker/functions/function_config.hpp"
#include "thaw/error.hpp"

using namespace thaw::invoker;

namespace {

FunctionConfig valid() {
  FunctionConfig c;
  c.name = "my-func_1";
  c.runtime = "python3.11";
  c.handler = "app.handler";
  return c;
}

// Expects validate() to refuse `c` with a message that starts with `field`.
void expect_refused(const FunctionConfig& c, const std::string& field,
                    const std::string& rule_fragment) {
  try {
    validate(c);
    ADD_FAILURE() << "accepted; expected a refusal on " << field;
  } catch (const thaw::Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind(field + ": ", 0), 0u) << what;
    EXPECT_NE(what.find(rule_fragment), std::string::npos) << what;
  }
}

}  // namespace

TEST(FunctionConfig, ValidConfigPasses) {
  EXPECT_NO_THROW(validate(valid()));
  auto node = valid();
  node.runtime = "nodejs20.x";
  node.handler = "index.handler";
  EXPECT_NO_THROW(validate(node));
  auto provided = valid();
  provided.runtime = "provided";
  provided.handler = "";
  EXPECT_NO_THROW(validate(provided));
}

TEST(FunctionConfig, Name) {
  for (const char* bad : {"", "has space", "slash/y", "dot.name", "ünicode"}) {
    auto c = valid();
    c.name = bad;
    expect_refused(c, "FunctionName", "1 to 64 letters");
  }
  auto c = valid();
  c.name = std::string(64, 'a');
  EXPECT_NO_THROW(validate(c));
  c.name = std::string(65, 'a');
  expect_refused(c, "FunctionName", "1 to 64");
}

TEST(FunctionConfig, Runtime) {
  auto c = valid();
  c.runtime = "python2.7";
  expect_refused(c, "Runtime", "python3.11, nodejs20.x, provided");
}

TEST(FunctionConfig, Handler) {
  for (const char* bad : {"nodot", "", "app.", ".handler", "app.has space", "my app.handler",
                          "app.1handler", "app.han-dler", "app\t.handler"}) {
    auto c = valid();
    c.handler = bad;
    expect_refused(c, "Handler", "file.function");
  }
  for (const char* good : {"app.handler", "src/app.main_2", "a.b.c.$fn", "index._"}) {
    auto c = valid();
    c.handler = good;
    EXPECT_NO_THROW(validate(c)) << good;
  }
}

// The rules were std::regex once, which recursed once per character: a key of
// 50,000 characters overflowed the stack. Refusals quote a long value cut short.
TEST(FunctionConfig, LongValuesAreRefusedWithoutQuotingThemWhole) {
  const std::string long_key(1'000'000, 'A');
  auto c = valid();
  c.environment = {{long_key + "-", "x"}};
  expect_refused(c, "Environment.Variables", "1000001 characters");
  c.environment = {{long_key, "x"}};
  expect_refused(c, "Environment.Variables", "4 KB");
  c = valid();
  c.name = std::string(1'000'000, 'a');
  try {
    validate(c);
    ADD_FAILURE() << "a name of a million characters was accepted";
  } catch (const thaw::Error& e) {
    EXPECT_LT(std::string(e.what()).size(), 300u);
  }
}

TEST(FunctionConfig, MemoryBounds) {
  auto c = valid();
  c.memory_mb = 127;
  expect_refused(c, "MemorySize", "between 128 and 10240");
  c.memory_mb = 10241;
  expect_refused(c, "MemorySize", "got 10241");
  c.memory_mb = 10240;
  EXPECT_NO_THROW(validate(c));
}

TEST(FunctionConfig, TimeoutBoundsAndDefault) {
  EXPECT_EQ(FunctionConfig{}.timeout_s, 3u);
  auto c = valid();
  c.timeout_s = 0;
  expect_refused(c, "Timeout", "between 1 and 900");
  c.timeout_s = 901;
  expect_refused(c, "Timeout", "between 1 and 900");
}

TEST(FunctionConfig, EnvironmentLimitAndKeys) {
  auto c = valid();
  c.environment["BIG"] = std::string(4096, 'x');
  expect_refused(c, "Environment.Variables", "4 KB");
  c.environment = {{"1BAD", "x"}};
  expect_refused(c, "Environment.Variables", "must start with a letter");
  c.environment = {{"AWS_LAMBDA_FUNCTION_NAME", "x"}};
  expect_refused(c, "Environment.Variables", "reserved");
  c.environment = {{"OK_KEY", std::string(4000, 'x')}};
  EXPECT_NO_THROW(validate(c));
}

TEST(FunctionConfig, LambdaEnvironment) {
  auto c = valid();
  c.memory_mb = 512;
  c.environment = {{"MINE", "1"}};
  const auto env = lambda_environment(c);
  EXPECT_EQ(env.at("AWS_LAMBDA_FUNCTION_NAME"), "my-func_1");
  EXPECT_EQ(env.at("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "512");
  EXPECT_EQ(env.at("AWS_LAMBDA_FUNCTION_VERSION"), "$LATEST");
  EXPECT_EQ(env.at("LAMBDA_TASK_ROOT"), "/var/task");
  EXPECT_EQ(env.at("_HANDLER"), "app.handler");
  EXPECT_EQ(env.at("TZ"), ":UTC");
  EXPECT_EQ(env.at("MINE"), "1");
  EXPECT_EQ(function_arn("f"), "arn:aws:lambda:us-east-1:000000000000:function:f");
}
