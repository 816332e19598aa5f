#pragma once
// AWS Signature Version 4, as thawd verifies it: the canonical request, the
// string to sign and the signing key (HMAC-SHA256 chain, OpenSSL), so that
// requests signed by the AWS SDKs and CLI are accepted with an access key
// thawd created, and refused with Lambda's errors otherwise.

#include <ctime>
#include <map>
#include <string>
#include <vector>

namespace thaw::invoker {

struct SignedRequest {
  std::string method;
  std::string raw_path;                                      // as sent, percent-encoded
  std::string raw_query;                                     // after '?', as sent
  std::vector<std::pair<std::string, std::string>> headers;  // names in any case
  std::string body;
};

std::string sha256_hex(const std::string& data);
std::string hmac_sha256(const std::string& key, const std::string& data);  // raw bytes
// The four-step key: date, region, service, "aws4_request".
std::string signing_key(const std::string& secret, const std::string& date,
                        const std::string& region, const std::string& service);
std::string canonical_request(const SignedRequest& request,
                              const std::vector<std::string>& signed_headers,
                              const std::string& payload_hash);
// The hex signature of `request` under the given scope, signing `signed_headers`.
std::string sign(const SignedRequest& request, const std::vector<std::string>& signed_headers,
                 const std::string& secret, const std::string& amz_date, const std::string& region,
                 const std::string& service);

struct SigV4Verdict {
  bool ok = false;
  unsigned status = 403;
  std::string error_type;  // Lambda's x-amzn-ErrorType when refused
  std::string message;
  std::string access_key;
};

inline constexpr time_t kMaxClockSkewSeconds = 5 * 60;

// `keys`: access key id -> secret.
SigV4Verdict verify_sigv4(const SignedRequest& request,
                          const std::map<std::string, std::string>& keys, time_t now);

// What can be checked before the body is read: the form, the key, the date,
// and the signature itself when X-Amz-Content-Sha256 declares the payload's
// hash. verify_sigv4 still runs once the body is in.
SigV4Verdict verify_sigv4_headers(const SignedRequest& request,
                                  const std::map<std::string, std::string>& keys, time_t now);

}  // namespace thaw::invoker
