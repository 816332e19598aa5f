#include "answers.hpp"

#include "errors.hpp"

namespace thaw::cli {

using json = nlohmann::json;

bool succeeded(const Response& res) {
  return res.result_int() >= 200 && res.result_int() < 300;
}

ThawdError error_of(const Response& res) {
  // Lambda puts the error's name in a header; its body's "Type" only says
  // whose fault it was (User or Service).
  std::string type(res["x-amzn-ErrorType"]);
  const auto body = json::parse(res.body(), nullptr, false);
  std::string message;
  if (body.is_object()) {
    if (type.empty()) type = body.value("__type", "");
    message = body.value("message", body.value("Message", ""));
  }
  if (type.empty()) type = "HTTP " + std::to_string(res.result_int());
  if (message.empty()) message = res.body().empty() ? std::string(res.reason()) : res.body();
  return ThawdError(type, message);
}

json json_of(const Response& res) {
  if (!succeeded(res)) throw error_of(res);
  if (res.body().empty()) return json::object();
  auto body = json::parse(res.body(), nullptr, false);
  if (body.is_discarded())
    throw std::runtime_error("thawd answered with something that is not JSON: " +
                             res.body().substr(0, 200));
  return body;
}

json get_json(Client& thawd, const std::string& target) {
  return json_of(thawd.request(http::verb::get, target));
}

}  // namespace thaw::cli
