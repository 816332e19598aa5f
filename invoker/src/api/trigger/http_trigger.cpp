#include "invoker/api/trigger/http_trigger.hpp"

#include <cctype>
#include <chrono>
#include <ctime>

#include "invoker/api/lambda/function_requests.hpp"
#include "invoker/http/base64.hpp"
#include "invoker/protocol/json_text.hpp"

namespace thaw::invoker {

namespace {

using json = nlohmann::json;

// How deep a function's answer may nest: its body and header values are
// written out again, once per level on the stack. An answer nested deeper is
// malformed, as is one that is no JSON at all.
constexpr int kMaxAnswerDepth = 512;

// API Gateway passes text bodies as they are and everything else in base64.
bool is_text(const std::string& content_type, const std::string& body) {
  if (body.empty()) return true;
  const bool texty = content_type.empty() || content_type.rfind("text/", 0) == 0 ||
                     content_type.find("json") != std::string::npos ||
                     content_type.find("xml") != std::string::npos ||
                     content_type.find("javascript") != std::string::npos ||
                     content_type.find("x-www-form-urlencoded") != std::string::npos;
  return texty && is_utf8(body);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string clf_time(std::chrono::system_clock::time_point now) {
  const auto t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%d/%b/%Y:%H:%M:%S +0000", &tm);
  return buf;
}

// RFC 9110's token: what a header name may be made of.
bool header_name_ok(std::string_view name) {
  static constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  if (name.empty()) return false;
  for (const unsigned char c : name)
    if (!std::isalnum(c) && kSpecials.find(static_cast<char>(c)) == std::string_view::npos)
      return false;
  return true;
}

// A field value: no CR, LF, NUL or other control character (tab aside), so
// a function cannot end the header line and write lines of its own.
bool header_value_ok(std::string_view value) {
  for (const unsigned char c : value)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

// Headers that frame the message or the connection are thawd's to write.
bool framing_header(std::string_view lowered) {
  return lowered == "content-length" || lowered == "transfer-encoding" || lowered == "connection" ||
         lowered == "keep-alive" || lowered == "upgrade" || lowered == "te" || lowered == "trailer";
}

Response gateway_message(http::status status, const char* message) {
  return json_response(status, json_text(json{{"message", message}}));
}

}  // namespace

json gateway_event(const Request& req, const RequestTarget& target, const std::string& rest,
                   const std::string& request_id) {
  json headers = json::object();
  json cookies = json::array();
  for (const auto& field : req) {
    const auto name = lower(std::string(field.name_string()));
    const std::string value(field.value());
    if (name == "cookie") {
      // Cookies travel apart, one entry per cookie.
      size_t start = 0;
      while (start < value.size()) {
        auto end = value.find(';', start);
        if (end == std::string::npos) end = value.size();
        auto cookie = value.substr(start, end - start);
        cookie.erase(0, cookie.find_first_not_of(' '));
        if (!cookie.empty()) cookies.push_back(cookie);
        start = end + 1;
      }
      continue;
    }
    if (name == "authorization") continue;  // thawd's credential is not the function's business
    headers[name] = headers.contains(name) ? headers[name].get<std::string>() + "," + value : value;
  }
  const std::string raw_target(req.target());
  const auto q = raw_target.find('?');
  const std::string raw_query = q == std::string::npos ? "" : raw_target.substr(q + 1);
  json query = json::object();
  for (const auto& [k, v] : target.query)
    query[k] = v;  // API Gateway joins repeated keys with commas; the last one wins here
  const auto now = std::chrono::system_clock::now();
  const auto& body = req.body();
  const bool text = is_text(std::string(req[http::field::content_type]), body);
  json event = {
      {"version", "2.0"},
      {"routeKey", "$default"},
      {"rawPath", rest},
      {"rawQueryString", raw_query},
      {"headers", headers},
      {"requestContext",
       {{"accountId", "000000000000"},
        {"apiId", "thaw"},
        {"domainName", std::string(req[http::field::host])},
        {"domainPrefix", "thaw"},
        {"http",
         {{"method", std::string(req.method_string())},
          {"path", rest},
          {"protocol", "HTTP/1.1"},
          {"sourceIp", "127.0.0.1"},
          {"userAgent", std::string(req[http::field::user_agent])}}},
        {"requestId", request_id},
        {"routeKey", "$default"},
        {"stage", "$default"},
        {"time", clf_time(now)},
        {"timeEpoch",
         std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count()}}},
      {"isBase64Encoded", !text}};
  if (!cookies.empty()) event["cookies"] = cookies;
  if (!query.empty()) event["queryStringParameters"] = query;
  if (rest.size() > 1) event["pathParameters"] = {{"proxy", rest.substr(1)}};
  if (!body.empty()) event["body"] = text ? body : to_base64(body);
  return event;
}

Response gateway_response(const InvokeResult& result) {
  if (result.error) return gateway_message(http::status::bad_gateway, "Internal Server Error");
  const auto answer = parse_json_within_depth(result.payload, kMaxAnswerDepth);
  if (answer.is_discarded())
    return gateway_message(http::status::bad_gateway, "Internal Server Error");
  if (!answer.is_object() || !answer.contains("statusCode")) {
    // Any other JSON: 200, and the JSON itself is the body.
    return json_response(http::status::ok, result.payload);
  }
  const auto& code = answer["statusCode"];
  // An informational status is no final answer: API Gateway refuses it too.
  const int64_t status_code = code.is_number_integer() ? code.get<int64_t>() : 0;
  if (status_code < 200 || status_code > 599)
    return gateway_message(http::status::bad_gateway, "Internal Server Error");
  Response r{static_cast<http::status>(status_code), 11};
  r.set(http::field::server, "thawd");
  bool has_type = false;
  // A malformed header is a malformed integration response, as API Gateway
  // answers it: 502, and nothing of it reaches the client.
  if (answer.contains("headers") && answer["headers"].is_object())
    for (const auto& [k, v] : answer["headers"].items()) {
      const auto value = v.is_string() ? v.get<std::string>() : json_text(v);
      if (!header_name_ok(k) || !header_value_ok(value))
        return gateway_message(http::status::bad_gateway, "Internal Server Error");
      if (framing_header(lower(k))) continue;
      r.set(k, value);
      has_type = has_type || lower(k) == "content-type";
    }
  if (answer.contains("cookies") && answer["cookies"].is_array())
    for (const auto& c : answer["cookies"]) {
      if (!c.is_string()) continue;
      if (!header_value_ok(c.get_ref<const std::string&>()))
        return gateway_message(http::status::bad_gateway, "Internal Server Error");
      r.insert(http::field::set_cookie, c.get<std::string>());
    }
  std::string body;
  if (answer.contains("body"))
    body =
        answer["body"].is_string() ? answer["body"].get<std::string>() : json_text(answer["body"]);
  const auto base64 = answer.find("isBase64Encoded");
  if (base64 != answer.end() && base64->is_boolean() && base64->get<bool>())
    body = from_base64(body);
  if (!has_type) r.set(http::field::content_type, "application/json");
  // 204 and 304 carry no body (Beast refuses one: found by tests/fuzz).
  if (status_code != 204 && status_code != 304) r.body() = std::move(body);
  r.prepare_payload();
  return r;
}

Response gateway_error(const Failure& failure) {
  switch (failure.kind) {
    case FailureKind::NotFound:
      return gateway_message(http::status::not_found, "Not Found");
    case FailureKind::Throttled:
      return gateway_message(http::status::too_many_requests, "Too Many Requests");
    case FailureKind::TooLarge:
      return gateway_message(http::status::payload_too_large, "Request Entity Too Large");
    default:
      return gateway_message(http::status::internal_server_error, "Internal Server Error");
  }
}

}  // namespace thaw::invoker
