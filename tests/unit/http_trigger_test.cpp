// The HTTP trigger's answers, from what a function returned.
#include "invoker/api/trigger/http_trigger.hpp"

#include <gtest/gtest.h>

using namespace thaw::invoker;

namespace {

Response answer(const std::string& payload) {
  InvokeResult r;
  r.payload = payload;
  return gateway_response(r);
}

}  // namespace

// Found by tests/fuzz/http_trigger_fuzz: a body on a 204 made Beast throw.
TEST(HttpTrigger, NoContentAndNotModifiedCarryNoBody) {
  for (int code : {204, 304}) {
    const auto r = answer(R"({"statusCode": )" + std::to_string(code) + R"(, "body": "x"})");
    EXPECT_EQ(static_cast<int>(r.result()), code);
    EXPECT_TRUE(r.body().empty());
  }
}

TEST(HttpTrigger, AStatusThatIsNoFinalAnswerIsABadGateway) {
  for (const char* code : {"100", "199", "600", "4294967496", "-200", "200.5", "\"200\""})
    EXPECT_EQ(answer(std::string(R"({"statusCode": )") + code + "}").result(),
              http::status::bad_gateway)
        << code;
  EXPECT_EQ(answer(R"({"statusCode": 201, "body": "made"})").body(), "made");
}

// Found by a test with a million-deep body: writing it out again recursed
// once per level and overflowed the stack.
TEST(HttpTrigger, AnAnswerNestedTooDeepIsABadGateway) {
  const auto nested = [](size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
  };
  EXPECT_EQ(answer(R"({"statusCode": 200, "body": )" + nested(1'000'000) + "}").result(),
            http::status::bad_gateway);
  EXPECT_EQ(answer(R"({"statusCode": 200, "headers": {"x": )" + nested(1'000'000) + "}}").result(),
            http::status::bad_gateway);
  EXPECT_EQ(answer(nested(1'000'000)).result(), http::status::bad_gateway);
  const auto fine = answer(R"({"statusCode": 200, "body": )" + nested(100) + "}");
  EXPECT_EQ(fine.result(), http::status::ok);
  EXPECT_EQ(fine.body(), nested(100));
}
