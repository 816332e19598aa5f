#pragma once
// HTTP message types shared by the server and the API, and Lambda's error shape.

#include <boost/beast/http.hpp>
#include <functional>
#include <string>

namespace thaw::invoker {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
// A request's answer goes to a Reply, once, from any thread: at once for
// most requests, later for a long poll, which then holds no thread.
using Reply = std::function<void(Response)>;

// An error as AWS Lambda sends it: status, x-amzn-ErrorType and
// {"Type": ..., "message": ...}. `kind` is "User" or "Service".
// `reason` non-empty adds Lambda's "Reason" field (throttles).
Response lambda_error(http::status status, const std::string& type, const std::string& message,
                      const std::string& kind = "User", const std::string& reason = "");

Response json_response(http::status status, const std::string& body);
Response text_response(http::status status, const std::string& body,
                       const std::string& content_type);

}  // namespace thaw::invoker
