#include "invoker/http/http.hpp"

#include <nlohmann/json.hpp>

#include "invoker/protocol/json_text.hpp"

namespace thaw::invoker {

Response text_response(http::status status, const std::string& body,
                       const std::string& content_type) {
  Response r{status, 11};
  r.set(http::field::content_type, content_type);
  r.set(http::field::server, "thawd");
  r.body() = body;
  r.prepare_payload();
  return r;
}

Response json_response(http::status status, const std::string& body) {
  return text_response(status, body, "application/json");
}

Response lambda_error(http::status status, const std::string& type, const std::string& message,
                      const std::string& kind, const std::string& reason) {
  nlohmann::json body = {{"Type", kind}, {"message", message}};
  if (!reason.empty()) body["Reason"] = reason;
  auto r = json_response(status, json_text(body));
  r.set("x-amzn-ErrorType", type);
  return r;
}

}  // namespace thaw::invoker
