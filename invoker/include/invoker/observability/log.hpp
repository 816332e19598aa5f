#pragma once
// thawd's log: one JSON object per line on stderr.

#include <nlohmann/json.hpp>
#include <string>

namespace thaw::invoker {

void log_event(const std::string& level, const std::string& event,
               nlohmann::json fields = nlohmann::json::object());

}  // namespace thaw::invoker
