#include "invoker/observability/log.hpp"

#include <chrono>
#include <cstdio>
#include <mutex>

#include "invoker/protocol/json_text.hpp"

namespace thaw::invoker {

void log_event(const std::string& level, const std::string& event, nlohmann::json fields) {
  using namespace std::chrono;
  fields["ts"] = duration<double>(system_clock::now().time_since_epoch()).count();
  fields["level"] = level;
  fields["event"] = event;
  const auto line = json_text(fields) + "\n";
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace thaw::invoker
