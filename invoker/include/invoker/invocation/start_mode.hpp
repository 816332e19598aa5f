#pragma once
// How an instance came to serve an invocation. The factory makes an instance
// Cold or Restore; every later invocation on that instance is Warm. The names
// are the wire's: X-Thaw-Start-Mode, the REPORT line, logs and metric labels.

#include <optional>
#include <string_view>

namespace thaw::invoker {

enum class StartMode { Cold, Restore, Warm };

constexpr const char* to_string(StartMode mode) {
  switch (mode) {
    case StartMode::Cold:
      return "cold";
    case StartMode::Restore:
      return "restore";
    case StartMode::Warm:
      return "warm";
  }
  return "warm";
}

// nullopt for anything but a mode's wire name.
constexpr std::optional<StartMode> parse_start_mode(std::string_view name) {
  for (const auto mode : {StartMode::Cold, StartMode::Restore, StartMode::Warm})
    if (std::string_view(to_string(mode)) == name) return mode;
  return std::nullopt;
}

}  // namespace thaw::invoker
