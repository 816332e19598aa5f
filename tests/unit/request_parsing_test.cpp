// Request targets and Lambda's request bodies, parsed at the edge.
#include <gtest/gtest.h>

#include "invoker/api/lambda/function_requests.hpp"
#include "invoker/functions/failure.hpp"
#include "invoker/http/base64.hpp"
#include "invoker/http/request_target.hpp"

using namespace thaw::invoker;

TEST(RequestTarget, SegmentsAreDecodedAndTheQueryIsSplit) {
  const auto t = parse_target("/2015-03-31/functions/my%3Afn/invocations?Marker=a%20b&MaxItems=5");
  EXPECT_EQ(t.path, "/2015-03-31/functions/my%3Afn/invocations");
  ASSERT_EQ(t.segments.size(), 4u);
  EXPECT_EQ(t.segments[2], "my:fn");
  EXPECT_EQ(t.query.at("Marker"), "a b");
  EXPECT_EQ(t.query.at("MaxItems"), "5");
  EXPECT_EQ(parse_target("/a//b/").segments, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(percent_decode("100%"), "100%");  // a lone % stays
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
}

TEST(RequestTarget, FunctionsMayBeNamedByArn) {
  EXPECT_EQ(function_name_from_path("hello"), "hello");
  EXPECT_EQ(function_name_from_path("arn:aws:lambda:us-east-1:000000000000:function:hello"),
            "hello");
  EXPECT_EQ(function_name_from_path("arn:aws:lambda:us-east-1:0:function:hello:$LATEST"), "hello");
}

namespace {

const char* kEmptyZip = "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==";

std::string refusal_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Failure& e) {
    EXPECT_EQ(e.kind, FailureKind::InvalidParameter);
    return e.what();
  }
  return "";
}

}  // namespace

TEST(FunctionRequests, CreateTakesLambdasFieldsAndDefaults) {
  const auto req = parse_create_function({{"FunctionName", "f"},
                                          {"Runtime", "python3.11"},
                                          {"Handler", "handler.handler"},
                                          {"Environment", {{"Variables", {{"A", "1"}}}}},
                                          {"SnapStart", {{"ApplyOn", "None"}}},
                                          {"Code", {{"ZipFile", kEmptyZip}}}});
  EXPECT_EQ(req.record.config.name, "f");
  EXPECT_EQ(req.record.config.memory_mb, 128u);
  EXPECT_EQ(req.record.config.timeout_s, 3u);
  EXPECT_EQ(req.record.config.environment.at("A"), "1");
  EXPECT_EQ(req.record.config.snapshot, SnapshotPolicy::Off);
  EXPECT_EQ(req.zip.size(), 22u);
}

TEST(FunctionRequests, EgressIsThawsOwnFieldAndVpcConfigIsStillAccepted) {
  const nlohmann::json base = {
      {"FunctionName", "f"},
      {"Runtime", "python3.11"},
      {"Handler", "handler.handler"},
      {"VpcConfig", {{"SubnetIds", {"subnet-1"}}, {"SecurityGroupIds", {"sg-1"}}}},
      {"Code", {{"ZipFile", kEmptyZip}}}};
  EXPECT_FALSE(parse_create_function(base).record.config.egress);  // the host's default
  auto with = base;
  with["Egress"] = {{"Allow", {"10.0.0.0/8:5432", "192.168.1.7"}},
                    {"ConnectionsPerSecond", 20},
                    {"BandwidthMbps", 100}};
  const auto egress = parse_create_function(with).record.config.egress;
  ASSERT_TRUE(egress);
  ASSERT_EQ(egress->allow.size(), 2u);
  EXPECT_EQ(egress->allow[0].first_port, 5432);
  EXPECT_EQ(egress->connections_per_second, 20u);
  EXPECT_EQ(egress->bandwidth_mbps, 100u);
  with["Egress"] = {{"Allow", nlohmann::json::array()}};
  EXPECT_TRUE(parse_create_function(with).record.config.egress->none());
  // An update without the field keeps the policy; null gives it back to the host.
  FunctionRecord current = parse_create_function(with).record;
  EXPECT_TRUE(parse_update_configuration({{"Timeout", 5}}, current).config.egress);
  EXPECT_FALSE(parse_update_configuration({{"Egress", nullptr}}, current).config.egress);
}

TEST(FunctionRequests, RefusalsNameTheField) {
  const nlohmann::json base = {{"FunctionName", "f"},
                               {"Runtime", "python3.11"},
                               {"Handler", "handler.handler"},
                               {"Code", {{"ZipFile", kEmptyZip}}}};
  auto with = [&](const char* key, nlohmann::json value) {
    auto j = base;
    j[key] = std::move(value);
    return j;
  };
  EXPECT_NE(refusal_of([&] { parse_create_function(with("MemorySize", 64)); }).find("MemorySize"),
            std::string::npos);
  EXPECT_NE(refusal_of([&] { parse_create_function(with("Timeout", "3")); }).find("Timeout"),
            std::string::npos);
  EXPECT_NE(refusal_of([&] {
              parse_create_function(with("Code", {{"ZipFile", "%%%"}}));
            }).find("Code.ZipFile"),
            std::string::npos);
  EXPECT_NE(refusal_of([&] {
              parse_create_function(with("SnapStart", {{"ApplyOn", "Always"}}));
            }).find("SnapStart.ApplyOn"),
            std::string::npos);
  EXPECT_NE(refusal_of([&] {
              parse_update_code({{"S3Bucket", "b"}});
            }).find("S3Bucket"),
            std::string::npos);
  EXPECT_NE(refusal_of([&] {
              parse_reserved_concurrency({{"ReservedConcurrentExecutions", -1}});
            }).find("ReservedConcurrentExecutions"),
            std::string::npos);
}

TEST(FunctionRequests, NumbersMustBeWholeAndInRange) {
  const nlohmann::json base = {{"FunctionName", "f"},
                               {"Runtime", "python3.11"},
                               {"Handler", "handler.handler"},
                               {"Code", {{"ZipFile", kEmptyZip}}}};
  // 1e30 into a uint32 was undefined behaviour, and -1 became 4294967295.
  for (const nlohmann::json& bad :
       {nlohmann::json(1e30), nlohmann::json(-1.5e20), nlohmann::json(128.5), nlohmann::json(-1),
        nlohmann::json(uint64_t{1} << 40)}) {
    for (const char* key : {"MemorySize", "Timeout"}) {
      auto j = base;
      j[key] = bad;
      EXPECT_NE(refusal_of([&] {
                  parse_create_function(j);
                }).find(std::string(key) + ": must be a whole number"),
                std::string::npos)
          << key << " = " << bad.dump();
    }
    EXPECT_NE(refusal_of([&] {
                parse_event_invoke_config({{"MaximumRetryAttempts", bad}}, FunctionRecord{});
              }).find("MaximumRetryAttempts"),
              std::string::npos)
        << bad.dump();
  }
  auto j = base;
  j["MemorySize"] = 256.0;  // A whole number written with a fraction is still refused.
  EXPECT_FALSE(refusal_of([&] { parse_create_function(j); }).empty());
  j["MemorySize"] = 256;
  EXPECT_EQ(parse_create_function(j).record.config.memory_mb, 256u);
}

TEST(FunctionRequests, UpdateConfigurationKeepsWhatItDoesNotName) {
  FunctionRecord current;
  current.config = {"f", "python3.11", "handler.handler", 128,
                    3,   512,          {{"A", "1"}},      SnapshotPolicy::Auto};
  const auto updated = parse_update_configuration({{"Timeout", 30}}, current);
  EXPECT_EQ(updated.config.timeout_s, 30u);
  EXPECT_EQ(updated.config.environment.at("A"), "1");
  EXPECT_EQ(updated.config.handler, "handler.handler");
  EXPECT_NE(refusal_of([&] {
              parse_update_configuration({{"FunctionName", "g"}}, current);
            }).find("FunctionName"),
            std::string::npos);
}

TEST(FunctionRequests, EventInvokeConfigFollowsLambdasRanges) {
  FunctionRecord r;
  r = parse_event_invoke_config({{"MaximumRetryAttempts", 0}}, r);
  EXPECT_EQ(r.max_retry_attempts, 0);
  EXPECT_EQ(r.max_event_age_s, 21600);
  EXPECT_NE(refusal_of([&] {
              parse_event_invoke_config({{"MaximumRetryAttempts", 3}}, r);
            }).find("MaximumRetryAttempts"),
            std::string::npos);
  EXPECT_NE(refusal_of([&] {
              parse_event_invoke_config({{"MaximumEventAgeInSeconds", 59}}, r);
            }).find("MaximumEventAgeInSeconds"),
            std::string::npos);
}

TEST(FunctionRequests, LambdasOwnFieldsAreAcceptedAndUnknownOnesRefused) {
  nlohmann::json req = {{"FunctionName", "f"},
                        {"Runtime", "python3.11"},
                        {"Handler", "handler.handler"},
                        {"Description", "made by the SDK"},
                        {"Publish", false},
                        {"Tags", {{"team", "a"}}},
                        {"Architectures", {"x86_64"}},
                        {"Code", {{"ZipFile", kEmptyZip}}}};
  EXPECT_NO_THROW(parse_create_function(req));
  req["Colour"] = "blue";
  EXPECT_NE(refusal_of([&] { parse_create_function(req); }).find("Colour"), std::string::npos);
  req.erase("Colour");
  req["Architectures"] = {"arm64"};
  EXPECT_NE(refusal_of([&] { parse_create_function(req); }).find("Architectures"),
            std::string::npos);
  EXPECT_NE(refusal_of([&] {
              parse_update_code({{"ZipFile", kEmptyZip}, {"Zip", 1}});
            }).find("Zip"),
            std::string::npos);
}

// Found by tests/fuzz/lambda_request_fuzz: base64 of a length that is no
// multiple of 4 was decoded past the end of its buffer.
TEST(FunctionRequests, Base64OfAnyLengthDecodesWithinItsBuffer) {
  EXPECT_EQ(from_base64("QQ"), "A");
  EXPECT_EQ(from_base64("QUI"), "AB");
  EXPECT_EQ(from_base64("QUJD"), "ABC");
  EXPECT_EQ(from_base64("QUJDRA"), "ABCD");
  size_t read = 0;
  EXPECT_EQ(from_base64("QUJD!x", &read), "ABC");
  EXPECT_EQ(read, 4u);
  // A package's base64 without its padding.
  std::string unpadded = kEmptyZip;
  unpadded.erase(unpadded.find_last_not_of('=') + 1);
  const auto req = parse_create_function({{"FunctionName", "f"},
                                          {"Runtime", "python3.11"},
                                          {"Handler", "handler.handler"},
                                          {"Code", {{"ZipFile", unpadded}}}});
  EXPECT_EQ(req.zip.size(), 22u);
}
