// thaw's own operations under /thaw/v1/: instances, snapshots, usage, logs,
// the asynchronous queue and its dead letters.
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "invoker/api/api.hpp"
#include "invoker/invocation/async_invoker.hpp"
#include "invoker/invocation/function_service.hpp"
#include "invoker/observability/function_logs.hpp"
#include "invoker/protocol/json_text.hpp"

namespace thaw::invoker {

namespace {

constexpr size_t kLogPageBytes = 64 * 1024;
constexpr int kMaxLogWaitSeconds = 60;

std::string iso_time(std::chrono::system_clock::time_point t) {
  const auto s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string iso_time_ms(int64_t unix_ms) {
  return iso_time(std::chrono::system_clock::time_point(std::chrono::milliseconds(unix_ms)));
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Response json_ok(const nlohmann::json& body, http::status status = http::status::ok) {
  return json_response(status, json_text(body));
}

uint64_t number_param(const RequestTarget& t, const char* name, uint64_t fallback, uint64_t max) {
  const auto it = t.query.find(name);
  if (it == t.query.end()) return fallback;
  const auto& v = it->second;
  if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos ||
      std::stoull(v) > max)
    throw Failure(FailureKind::InvalidParameter, std::string(name) +
                                                     ": must be a number from 0 to " +
                                                     std::to_string(max) + ", got \"" + v + "\"");
  return std::stoull(v);
}

nlohmann::json usage_json(const UsageTotals& u) {
  return {{"Invocations", u.invocations},
          {"Errors", u.errors},
          {"Throttles", u.throttles},
          {"DurationMs", u.duration_ms},
          {"BilledDurationMs", u.billed_ms},
          {"GBSeconds", u.gb_seconds},
          {"NetworkOutBytes", u.network_out_bytes},
          {"NetworkInBytes", u.network_in_bytes}};
}

}  // namespace

Response Api::logs(const RequestTarget& t, const std::string& name) {
  functions_->catalog().get(name);  // 404 when it does not exist
  auto& logs = functions_->logs();
  if (!t.query.count("offset")) {
    const auto chunk = logs.read_tail(name, kLogPageBytes);
    return json_ok({{"Text", chunk.text},
                    {"NextOffset", chunk.next_offset},
                    {"FirstAvailableOffset", chunk.first_available_offset}});
  }
  const auto offset = number_param(t, "offset", 0, UINT64_MAX / 2);
  const auto wait = number_param(t, "wait", 0, kMaxLogWaitSeconds);
  // A long poll for `thaw logs --follow` that has no followers' thread
  // (Api::handle(request, reply) gives it one) waits here.
  if (wait > 0)
    logs.wait_for_more(name, offset, std::chrono::steady_clock::now() + std::chrono::seconds(wait));
  return log_page(name, offset);
}

Response Api::log_page(const std::string& name, uint64_t offset) {
  const auto chunk = functions_->logs().read(name, offset, kLogPageBytes);
  return json_ok({{"Text", chunk.text},
                  {"NextOffset", chunk.next_offset},
                  {"FirstAvailableOffset", chunk.first_available_offset}});
}

std::optional<Api::LongPoll> Api::long_poll(const Request& req, const RequestTarget& t) {
  const auto& s = t.segments;
  if (!followers_ || !functions_ || req.method() != http::verb::get || s.size() != 5 ||
      s[0] != "thaw" || s[1] != "v1" || s[2] != "functions" || s[4] != "logs" ||
      !t.query.count("offset") || !t.query.count("wait"))
    return std::nullopt;
  try {
    LongPoll poll{s[3], number_param(t, "offset", 0, UINT64_MAX / 2),
                  number_param(t, "wait", 0, kMaxLogWaitSeconds)};
    functions_->catalog().get(poll.function);
    if (poll.wait_s == 0) return std::nullopt;
    return poll;
  } catch (const std::exception&) {
    return std::nullopt;  // handle() gives the error its answer
  }
}

std::optional<Response> Api::thaw_api(const Request& req, const RequestTarget& t) {
  const auto& s = t.segments;
  if (s.size() < 3 || s[0] != "thaw" || s[1] != "v1") return std::nullopt;
  const auto method = req.method();
  const auto& what = s[2];
  auto& f = *functions_;

  if (what == "instances" && s.size() == 3 && method == http::verb::get) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& i : f.instances())
      list.push_back({{"Id", i.id},
                      {"FunctionName", i.function},
                      {"State", i.state},
                      {"StartMode", to_string(i.start_mode)},
                      {"MemorySize", i.memory_mb},
                      {"StartedAt", iso_time(i.started)},
                      {"LastUsed", iso_time(i.last_used)}});
    const auto& sched = f.scheduler();
    return json_ok({{"Instances", list},
                    {"InFlight", sched.in_flight()},
                    {"MaxConcurrency", sched.limits().max_concurrency},
                    {"MemoryInUseMB", sched.memory_in_use_mb()},
                    {"MemoryBudgetMB", sched.limits().memory_budget_mb}});
  }
  if (what == "snapshots" && s.size() == 3 && method == http::verb::get) {
    nlohmann::json list = nlohmann::json::array();
    const auto now = unix_ms_now();
    for (const auto& [function, info] : f.snapshots())
      list.push_back({{"FunctionName", function},
                      {"Digest", info.digest},
                      {"SizeBytes", info.bytes},
                      {"Created", iso_time_ms(info.created_unix_ms)},
                      {"AgeSeconds", (now - info.created_unix_ms) / 1000},
                      {"RestoresServed", info.restores},
                      {"InMemoryCache", info.cached},
                      {"LastRestore", info.last_restore_unix_ms
                                          ? nlohmann::json(iso_time_ms(info.last_restore_unix_ms))
                                          : nlohmann::json()}});
    return json_ok({{"Snapshots", list}});
  }
  if (what == "usage" && s.size() == 3 && method == http::verb::get) {
    nlohmann::json list = nlohmann::json::array();
    UsageTotals all;
    for (const auto& [function, u] : f.usage()) {
      auto row = usage_json(u);
      row["FunctionName"] = function;
      list.push_back(row);
      all += u;
    }
    return json_ok({{"Functions", list}, {"Totals", usage_json(all)}});
  }
  if (what == "functions" && s.size() == 5 && s[4] == "logs" && method == http::verb::get)
    return logs(t, s[3]);
  if (what == "queue" && s.size() == 3 && method == http::verb::get && async_)
    return json_ok({{"Depth", async_->queue().depth()}});
  if (what == "dead-letters" && async_) {
    if (s.size() == 3 && method == http::verb::get) {
      const auto function = t.query.count("FunctionName") ? t.query.at("FunctionName") : "";
      nlohmann::json list = nlohmann::json::array();
      for (const auto& d :
           async_->queue().dead_letters(function, number_param(t, "MaxItems", 100, 10000)))
        list.push_back({{"Id", d.id},
                        {"FunctionName", d.function},
                        {"Payload", d.payload},
                        {"Attempts", d.attempts},
                        {"ErrorType", d.error_type},
                        {"ErrorMessage", d.error_message},
                        {"EnqueuedAt", iso_time_ms(d.enqueued_at_ms)},
                        {"FailedAt", iso_time_ms(d.failed_at_ms)}});
      return json_ok({{"DeadLetters", list}});
    }
    if (s.size() == 5 && s[4] == "redrive" && method == http::verb::post) {
      const auto id = async_->redrive(s[3]);
      if (!id) throw_not_found("No dead letter " + s[3]);
      return json_ok({{"RequestId", *id}}, http::status::accepted);
    }
  }
  return std::nullopt;
}

}  // namespace thaw::invoker
