#pragma once
// The HTTP trigger for gateways: a request to /function/NAME[/PATH] becomes an
// API Gateway HTTP API event (payload format 2.0) for the function, and its
// answer becomes the HTTP response, as API Gateway maps them.

#include <nlohmann/json.hpp>
#include <string>

#include "invoker/functions/failure.hpp"
#include "invoker/http/http.hpp"
#include "invoker/http/request_target.hpp"
#include "invoker/instances/function_instance.hpp"

namespace thaw::invoker {

// `rest` is the path after /function/NAME ("/" when none): the function's own
// URL space, as rawPath. `source_ip` is the peer's address when known.
nlohmann::json gateway_event(const Request& request, const RequestTarget& target,
                             const std::string& rest, const std::string& request_id);

// statusCode/headers/cookies/body/isBase64Encoded when the function returns
// them; any other JSON answer is a 200 with that JSON as the body; a function
// error is a 502, as API Gateway answers.
Response gateway_response(const InvokeResult& result);

// What a gateway answers when the invocation could not happen: its plain
// messages (404, 413, 429, else 500), not Lambda's API errors.
Response gateway_error(const Failure& failure);

}  // namespace thaw::invoker
