#pragma once
// thawd's answers read once: a success as JSON, a failure as a ThawdError in
// Lambda's error shape (x-amzn-ErrorType and a body with Type and message).

#include <nlohmann/json.hpp>

#include "client.hpp"
#include "errors.hpp"

namespace thaw::cli {

bool succeeded(const Response& res);

// The error thawd answered, to throw.
ThawdError error_of(const Response& res);

// The answer's JSON body; throws error_of(res) when it is not a success.
nlohmann::json json_of(const Response& res);

// GET `target`, expecting JSON.
nlohmann::json get_json(Client& thawd, const std::string& target);

}  // namespace thaw::cli
