// Signature Version 4 against AWS's published examples, and the verifier's refusals.
#include "invoker/api/auth/sigv4.hpp"

#include <gtest/gtest.h>

using namespace thaw::invoker;

namespace {

const std::string kKey = "AKIDEXAMPLE";
const std::string kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const std::string kDate = "20150830T123600Z";

SignedRequest vanilla(const std::string& query = "") {
  return {"GET", "/", query, {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kDate}}, ""};
}

time_t example_time() {
  std::tm tm{};
  strptime("20150830T123600Z", "%Y%m%dT%H%M%SZ", &tm);
  return timegm(&tm);
}

void authorize(SignedRequest& r, const std::string& signature,
               const std::string& scope = "20150830/us-east-1/service/aws4_request",
               const std::string& signed_headers = "host;x-amz-date") {
  r.headers.push_back({"Authorization", "AWS4-HMAC-SHA256 Credential=" + kKey + "/" + scope +
                                            ", SignedHeaders=" + signed_headers +
                                            ", Signature=" + signature});
}

}  // namespace

// AWS's SigV4 test suite: get-vanilla and get-vanilla-query-order-key-case.
TEST(SigV4, TheTestSuitesVanillaRequestsSignToThePublishedSignatures) {
  EXPECT_EQ(sign(vanilla(), {"host", "x-amz-date"}, kSecret, kDate, "us-east-1", "service"),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  EXPECT_EQ(sign(vanilla("Param2=value2&Param1=value1"), {"host", "x-amz-date"}, kSecret, kDate,
                 "us-east-1", "service"),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

// The worked example of AWS's documentation (IAM ListUsers).
TEST(SigV4, TheDocumentationsExampleSignsToItsPublishedSignature) {
  SignedRequest r{"GET",
                  "/",
                  "Action=ListUsers&Version=2010-05-08",
                  {{"Host", "iam.amazonaws.com"},
                   {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                   {"X-Amz-Date", kDate}},
                  ""};
  const std::vector<std::string> headers = {"content-type", "host", "x-amz-date"};
  EXPECT_EQ(sha256_hex(canonical_request(r, headers, sha256_hex(""))),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
  EXPECT_EQ(sign(r, headers, kSecret, kDate, "us-east-1", "iam"),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

TEST(SigV4, AVerifiedRequestNamesItsKey) {
  auto r = vanilla();
  authorize(r, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  const auto v = verify_sigv4(r, {{kKey, kSecret}}, example_time() + 60);
  EXPECT_TRUE(v.ok) << v.message;
  EXPECT_EQ(v.access_key, kKey);
}

TEST(SigV4, WrongSignatureUnknownKeyAndStaleTimestampsAreRefused) {
  auto bad = vanilla();
  authorize(bad, std::string(64, '0'));
  auto v = verify_sigv4(bad, {{kKey, kSecret}}, example_time());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.status, 403u);
  EXPECT_EQ(v.error_type, "InvalidSignatureException");

  auto good = vanilla();
  authorize(good, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  v = verify_sigv4(good, {{"AKIDOTHER", kSecret}}, example_time());
  EXPECT_EQ(v.error_type, "UnrecognizedClientException");
  v = verify_sigv4(good, {{kKey, "another secret"}}, example_time());
  EXPECT_EQ(v.error_type, "InvalidSignatureException");
  v = verify_sigv4(good, {{kKey, kSecret}}, example_time() + 301);
  EXPECT_EQ(v.error_type, "InvalidSignatureException");
  EXPECT_NE(v.message.find("expired"), std::string::npos) << v.message;
  EXPECT_TRUE(verify_sigv4(good, {{kKey, kSecret}}, example_time() - 299).ok);
}

TEST(SigV4, ATamperedRequestIsRefused) {
  auto r = vanilla("a=1");
  r.method = "POST";
  r.body = R"({"x":1})";
  const auto sig = sign(r, {"host", "x-amz-date"}, kSecret, kDate, "us-east-1", "lambda");
  auto signed_request = r;
  authorize(signed_request, sig, "20150830/us-east-1/lambda/aws4_request");
  EXPECT_TRUE(verify_sigv4(signed_request, {{kKey, kSecret}}, example_time()).ok);
  for (auto change : {+[](SignedRequest& x) { x.body = R"({"x":2})"; },
                      +[](SignedRequest& x) { x.raw_query = "a=2"; },
                      +[](SignedRequest& x) { x.raw_path = "/other"; },
                      +[](SignedRequest& x) { x.method = "PUT"; }}) {
    auto tampered = signed_request;
    change(tampered);
    EXPECT_FALSE(verify_sigv4(tampered, {{kKey, kSecret}}, example_time()).ok);
  }
}

TEST(SigV4, MalformedAuthorizationHeadersAreRefused) {
  for (const char* header :
       {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service, SignedHeaders=host, "
        "Signature=00",
        "AWS4-HMAC-SHA256 garbage", "Basic abc"}) {
    auto r = vanilla();
    r.headers.push_back({"Authorization", header});
    const auto v = verify_sigv4(r, {{kKey, kSecret}}, example_time());
    EXPECT_FALSE(v.ok) << header;
    EXPECT_EQ(v.error_type, "IncompleteSignatureException") << header;
  }
  auto no_host = vanilla();
  authorize(no_host, std::string(64, 'a'), "20150830/us-east-1/service/aws4_request", "x-amz-date");
  EXPECT_EQ(verify_sigv4(no_host, {{kKey, kSecret}}, example_time()).error_type,
            "IncompleteSignatureException");
}

TEST(SigV4, BeforeTheBodyTheHeadersAreCheckedAndADeclaredHashSigned) {
  auto r = vanilla();
  r.method = "POST";
  r.body = R"({"x":1})";
  r.headers.push_back({"X-Amz-Content-Sha256", sha256_hex(r.body)});
  const auto sig = sign(r, {"host", "x-amz-content-sha256", "x-amz-date"}, kSecret, kDate,
                        "us-east-1", "lambda");
  authorize(r, sig, "20150830/us-east-1/lambda/aws4_request",
            "host;x-amz-content-sha256;x-amz-date");
  auto header_only = r;
  header_only.body.clear();
  EXPECT_TRUE(verify_sigv4_headers(header_only, {{kKey, kSecret}}, example_time()).ok);
  EXPECT_TRUE(verify_sigv4(r, {{kKey, kSecret}}, example_time()).ok);
  // A wrong signature over a declared hash is refused before any body byte.
  auto forged = header_only;
  forged.headers.back().second.replace(forged.headers.back().second.size() - 64, 64,
                                       std::string(64, '0'));
  EXPECT_EQ(verify_sigv4_headers(forged, {{kKey, kSecret}}, example_time()).error_type,
            "InvalidSignatureException");
  // Without a declared hash, what the header shows is checked: the key.
  auto undeclared = vanilla();
  authorize(undeclared, std::string(64, '0'));
  EXPECT_TRUE(verify_sigv4_headers(undeclared, {{kKey, kSecret}}, example_time()).ok);
  EXPECT_EQ(verify_sigv4_headers(undeclared, {{"AKIDOTHER", kSecret}}, example_time()).error_type,
            "UnrecognizedClientException");
}

TEST(SigV4, AnUnsignedPayloadIsRefused) {
  auto r = vanilla();
  r.headers.push_back({"X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"});
  const auto sig = sign(r, {"host", "x-amz-content-sha256", "x-amz-date"}, kSecret, kDate,
                        "us-east-1", "lambda");
  authorize(r, sig, "20150830/us-east-1/lambda/aws4_request",
            "host;x-amz-content-sha256;x-amz-date");
  const auto v = verify_sigv4(r, {{kKey, kSecret}}, example_time());
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.message.find("UNSIGNED-PAYLOAD"), std::string::npos) << v.message;
}
