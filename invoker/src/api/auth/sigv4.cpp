#include "invoker/api/auth/sigv4.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <sstream>

#include "invoker/http/request_target.hpp"

namespace thaw::invoker {

namespace {

std::string hex(const unsigned char* data, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0xf];
  }
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// RFC 3986 encoding as SigV4 wants it: only unreserved characters stay.
std::string uri_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// Each segment of the path as sent is encoded once more (every service but S3).
std::string canonical_uri(const std::string& raw_path) {
  if (raw_path.empty()) return "/";
  std::string out;
  size_t start = 0;
  while (start <= raw_path.size()) {
    const auto slash = raw_path.find('/', start);
    const auto segment =
        raw_path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    out += uri_encode(segment);
    if (slash == std::string::npos) break;
    out += '/';
    start = slash + 1;
  }
  return out;
}

std::string canonical_query(const std::string& raw_query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t pos = 0;
  while (pos < raw_query.size()) {
    auto amp = raw_query.find('&', pos);
    if (amp == std::string::npos) amp = raw_query.size();
    const auto pair = raw_query.substr(pos, amp - pos);
    if (!pair.empty()) {
      const auto eq = pair.find('=');
      pairs.push_back(
          {uri_encode(percent_decode(pair.substr(0, eq), false)),
           eq == std::string::npos ? "" : uri_encode(percent_decode(pair.substr(eq + 1), false))});
    }
    pos = amp + 1;
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [k, v] : pairs) out += (out.empty() ? "" : "&") + k + "=" + v;
  return out;
}

// Trimmed, with runs of spaces collapsed to one.
std::string header_value(const std::string& v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string header(const SignedRequest& r, const std::string& name) {
  std::string value;
  bool found = false;
  for (const auto& [k, v] : r.headers)
    if (lower(k) == name) {
      value += (found ? "," : "") + header_value(v);
      found = true;
    }
  return value;
}

// "k1=v1, k2=v2" after the algorithm name.
std::map<std::string, std::string> auth_fields(const std::string& text) {
  std::map<std::string, std::string> out;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    part = header_value(part);
    const auto eq = part.find('=');
    if (eq != std::string::npos) out[part.substr(0, eq)] = part.substr(eq + 1);
  }
  return out;
}

time_t parse_amz_date(const std::string& s) {
  std::tm tm{};
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z' || !strptime(s.c_str(), "%Y%m%dT%H%M%SZ", &tm))
    return -1;
  return timegm(&tm);
}

SigV4Verdict refuse(const char* type, std::string message, unsigned status = 403) {
  SigV4Verdict v;
  v.status = status;
  v.error_type = type;
  v.message = std::move(message);
  return v;
}

}  // namespace

std::string sha256_hex(const std::string& data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return hex(md, sizeof md);
}

std::string hmac_sha256(const std::string& key, const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &n);
  return std::string(reinterpret_cast<char*>(md), n);
}

std::string signing_key(const std::string& secret, const std::string& date,
                        const std::string& region, const std::string& service) {
  return hmac_sha256(hmac_sha256(hmac_sha256(hmac_sha256("AWS4" + secret, date), region), service),
                     "aws4_request");
}

std::string canonical_request(const SignedRequest& r,
                              const std::vector<std::string>& signed_headers,
                              const std::string& payload_hash) {
  std::string headers, names;
  for (const auto& h : signed_headers) {
    headers += h + ":" + header(r, h) + "\n";
    names += (names.empty() ? "" : ";") + h;
  }
  return r.method + "\n" + canonical_uri(r.raw_path) + "\n" + canonical_query(r.raw_query) + "\n" +
         headers + "\n" + names + "\n" + payload_hash;
}

std::string sign(const SignedRequest& r, const std::vector<std::string>& signed_headers,
                 const std::string& secret, const std::string& amz_date, const std::string& region,
                 const std::string& service) {
  const auto date = amz_date.substr(0, 8);
  const auto scope = date + "/" + region + "/" + service + "/aws4_request";
  auto payload_hash = header(r, "x-amz-content-sha256");
  if (payload_hash.empty()) payload_hash = sha256_hex(r.body);
  const auto string_to_sign = "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" +
                              sha256_hex(canonical_request(r, signed_headers, payload_hash));
  const auto mac = hmac_sha256(signing_key(secret, date, region, service), string_to_sign);
  return hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
}

namespace {

SigV4Verdict check_sigv4(const SignedRequest& r, const std::map<std::string, std::string>& keys,
                         time_t now, bool headers_only) {
  const std::string prefix = "AWS4-HMAC-SHA256 ";
  const auto authorization = header(r, "authorization");
  if (authorization.rfind(prefix, 0) != 0)
    return refuse("IncompleteSignatureException", "Authorization header is not AWS4-HMAC-SHA256");
  auto fields = auth_fields(authorization.substr(prefix.size()));
  const auto& credential = fields["Credential"];
  const auto& signed_list = fields["SignedHeaders"];
  const auto& signature = fields["Signature"];
  std::vector<std::string> scope;
  std::stringstream in(credential);
  for (std::string part; std::getline(in, part, '/');) scope.push_back(part);
  if (scope.size() != 5 || scope[4] != "aws4_request" || signed_list.empty() ||
      signature.size() != 64)
    return refuse("IncompleteSignatureException",
                  "Authorization header requires Credential=KEY/DATE/REGION/SERVICE/aws4_request, "
                  "SignedHeaders and a 64-character Signature");
  std::vector<std::string> signed_headers;
  std::stringstream names(signed_list);
  for (std::string h; std::getline(names, h, ';');) signed_headers.push_back(lower(h));
  if (std::find(signed_headers.begin(), signed_headers.end(), "host") == signed_headers.end())
    return refuse("IncompleteSignatureException", "SignedHeaders must include host");

  const auto key = keys.find(scope[0]);
  if (key == keys.end())
    return refuse("UnrecognizedClientException",
                  "The security token included in the request is invalid.");
  const auto amz_date = header(r, "x-amz-date");
  const time_t when = parse_amz_date(amz_date);
  if (when < 0 || amz_date.substr(0, 8) != scope[1])
    return refuse("IncompleteSignatureException",
                  "X-Amz-Date must be YYYYMMDDTHHMMSSZ and match the credential's date");
  if (when < now - kMaxClockSkewSeconds || when > now + kMaxClockSkewSeconds)
    return refuse(
        "InvalidSignatureException",
        "Signature expired: " + amz_date + " is more than 5 minutes away from thawd's clock");
  const auto declared = header(r, "x-amz-content-sha256");
  // Lambda's API signs its payloads; an unsigned one would let a body be
  // swapped under a valid signature.
  if (declared == "UNSIGNED-PAYLOAD")
    return refuse("InvalidSignatureException",
                  "UNSIGNED-PAYLOAD is not accepted: sign the payload");
  SigV4Verdict ok;
  ok.ok = true;
  ok.status = 200;
  ok.access_key = scope[0];
  // Before the body: the signature can be checked only over a declared hash.
  if (headers_only && declared.empty()) return ok;
  // A body that does not match its declared hash was changed on the way.
  if (!headers_only && !declared.empty() && declared != sha256_hex(r.body))
    return refuse("InvalidSignatureException", "The payload does not match X-Amz-Content-Sha256");
  const auto expected = sign(r, signed_headers, key->second, amz_date, scope[2], scope[3]);
  if (CRYPTO_memcmp(expected.data(), signature.data(), expected.size()) != 0)
    return refuse("InvalidSignatureException",
                  "The request signature we calculated does not match the signature you "
                  "provided. Check your AWS Secret Access Key and signing method.");
  return ok;
}

}  // namespace

SigV4Verdict verify_sigv4(const SignedRequest& r, const std::map<std::string, std::string>& keys,
                          time_t now) {
  return check_sigv4(r, keys, now, false);
}

SigV4Verdict verify_sigv4_headers(const SignedRequest& r,
                                  const std::map<std::string, std::string>& keys, time_t now) {
  return check_sigv4(r, keys, now, true);
}

}  // namespace thaw::invoker
