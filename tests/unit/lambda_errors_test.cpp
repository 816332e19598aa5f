// Each kind of failure as Lambda's API answers it (status, x-amzn-ErrorType,
// Type and Reason) and as the HTTP trigger answers it (a gateway's plain
// messages): the two tables that turn domain failures into HTTP.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "invoker/api/lambda/lambda_errors.hpp"
#include "invoker/api/trigger/http_trigger.hpp"

using namespace thaw::invoker;
using json = nlohmann::json;

TEST(LambdaErrors, EachKindHasLambdasStatusAndErrorType) {
  const std::vector<std::tuple<FailureKind, unsigned, std::string>> table = {
      {FailureKind::NotFound, 404, "ResourceNotFoundException"},
      {FailureKind::Conflict, 409, "ResourceConflictException"},
      {FailureKind::InvalidParameter, 400, "InvalidParameterValueException"},
      {FailureKind::InvalidContent, 400, "InvalidRequestContentException"},
      {FailureKind::TooLarge, 413, "RequestTooLargeException"},
      {FailureKind::Throttled, 429, "TooManyRequestsException"},
      {FailureKind::StorageFull, 400, "CodeStorageExceededException"},
      {FailureKind::Forbidden, 403, "AccessDeniedException"},
      {FailureKind::Internal, 500, "ServiceException"},
  };
  for (const auto& [kind, status, type] : table) {
    const auto r = lambda_error(Failure(kind, "what happened"));
    EXPECT_EQ(r.result_int(), status) << type;
    EXPECT_EQ(r["x-amzn-ErrorType"], type);
    const auto body = json::parse(r.body());
    EXPECT_EQ(body["message"], "what happened");
    EXPECT_EQ(body["Type"], kind == FailureKind::Internal ? "Service" : "User") << type;
    EXPECT_FALSE(body.contains("Reason")) << type;
  }
}

TEST(LambdaErrors, AThrottleCarriesItsReason) {
  const auto r = lambda_error(Failure(FailureKind::Throttled, "slow down",
                                      "ReservedFunctionConcurrentInvocationLimitExceeded"));
  EXPECT_EQ(json::parse(r.body())["Reason"], "ReservedFunctionConcurrentInvocationLimitExceeded");
}

TEST(LambdaErrors, TheTriggerAnswersAsAGatewayWithoutThawdsMessage) {
  const std::vector<std::tuple<FailureKind, unsigned, std::string>> table = {
      {FailureKind::NotFound, 404, "Not Found"},
      {FailureKind::Throttled, 429, "Too Many Requests"},
      {FailureKind::TooLarge, 413, "Request Entity Too Large"},
      {FailureKind::Conflict, 500, "Internal Server Error"},
      {FailureKind::Internal, 500, "Internal Server Error"},
  };
  for (const auto& [kind, status, message] : table) {
    const auto r = gateway_error(Failure(kind, "thawd's own words"));
    EXPECT_EQ(r.result_int(), status) << message;
    EXPECT_EQ(json::parse(r.body()), json({{"message", message}}));
  }
}
